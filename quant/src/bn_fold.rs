//! BatchNorm folding: absorb an inference-mode BatchNorm into the preceding conv/linear.
//!
//! With `k = γ / sqrt(var + eps)` per output channel (computed in f32):
//! `w' = w · k` and `b' = (b − mean) · k + β` (`b = 0` when the layer has no bias).

use crate::error::{QuantError, Result};

/// Inference-mode BatchNorm parameters, one entry per channel.
#[derive(Debug, Clone, Copy)]
pub struct BatchNorm<'a> {
    /// Scale γ.
    pub gamma: &'a [f32],
    /// Shift β.
    pub beta: &'a [f32],
    /// Running mean.
    pub mean: &'a [f32],
    /// Running variance.
    pub var: &'a [f32],
    /// Variance epsilon (PyTorch's default is 1e-5; 1e-3 in OpenPCDet's PointPillars).
    pub eps: f32,
}

/// Fold `bn` into `weights` (row-major `shape`, output channel along `out_axis`: 0 for conv
/// OIHW and linear, 1 for transposed conv IOHW) in place, and return the folded bias.
pub fn fold_batch_norm(
    weights: &mut [f32],
    shape: &[usize],
    out_axis: usize,
    bias: Option<&[f32]>,
    bn: &BatchNorm<'_>,
) -> Result<Vec<f32>> {
    let channels = *shape.get(out_axis).ok_or(QuantError::Parameter {
        name: "out_axis",
        value: out_axis as f64,
        reason: "past the weight tensor's rank",
    })?;
    let expected: usize = shape.iter().product();
    let lengths = [
        ("weights", weights.len(), expected),
        ("gamma", bn.gamma.len(), channels),
        ("beta", bn.beta.len(), channels),
        ("mean", bn.mean.len(), channels),
        ("var", bn.var.len(), channels),
        ("bias", bias.map_or(channels, <[f32]>::len), channels),
    ];
    if let Some(&(what, got, expected)) = lengths.iter().find(|(_, got, exp)| got != exp) {
        return Err(QuantError::Length {
            what,
            got,
            expected,
        });
    }
    let factors = bn
        .gamma
        .iter()
        .zip(bn.var)
        .map(|(&g, &v)| {
            let denom = (v + bn.eps).sqrt();
            if denom > 0.0 && denom.is_finite() {
                Ok(g / denom)
            } else {
                Err(QuantError::Parameter {
                    name: "var + eps",
                    value: (v + bn.eps) as f64,
                    reason: "must be finite and positive",
                })
            }
        })
        .collect::<Result<Vec<f32>>>()?;
    // Elements of one output channel repeat every `inner` values, `channels` times per outer.
    let inner: usize = shape[out_axis + 1..].iter().product();
    if inner > 0 {
        for (i, block) in weights.chunks_mut(inner).enumerate() {
            let k = factors[i % channels];
            block.iter_mut().for_each(|w| *w *= k);
        }
    }
    Ok((0..channels)
        .map(|c| (bias.map_or(0.0, |b| b[c]) - bn.mean[c]) * factors[c] + bn.beta[c])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bn() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        (
            vec![2.0, 0.5],
            vec![1.0, -1.0],
            vec![0.5, 2.0],
            vec![3.0, 0.0],
        )
    }

    #[test]
    fn folds_conv_weights_and_bias() {
        let (gamma, beta, mean, var) = bn();
        let norm = BatchNorm {
            gamma: &gamma,
            beta: &beta,
            mean: &mean,
            var: &var,
            eps: 1.0,
        };
        // k = 2/sqrt(4) = 1 and 0.5/sqrt(1) = 0.5.
        let mut w = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = fold_batch_norm(&mut w, &[2, 3], 0, Some(&[1.0, 4.0]), &norm).unwrap();
        assert_eq!(w, vec![1.0, 2.0, 3.0, 2.0, 2.5, 3.0]);
        // (1 − 0.5)·1 + 1 = 1.5; (4 − 2)·0.5 − 1 = 0.
        assert_eq!(b, vec![1.5, 0.0]);
    }

    #[test]
    fn folds_transposed_conv_along_axis_one() {
        let (gamma, beta, mean, var) = bn();
        let norm = BatchNorm {
            gamma: &gamma,
            beta: &beta,
            mean: &mean,
            var: &var,
            eps: 1.0,
        };
        // IOHW with I = 2, O = 2, 1×1 kernel: element (i, o) scales by k[o].
        let mut w = vec![1.0, 1.0, 1.0, 1.0];
        let b = fold_batch_norm(&mut w, &[2, 2, 1, 1], 1, None, &norm).unwrap();
        assert_eq!(w, vec![1.0, 0.5, 1.0, 0.5]);
        assert_eq!(b, vec![0.5, -2.0]);
    }

    #[test]
    fn folded_layer_matches_conv_then_bn() {
        let (gamma, beta, mean, var) = bn();
        let norm = BatchNorm {
            gamma: &gamma,
            beta: &beta,
            mean: &mean,
            var: &var,
            eps: 1e-3,
        };
        let (w0, b0, x) = (vec![0.3f32, -0.7, 1.1, 0.2], [0.1f32, -0.4], [0.9f32, -1.3]);
        let mut w = w0.clone();
        let b = fold_batch_norm(&mut w, &[2, 2], 0, Some(&b0), &norm).unwrap();
        for o in 0..2 {
            let y = w0[2 * o] * x[0] + w0[2 * o + 1] * x[1] + b0[o];
            let bn_y = (y - mean[o]) / (var[o] + 1e-3).sqrt() * gamma[o] + beta[o];
            let folded = w[2 * o] * x[0] + w[2 * o + 1] * x[1] + b[o];
            assert!((bn_y - folded).abs() < 1e-5, "{bn_y} {folded}");
        }
    }

    #[test]
    fn bad_parameters_are_errors() {
        let (gamma, beta, mean, var) = bn();
        let norm = BatchNorm {
            gamma: &gamma,
            beta: &beta,
            mean: &mean,
            var: &var,
            eps: 0.0,
        };
        let mut w = vec![1.0; 4];
        // var 0 with eps 0 divides by zero.
        assert!(fold_batch_norm(&mut w, &[2, 2], 0, None, &norm).is_err());
        assert!(fold_batch_norm(&mut w, &[2, 2], 2, None, &norm).is_err());
        assert!(fold_batch_norm(&mut w, &[4, 1], 0, None, &norm).is_err());
        assert!(fold_batch_norm(&mut w, &[2, 2], 0, Some(&[1.0]), &norm).is_err());
    }
}
