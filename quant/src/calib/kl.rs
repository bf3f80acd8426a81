//! TensorRT entropy calibration: the clipping threshold that minimises KL(P ‖ Q).
//!
//! On a histogram of `|x|` with `n` bins, for every candidate `i ∈ [L, n]` (`L = qmax + 1`
//! target levels, 128 for int8):
//! - `P` = the first `i` bins, with the count of all later bins (the outliers) folded into
//!   bin `i − 1`;
//! - `Q` = the first `i` bins *without* the outliers, merged into `L` chunks (bin `k` goes to
//!   chunk `⌊k·L/i⌋`), and expanded back: each chunk's count is spread evenly over the bins
//!   of that chunk where `P` is nonzero (bins where `P` is zero get 0);
//! - both are normalised and `KL(P ‖ Q) = Σ p·ln(p/q)` over bins with `p > 0`; a bin with
//!   `p > 0 = q` makes the divergence infinite (no smoothing).
//!
//! The threshold is the upper edge `i·w` of the candidate with the smallest divergence; among
//! equal minima the largest `i` wins. Histograms with at most `L` bins return their full
//! range. Every chunk of `Q` has a single value, so the divergence needs only O(L) work per
//! candidate from prefix sums, not O(i).

use super::histogram::Histogram;
use crate::error::{QuantError, Result};

/// The entropy-calibrated threshold (amax) for `qmax` positive levels (127 for int8).
pub fn entropy_threshold(hist: &Histogram, qmax: u32) -> Result<f64> {
    let levels = levels(qmax)?;
    hist.require_counts("entropy calibration")?;
    let n = hist.len();
    if n <= levels {
        return Ok(hist.edge(n));
    }
    let mut tables = Tables::new(hist.counts());
    let mut best = (f64::INFINITY, n);
    for i in levels..=n {
        let d = tables.divergence(i, levels);
        if d <= best.0 {
            best = (d, i);
        }
    }
    Ok(hist.edge(best.1))
}

/// `KL(P ‖ Q)` for the candidate that keeps the first `bins` bins (`qmax + 1 ≤ bins ≤ len`).
pub fn divergence(hist: &Histogram, bins: usize, qmax: u32) -> Result<f64> {
    let levels = levels(qmax)?;
    if bins < levels || bins > hist.len() {
        return Err(QuantError::Parameter {
            name: "bins",
            value: bins as f64,
            reason: "must lie in [qmax + 1, histogram length]",
        });
    }
    hist.require_counts("KL divergence")?;
    Ok(Tables::new(hist.counts()).divergence(bins, levels))
}

fn levels(qmax: u32) -> Result<usize> {
    if qmax == 0 {
        return Err(QuantError::Parameter {
            name: "qmax",
            value: 0.0,
            reason: "must be at least 1",
        });
    }
    Ok(qmax as usize + 1)
}

fn xlnx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

/// Prefix sums over the histogram (counts, nonzero bins, `h·ln h`), `ln` of every possible
/// nonzero-bin count, and per-level scratch space.
struct Tables<'a> {
    counts: &'a [u64],
    sum: Vec<u64>,
    nonzero: Vec<u32>,
    hlnh: Vec<f64>,
    ln_int: Vec<f64>,
    mass: Vec<f64>,
    chunk: Vec<f64>,
    spread: Vec<f64>,
}

impl<'a> Tables<'a> {
    fn new(counts: &'a [u64]) -> Self {
        let n = counts.len();
        let (mut sum, mut nonzero, mut hlnh) = (
            Vec::with_capacity(n + 1),
            Vec::with_capacity(n + 1),
            Vec::with_capacity(n + 1),
        );
        let (mut s, mut z, mut l) = (0u64, 0u32, 0f64);
        for &c in counts {
            sum.push(s);
            nonzero.push(z);
            hlnh.push(l);
            s += c;
            z += u32::from(c > 0);
            l += xlnx(c as f64);
        }
        sum.push(s);
        nonzero.push(z);
        hlnh.push(l);
        // ln 0 is never used with a nonzero weight; 0 keeps the products finite.
        let ln_int = (0..=n + 1)
            .map(|k| if k == 0 { 0.0 } else { (k as f64).ln() })
            .collect();
        Self {
            counts,
            sum,
            nonzero,
            hlnh,
            ln_int,
            mass: Vec::new(),
            chunk: Vec::new(),
            spread: Vec::new(),
        }
    }

