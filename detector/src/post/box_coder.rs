//! OpenPCDet's `ResidualCoder` (angle as a plain residual) and the direction-bin
//! correction of `AnchorHeadTemplate.generate_predicted_boxes`.

use super::anchors::Anchor;

/// `val - floor(val / period + offset) * period`: wraps into `[-offset·period, (1-offset)·period)`.
pub fn limit_period(val: f32, offset: f32, period: f32) -> f32 {
    val - (val / period + offset).floor() * period
}

/// Decodes box residuals `[x, y, z, dx, dy, dz, yaw]` against `anchor`.
pub fn decode(t: &[f32], a: &Anchor) -> [f32; 7] {
    let diagonal = (a[3] * a[3] + a[4] * a[4]).sqrt();
    [
        t[0] * diagonal + a[0],
        t[1] * diagonal + a[1],
        t[2] * a[5] + a[2],
        t[3].exp() * a[3],
        t[4].exp() * a[4],
        t[5].exp() * a[5],
        t[6] + a[6],
    ]
}

/// The inverse of [`decode`] (training targets; tests).
pub fn encode(b: &[f32; 7], a: &Anchor) -> [f32; 7] {
    let diagonal = (a[3] * a[3] + a[4] * a[4]).sqrt();
    [
        (b[0] - a[0]) / diagonal,
        (b[1] - a[1]) / diagonal,
        (b[2] - a[2]) / a[5],
        (b[3] / a[3]).ln(),
        (b[4] / a[4]).ln(),
        (b[5] / a[5]).ln(),
        b[6] - a[6],
    ]
}

/// Direction classifier settings (`DIR_OFFSET`, `DIR_LIMIT_OFFSET`, `NUM_DIR_BINS`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirectionBins {
    /// `DIR_OFFSET` (rad).
    pub offset: f32,
    /// `DIR_LIMIT_OFFSET`.
    pub limit_offset: f32,
    /// `NUM_DIR_BINS`.
    pub bins: usize,
}

impl DirectionBins {
    /// The yaw with its direction taken from the classifier's argmax bin `label`.
    pub fn apply(&self, yaw: f32, label: usize) -> f32 {
        let period = (2.0 * std::f64::consts::PI / self.bins as f64) as f32;
        limit_period(yaw - self.offset, self.limit_offset, period)
            + self.offset
            + period * label as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decode_hand_computed() {
        let a = [1.0, 2.0, -1.0, 3.0, 4.0, 2.0, 0.5];
        // diagonal 5: x = 0.2·5 + 1, y = -0.1·5 + 2, z = 0.5·2 - 1, sizes ×e^0 / ×e^ln2.
        let b = decode(&[0.2, -0.1, 0.5, 0.0, 2f32.ln(), 0.0, 0.25], &a);
        let want = [2.0, 1.5, 0.0, 3.0, 8.0, 2.0, 0.75];
        for (g, w) in b.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{b:?}");
        }
    }

    #[test]
    fn direction_bins_follow_openpcdet() {
        let d = DirectionBins {
            offset: crate::config::OPENPCDET_DIR_OFFSET,
            limit_offset: 0.0,
            bins: 2,
        };
        // yaw 0.1 lies in [offset - π... ]: limit_period(0.1 - 0.78539, 0, π) = π + 0.1 - 0.78539.
        let pi = std::f32::consts::PI;
        assert!((d.apply(0.1, 0) - (pi + 0.1)).abs() < 1e-5);
        assert!((d.apply(0.1, 1) - (2.0 * pi + 0.1)).abs() < 1e-5);
        assert!((d.apply(1.0, 0) - 1.0).abs() < 1e-5);
        assert!((limit_period(-1.5, 0.5, 2.0) - 0.5).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(
            x in -50.0f32..50.0, y in -50.0f32..50.0, z in -3.0f32..2.0,
            dx in 0.3f32..10.0, dy in 0.3f32..5.0, dz in 0.5f32..4.0, yaw in -3.1f32..3.1,
        ) {
            let a = [10.0, -5.0, -1.0, 3.9, 1.6, 1.56, 1.57];
            let b = [x, y, z, dx, dy, dz, yaw];
            let back = decode(&encode(&b, &a), &a);
            for (g, w) in back.iter().zip(b) {
                prop_assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{back:?} vs {b:?}");
            }
        }
    }
}
