//! Float → int8 quantization of whole tensors, per tensor or per channel of NHWC rows:
//! [`QuantParams::quantize`] for every value, bit for bit.
//!
//! The reference rounds `x / scale` half away from zero, saturates, adds the zero point
//! and clamps. Here the same value comes from exact float steps that vectorize: `t =
//! trunc(y)`, `y − t` is exact, and `|y − t| ≥ ½` steps `t` one away from zero; the clamp
//! to `[qmin − zp, qmax − zp]` happens in float (exact small integers; it commutes with
//! the saturations), NaN becomes 0 first (the zero point, as in the reference). The
//! portable loops and their AVX2 build therefore give the same bytes.

use super::cpu::Isa;
use crate::error::{QuantError, Result};
use crate::scheme::QuantParams;

/// Values handled per pass: a multiple of the vector width, so a pass of per-channel
/// parameters is whole lanes.
const LANES: usize = 16;

/// Parameters laid out for [`quantize_i8`]: one period of `lcm(channels, 16)` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantizer {
    scale: Vec<f32>,
    lo: Vec<f32>,
    hi: Vec<f32>,
    zero_point: Vec<i32>,
}

impl Quantizer {
    /// Channel `c` of a row uses `params[c]`; one entry quantizes per tensor. The output
    /// is int8, so each range must lie inside `[-128, 127]`.
    pub fn new(params: &[QuantParams]) -> Result<Self> {
        let bad = |reason: String| QuantError::Kernel {
            op: "quantize",
            reason,
        };
        if params.is_empty() {
            return Err(bad("no parameters".into()));
        }
        if let Some((c, p)) = params
            .iter()
            .enumerate()
            .find(|(_, p)| p.qmin < -128 || p.qmax > 127 || p.qmin > p.qmax)
        {
            return Err(bad(format!(
                "channel {c}: range [{}, {}] does not fit int8",
                p.qmin, p.qmax
            )));
        }
        let channels = params.len();
        let period = channels / gcd(channels, LANES) * LANES;
        let lane = |f: &dyn Fn(&QuantParams) -> f32| -> Vec<f32> {
            (0..period).map(|i| f(&params[i % channels])).collect()
        };
        Ok(Self {
            scale: lane(&|p| p.scale),
            lo: lane(&|p| (p.qmin - p.zero_point) as f32),
            hi: lane(&|p| (p.qmax - p.zero_point) as f32),
            zero_point: (0..period)
                .map(|i| params[i % channels].zero_point)
                .collect(),
        })
    }

    /// Values per pass (`lcm(channels, 16)`): chunks of a tensor quantized separately must
    /// start at multiples of this.
    pub fn period(&self) -> usize {
        self.scale.len()
    }
}

/// `out[i] = params[i % channels].quantize(x[i])`, with `x` starting at a channel-0 value.
///
/// # Panics
/// When the lengths differ.
pub fn quantize_i8(isa: Isa, q: &Quantizer, x: &[f32], out: &mut [i8]) {
    assert_eq!(
        x.len(),
        out.len(),
        "quantize: input and output lengths differ"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the SIMD paths are only selected when AVX2 was detected.
        Isa::Avx2 | Isa::Avx512Vnni | Isa::Amx => unsafe { quantize_avx2(q, x, out) },
        _ => quantize_portable(q, x, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_avx2(q: &Quantizer, x: &[f32], out: &mut [i8]) {
    quantize_portable(q, x, out);
}

#[inline(always)]
fn quantize_portable(q: &Quantizer, x: &[f32], out: &mut [i8]) {
    let period = q.period();
    for (x, out) in x.chunks(period).zip(out.chunks_mut(period)) {
        for (x, out, s, lo, hi, zp) in x
            .chunks(LANES)
            .zip(out.chunks_mut(LANES))
            .zip(q.scale.chunks_exact(LANES))
            .zip(q.lo.chunks_exact(LANES))
            .zip(q.hi.chunks_exact(LANES))
            .zip(q.zero_point.chunks_exact(LANES))
            .map(|(((((x, o), s), lo), hi), zp)| (x, o, s, lo, hi, zp))
        {
            let mut r = [0.0f32; LANES];
            for ((((r, &x), &s), &lo), &hi) in r.iter_mut().zip(x).zip(s).zip(lo).zip(hi) {
                let y = x / s;
                let t = y.trunc();
                let t = if (y - t).abs() >= 0.5 {
                    t + 1f32.copysign(y)
                } else {
                    t
                };
                let t = if y.is_nan() { 0.0 } else { t };
                *r = if t < lo {
                    lo
                } else if t > hi {
                    hi
                } else {
                    t
                };
            }
            for ((o, &r), &zp) in out.iter_mut().zip(&r).zip(zp) {
                // SAFETY: r is an integer in [qmin − zp, qmax − zp] (NaN was replaced), so
                // the conversion is exact; the saturating `as` would not vectorize.
                let r: i32 = unsafe { r.to_int_unchecked() };
                *o = (r + zp) as i8;
            }
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::{QuantDtype, Scheme};

    #[test]
    fn halves_round_away_from_zero_and_specials_saturate() {
        let p = QuantParams {
            scale: 0.5,
            zero_point: -3,
            qmin: -128,
            qmax: 127,
        };
        let q = Quantizer::new(&[p]).unwrap();
        let x = [
            0.25,
            -0.25,
            0.75,
            -0.75,
            0.0,
            -0.0,
            1e30,
            -1e30,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            63.0,
            -62.5,
            0.2499999,
        ];
        // y = x / 0.5: 0.5 → 1, −0.5 → −1, 1.5 → 2, −1.5 → −2; then + zp −3, clamped.
        let expect = [
            -2, -4, -1, -5, -3, -3, 127, -128, -3, 127, -128, 123, -128, -3,
        ];
        for isa in Isa::available() {
            let mut out = [0i8; 14];
            quantize_i8(isa, &q, &x, &mut out);
            assert_eq!(out.map(i32::from), expect, "{isa}");
        }
        assert_eq!(expect.to_vec(), x.map(|v| p.quantize(v)).to_vec());
    }

    #[test]
    fn a_range_outside_int8_is_refused() {
        let u8_params =
            QuantParams::from_range(0.0, 1.0, Scheme::Affine, QuantDtype::Uint8, false).unwrap();
        assert!(Quantizer::new(&[u8_params]).is_err());
        assert!(Quantizer::new(&[]).is_err());
    }

    #[test]
    fn the_period_holds_whole_rows_and_lanes() {
        let p = QuantParams::weights(1.0, false).unwrap();
        assert_eq!(Quantizer::new(&[p; 10]).unwrap().period(), 80);
        assert_eq!(Quantizer::new(&[p]).unwrap().period(), 16);
        assert_eq!(Quantizer::new(&[p; 64]).unwrap().period(), 64);
    }
}
