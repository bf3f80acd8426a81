//! Quantized tensors, per-tensor or per-channel (along the outermost axis, the output
//! channel of OIHW / `[out, in]` weights).

use crate::error::{QuantError, Result};
use crate::scheme::QuantParams;

/// Quantization parameters of a whole tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Granularity {
    /// One map for every element.
    PerTensor(QuantParams),
    /// One map per slice of the outermost axis.
    PerChannel(Vec<QuantParams>),
}

impl Granularity {
    /// Parameters for channel `c` (every channel shares them for per-tensor).
    pub fn channel(&self, c: usize) -> &QuantParams {
        match self {
            Granularity::PerTensor(p) => p,
            Granularity::PerChannel(ps) => &ps[c],
        }
    }

    /// Apply `f(params, channel_slice)` to each channel of `data` (one slice for per-tensor).
    fn for_each_channel<T, U>(
        &self,
        data: &[T],
        out: &mut [U],
        mut f: impl FnMut(&QuantParams, &[T], &mut [U]),
    ) {
        match self {
            Granularity::PerTensor(p) => f(p, data, out),
            Granularity::PerChannel(ps) => {
                let inner = data.len() / ps.len().max(1);
                for ((p, src), dst) in ps.iter().zip(data.chunks(inner)).zip(out.chunks_mut(inner))
                {
                    f(p, src, dst);
                }
            }
        }
    }

    fn check(&self, shape: &[usize], len: usize) -> Result<()> {
        let expected: usize = shape.iter().product();
        if len != expected {
            return Err(QuantError::Length {
                what: "tensor data",
                got: len,
                expected,
            });
        }
        if let Granularity::PerChannel(ps) = self {
            let channels = shape.first().copied().unwrap_or(1);
            if ps.len() != channels {
                return Err(QuantError::Length {
                    what: "per-channel parameters",
                    got: ps.len(),
                    expected: channels,
                });
            }
        }
        Ok(())
    }
}

/// A quantized tensor: the integers of the affine map (each within its channel's
/// `[qmin, qmax]`) and their parameters; [`QTensor::to_i8`] / [`QTensor::to_u8`] give storage.
#[derive(Debug, Clone, PartialEq)]
pub struct QTensor {
    shape: Vec<usize>,
    values: Vec<i32>,
    granularity: Granularity,
}

impl QTensor {
    /// Quantize `data` (row-major, `shape`) with `granularity`.
    pub fn quantize(data: &[f32], shape: &[usize], granularity: Granularity) -> Result<Self> {
        granularity.check(shape, data.len())?;
        let mut values = vec![0i32; data.len()];
        granularity.for_each_channel(data, &mut values, |p, src, dst| {
            for (q, &x) in dst.iter_mut().zip(src) {
                *q = p.quantize(x);
            }
        });
        Ok(Self {
            shape: shape.to_vec(),
            values,
            granularity,
        })
    }

    /// The real values this tensor stands for.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.values.len()];
        self.granularity
            .for_each_channel(&self.values, &mut out, |p, src, dst| {
                for (x, &q) in dst.iter_mut().zip(src) {
                    *x = p.dequantize(q);
                }
            });
        out
    }

    /// Values as int8; `None` if any channel uses a range outside `[-128, 127]`.
    pub fn to_i8(&self) -> Option<Vec<i8>> {
        self.values.iter().map(|&q| i8::try_from(q).ok()).collect()
    }

    /// Values as uint8; `None` if any channel uses a range outside `[0, 255]`.
    pub fn to_u8(&self) -> Option<Vec<u8>> {
        self.values.iter().map(|&q| u8::try_from(q).ok()).collect()
    }

    /// Integer values (each within its channel's `[qmin, qmax]`).
    pub fn values(&self) -> &[i32] {
        &self.values
    }
    /// Row-major shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Quantization parameters.
    pub fn granularity(&self) -> &Granularity {
        &self.granularity
    }
}

/// `dequantize(quantize(data))` without keeping the integers: what the int8 model sees.
pub fn fake_quantize(data: &[f32], shape: &[usize], granularity: &Granularity) -> Result<Vec<f32>> {
    granularity.check(shape, data.len())?;
    let mut out = vec![0f32; data.len()];
    granularity.for_each_channel(data, &mut out, |p, src, dst| {
        for (y, &x) in dst.iter_mut().zip(src) {
            *y = p.fake_quantize(x);
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::{QuantDtype, Scheme};

    #[test]
    fn per_channel_round_trip() {
        let data = [0.5, -1.0, 0.25, 10.0, -5.0, 2.5];
        let g = Granularity::PerChannel(vec![
            QuantParams::weights(1.0, false).unwrap(),
            QuantParams::weights(10.0, false).unwrap(),
        ]);
        let t = QTensor::quantize(&data, &[2, 3], g.clone()).unwrap();
        // 0.5·127 = 63.5 → 64; 0.25·127 = 31.75 → 32; -5·12.7 = -63.5 → -64.
        assert_eq!(t.values(), &[64, -127, 32, 127, -64, 32]);
        assert_eq!(t.to_i8().unwrap(), vec![64, -127, 32, 127, -64, 32]);
        let back = t.dequantize();
        assert_eq!(back[1], -1.0);
        assert_eq!(back[3], 10.0);
        assert_eq!(fake_quantize(&data, &[2, 3], &g).unwrap(), back);
        for (x, y) in data.iter().zip(&back) {
            assert!((x - y).abs() <= 10.0 / 127.0 / 2.0 + 1e-6);
        }
    }

    #[test]
    fn per_tensor_uint8() {
        let p =
            QuantParams::from_range(0.0, 2.55, Scheme::Affine, QuantDtype::Uint8, false).unwrap();
        let t = QTensor::quantize(&[0.0, 1.0, 3.0], &[3], Granularity::PerTensor(p)).unwrap();
        assert_eq!(t.to_u8().unwrap(), vec![0, 100, 255]);
        assert!(t.to_i8().is_none());
    }

    #[test]
    fn shape_mismatches_are_errors() {
        let p = QuantParams::weights(1.0, false).unwrap();
        assert!(QTensor::quantize(&[0.0; 5], &[2, 3], Granularity::PerTensor(p)).is_err());
        assert!(
            QTensor::quantize(&[0.0; 6], &[2, 3], Granularity::PerChannel(vec![p; 3])).is_err()
        );
    }
}