    fn divergence(&mut self, i: usize, levels: usize) -> f64 {
        let n = self.counts.len();
        let total = self.sum[n] as f64;
        let outliers = self.sum[n] - self.sum[i];
        let kept = self.sum[i];
        if kept == 0 {
            return f64::INFINITY;
        }
        let p_log_p = self.hlnh[i - 1] + xlnx((self.counts[i - 1] + outliers) as f64);
        self.mass.clear();
        self.chunk.clear();
        self.spread.clear();
        // Level j covers bins [ceil(j·i/L), ceil((j+1)·i/L)); the quotient and remainder
        // of (j+1)·i / L advance by those of i / L, so the loop needs no division.
        let (step_q, step_r) = (i / levels, i % levels);
        let (mut q, mut r, mut start) = (0usize, 0usize, 0usize);
        for j in 0..levels {
            q += step_q;
            r += step_r;
            if r >= levels {
                q += 1;
                r -= levels;
            }
            let end = q + usize::from(r > 0);
            let chunk = self.sum[end] - self.sum[start];
            let mut nonzero = self.nonzero[end] - self.nonzero[start];
            let mut mass = chunk;
            if j == levels - 1 {
                mass += outliers;
                nonzero += u32::from(self.counts[i - 1] == 0 && outliers > 0);
            }
            if mass > 0 && chunk == 0 {
                return f64::INFINITY;
            }
            self.mass.push(mass as f64);
            self.chunk.push(chunk.max(1) as f64);
            self.spread.push(self.ln_int[nonzero as usize]);
            start = end;
        }
        // A separate pass over the chunk counts, in place, lets `ln` vectorise.
        self.chunk.iter_mut().for_each(|c| *c = ln(*c));
        let p_log_q: f64 = self
            .mass
            .iter()
            .zip(&self.chunk)
            .zip(&self.spread)
            .map(|((m, c), s)| m * (c - s))
            .sum();
        (p_log_p - p_log_q) / total - total.ln() + (kept as f64).ln()
    }
}

