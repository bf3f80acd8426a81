//! Observers that stream over activations frame by frame and track their range.
//!
//! Every observer takes an optional mask: `true` marks a value that counts. A mask may be as
//! long as the frame, or shorter and dividing its length, in which case it repeats over
//! consecutive blocks (a `[H·W]` cell mask over a `[C, H, W]` tensor). Non-finite values are
//! never counted.

use crate::error::{QuantError, Result};

/// Something that learns from frames of activations.
pub trait Observer {
    /// Account for one frame.
    fn observe(&mut self, values: &[f32], mask: Option<&[bool]>) -> Result<()>;
}

/// The counted (masked-in, finite) values of a frame.
pub(crate) fn counted<'a>(
    values: &'a [f32],
    mask: Option<&'a [bool]>,
) -> Result<impl Iterator<Item = f32> + 'a> {
    if let Some(m) = mask
        && (m.is_empty() || !values.len().is_multiple_of(m.len()))
    {
        return Err(QuantError::Length {
            what: "mask (must divide the frame length)",
            got: m.len(),
            expected: values.len(),
        });
    }
    let keep = move |i: usize| mask.is_none_or(|m| m[i % m.len()]);
    Ok(values
        .iter()
        .enumerate()
        .filter(move |&(i, x)| x.is_finite() && keep(i))
        .map(|(_, &x)| x))
}

/// Min and max of the counted values of one frame, if any.
fn frame_range(values: &[f32], mask: Option<&[bool]>) -> Result<Option<(f32, f32)>> {
    Ok(counted(values, mask)?.fold(None, |acc, x| match acc {
        None => Some((x, x)),
        Some((lo, hi)) => Some((x.min(lo), x.max(hi))),
    }))
}

/// Running minimum and maximum over all frames.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinMaxObserver {
    range: Option<(f32, f32)>,
}

impl MinMaxObserver {
    /// An observer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }
    /// `(min, max)` of everything counted so far; `None` before any counted value.
    pub fn range(&self) -> Option<(f32, f32)> {
        self.range
    }
}

impl Observer for MinMaxObserver {
    fn observe(&mut self, values: &[f32], mask: Option<&[bool]>) -> Result<()> {
        if let Some((lo, hi)) = frame_range(values, mask)? {
            self.range = Some(match self.range {
                None => (lo, hi),
                Some((a, b)) => (a.min(lo), b.max(hi)),
            });
        }
        Ok(())
    }
}

/// Exponential moving average of per-frame min and max (PyTorch's
/// `MovingAverageMinMaxObserver`): `r ← r + c·(frame − r)`, the first frame taken as is.
#[derive(Debug, Clone, PartialEq)]
pub struct MovingAverageMinMaxObserver {
    averaging_constant: f32,
    range: Option<(f32, f32)>,
}

impl MovingAverageMinMaxObserver {
    /// `averaging_constant` in `(0, 1]` (PyTorch's default is 0.01).
    pub fn new(averaging_constant: f32) -> Result<Self> {
        if !(averaging_constant > 0.0 && averaging_constant <= 1.0) {
            return Err(QuantError::Parameter {
                name: "averaging_constant",
                value: averaging_constant as f64,
                reason: "must lie in (0, 1]",
            });
        }
        Ok(Self {
            averaging_constant,
            range: None,
        })
    }
    /// The averaged `(min, max)`; `None` before any counted value.
    pub fn range(&self) -> Option<(f32, f32)> {
        self.range
    }
}

impl Observer for MovingAverageMinMaxObserver {
    fn observe(&mut self, values: &[f32], mask: Option<&[bool]>) -> Result<()> {
        if let Some((lo, hi)) = frame_range(values, mask)? {
            let c = self.averaging_constant;
            self.range = Some(match self.range {
                None => (lo, hi),
                Some((a, b)) => (a + c * (lo - a), b + c * (hi - b)),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_with_broadcast_mask() {
        let mut o = MinMaxObserver::new();
        // Two channels of 3 cells; the middle cell is empty and holds outliers.
        let frame = [1.0, 100.0, -2.0, 0.5, -100.0, 3.0];
        o.observe(&frame, Some(&[true, false, true])).unwrap();
        assert_eq!(o.range(), Some((-2.0, 3.0)));
        o.observe(&[f32::NAN, 7.0], None).unwrap();
        assert_eq!(o.range(), Some((-2.0, 7.0)));
        o.observe(&[50.0], Some(&[false])).unwrap();
        assert_eq!(o.range(), Some((-2.0, 7.0)));
        assert!(o.observe(&frame, Some(&[true; 4])).is_err());
        assert!(o.observe(&frame, Some(&[])).is_err());
    }

    #[test]
    fn moving_average_hand_computed() {
        let mut o = MovingAverageMinMaxObserver::new(0.5).unwrap();
        o.observe(&[-1.0, 1.0], None).unwrap();
        o.observe(&[-3.0, 5.0], None).unwrap();
        assert_eq!(o.range(), Some((-2.0, 3.0)));
        o.observe(&[0.0, 1.0], Some(&[false, false])).unwrap();
        assert_eq!(o.range(), Some((-2.0, 3.0)));
        assert!(MovingAverageMinMaxObserver::new(0.0).is_err());
        assert!(MovingAverageMinMaxObserver::new(f32::NAN).is_err());
    }
}