/// Natural log of a finite `x ≥ 1`, to within a few ulp of `f64::ln`, written branch-free
/// so the level loop vectorises: `x = m·2^e` with `m ∈ [√½, √2)`, then
/// `ln m = 2·atanh(s)`, `s = (m − 1)/(m + 1)`, as an odd series in `s` (`|s| < 0.172`).
#[inline]
fn ln(x: f64) -> f64 {
    // fdlibm's split of ln 2: the high part has trailing zero bits so `e · LN2_HI` is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    e += i32::from(big);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    // Σ s^(2k) / (2k + 1), k = 0..=10: the k = 11 term is below 2^-60 of the sum.
    let mut poly = 1.0 / 21.0;
    for k in (0..10).rev() {
        poly = poly * s2 + 1.0 / (2 * k + 1) as f64;
    }
    let e = e as f64;
    e * LN2_HI + (e * LN2_LO + 2.0 * s * poly)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct transcription of the module docs: build P and Q bin by bin.
    fn naive(counts: &[u64], i: usize, levels: usize) -> f64 {
        let outliers: u64 = counts[i..].iter().sum();
        let mut p: Vec<f64> = counts[..i].iter().map(|&c| c as f64).collect();
        p[i - 1] += outliers as f64;
        let mut q = vec![0f64; i];
        for j in 0..levels {
            let members: Vec<usize> = (0..i).filter(|k| k * levels / i == j).collect();
            let chunk: f64 = members.iter().map(|&k| counts[k] as f64).sum();
            let nz: Vec<usize> = members.into_iter().filter(|&k| p[k] > 0.0).collect();
            for &k in &nz {
                q[k] = chunk / nz.len() as f64;
            }
        }
        let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
        let mut kl = 0.0;
        for (a, b) in p.iter().zip(&q) {
            if *a > 0.0 {
                if *b == 0.0 {
                    return f64::INFINITY;
                }
                kl += a / sp * ((a / sp) / (b / sq)).ln();
            }
        }
        kl
    }

    #[test]
    fn hand_computed_small_histogram() {
        // 4 bins, 2 levels (qmax 1). Candidate i = 2: P = [4, 2+1+1] = [4, 4] (outliers
        // folded), Q = chunks {0}, {1} of [4, 2] → [4, 2]; p = [1/2, 1/2], q = [2/3, 1/3]:
        // KL = ½ln(¾) + ½ln(3/2) = ½ln(9/8).
        let h = Histogram::new(vec![4, 2, 1, 1], 0.5).unwrap();
        let d2 = divergence(&h, 2, 1).unwrap();
        assert!((d2 - 0.5 * (9.0f64 / 8.0).ln()).abs() < 1e-12, "{d2}");
        // i = 4: no outliers, chunks {0,1}, {2,3}: Q = [3, 3, 1, 1], P = [4, 2, 1, 1], T = 8.
        let d4 = divergence(&h, 4, 1).unwrap();
        let expect = 0.5 * (4.0f64 / 3.0).ln() + 0.25 * (2.0f64 / 3.0).ln();
        assert!((d4 - expect).abs() < 1e-12, "{d4} vs {expect}");
        // i = 3: P = [4, 2, 2], chunks {0,1}, {2}: Q = [3, 3, 1]/7.
        let d3 = divergence(&h, 3, 1).unwrap();
        let expect3 = 0.5 * ((0.5) / (3.0 / 7.0f64)).ln()
            + 0.25 * ((0.25) / (3.0 / 7.0f64)).ln()
            + 0.25 * ((0.25) / (1.0 / 7.0f64)).ln();
        assert!((d3 - expect3).abs() < 1e-12);
        // d4 ≈ 0.0425 is the smallest of d2 ≈ 0.0589, d3 ≈ 0.0822.
        assert!(d4 < d2 && d2 < d3);
        assert_eq!(entropy_threshold(&h, 1).unwrap(), 2.0);
    }

    #[test]
    fn outliers_in_an_empty_chunk_are_infinite() {
        // i = 2 with levels 2: bin 1 is empty but receives the outliers; its chunk has no
        // count for Q, so P has mass where Q has none.
        let h = Histogram::new(vec![5, 0, 3], 1.0).unwrap();
        assert_eq!(divergence(&h, 2, 1).unwrap(), f64::INFINITY);
        assert_eq!(entropy_threshold(&h, 1).unwrap(), 3.0);
    }

    #[test]
    fn prefix_sum_form_matches_direct_form() {
        // A lumpy deterministic histogram with zero runs, 300 bins, 16 levels.
        let counts: Vec<u64> = (0..300u64)
            .map(|k| {
                if k % 7 == 3 {
                    0
                } else {
                    (k * 7919 % 97) * (300 - k) / 10
                }
            })
            .collect();
        let h = Histogram::new(counts.clone(), 0.01).unwrap();
        for i in 16..=300 {
            let fast = divergence(&h, i, 15).unwrap();
            let slow = naive(&counts, i, 16);
            assert!(
                fast == slow || (fast - slow).abs() <= 1e-9 * slow.abs().max(1e-3),
                "i={i}: {fast} vs {slow}"
            );
        }
    }

    #[test]
    fn series_log_matches_std() {
        let mut x = 1.0f64;
        while x < 1e18 {
            // Both sides of the √2 range split, and the ends of a binade.
            let (below, above) = (
                std::f64::consts::SQRT_2 * 0.9999,
                std::f64::consts::SQRT_2 * 1.0001,
            );
            for v in [x, x + 1.0, x * below, x * above, x * 1.999_999] {
                let (a, b) = (ln(v), v.ln());
                assert!(
                    (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1.0),
                    "{v}: {a} {b}"
                );
            }
            x *= 1.7;
        }
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn small_histograms_keep_full_range_and_bad_input_errors() {
        let h = Histogram::new(vec![1, 2, 3], 2.0).unwrap();
        assert_eq!(entropy_threshold(&h, 127).unwrap(), 6.0);
        assert!(entropy_threshold(&h, 0).is_err());
        assert!(divergence(&h, 4, 1).is_err());
        let empty = Histogram::new(vec![0; 300], 1.0).unwrap();
        assert!(entropy_threshold(&empty, 127).is_err());
    }
}
