//! Calibrators against reference values and on sparse (LiDAR-like) inputs.
//!
//! `fixtures/kl_reference.json` is written by `fixtures/kl_reference.py` (numpy only; run
//! it from that folder). Its core, the naive TensorRT entropy divergence for one candidate:
//!
//! ```python
//! def divergence(h, i, levels=128):
//!     p = h[:i].astype(np.float64)
//!     p[i - 1] += h[i:].sum()                      # outliers folded into the last bin
//!     chunk = (np.arange(i) * levels) // i         # bin k -> level floor(k*L/i)
//!     q = np.zeros(i)
//!     for j in range(levels):
//!         members = chunk == j
//!         nz = members & (p > 0)
//!         if nz.any():
//!             q[nz] = h[:i][members].sum() / nz.sum()  # spread over nonzero P bins
//!     return kl(p, q)                              # inf where p > 0 == q
//! ```
//!
//! and the threshold is `i * width` for the last `i` with the smallest divergence. The script
//! also runs pytorch-quantization's `_compute_amax_entropy` (NVIDIA's TensorRT-style
//! calibrator) on the same histograms as an independent reference.

use lidarq_quant::calib::kl::{divergence, entropy_threshold};
use lidarq_quant::calib::mse::mse_threshold;
use lidarq_quant::calib::percentile::percentile_threshold;
use lidarq_quant::{Histogram, HistogramObserver, Observer};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Case {
    bin_width: f64,
    counts: Vec<u64>,
    entropy_bins: usize,
    entropy_threshold: f64,
    runner_up_gap: f64,
    ptq_threshold: f64,
    exact_zeros: u64,
}

fn cases() -> BTreeMap<String, Case> {
    let text = include_str!("fixtures/kl_reference.json");
    serde_json::from_str(text).expect("fixture parses")
}

#[test]
fn entropy_thresholds_match_numpy_reference() {
    for (name, case) in cases() {
        let h = Histogram::new(case.counts.clone(), case.bin_width).unwrap();
        let t = entropy_threshold(&h, 127).unwrap();
        let bins = (t / case.bin_width).round() as usize;
        if bins != case.entropy_bins {
            // Only a near-tie (within float noise of the runner-up) may pick another bin.
            let ours = divergence(&h, bins, 127).unwrap();
            let theirs = divergence(&h, case.entropy_bins, 127).unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-9 && case.runner_up_gap <= 1e-9,
                "{name}: {bins} vs numpy {}",
                case.entropy_bins
            );
        }
        assert!(
            (t - case.entropy_threshold).abs() <= 2.0 * case.bin_width,
            "{name}"
        );
        // pytorch-quantization overwrites bin 0 with bin 1, discarding a zero spike; our
        // equivalent is not counting the exact zeros (the mask), so compare on that basis.
        let mut counts = case.counts.clone();
        counts[0] -= case.exact_zeros;
        let without_zeros = Histogram::new(counts, case.bin_width).unwrap();
        let t_nz = entropy_threshold(&without_zeros, 127).unwrap();
        let rel = (t_nz - case.ptq_threshold).abs() / case.ptq_threshold;
        eprintln!(
            "{name}: entropy threshold {t:.4} (numpy {:.4}), without exact zeros {t_nz:.4} \
             (pytorch-quantization {:.4})",
            case.entropy_threshold, case.ptq_threshold
        );
        assert!(
            rel <= 0.03,
            "{name}: {t_nz} vs pytorch-quantization {}",
            case.ptq_threshold
        );
        if case.exact_zeros > 0 {
            assert!(
                t < 0.6 * t_nz,
                "{name}: counted zeros drag the threshold down"
            );
        }
    }
}

/// Standard normal samples from a fixed xorshift generator (Box–Muller), for repeatability.
fn normals(n: usize, mut state: u64) -> Vec<f32> {
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}

#[test]
fn masking_empty_cells_keeps_the_threshold_of_the_occupied_cells() {
    // A [4, 20000] BEV-like tensor: 10% of cells occupied with ReLU'd Gaussian features,
    // the other 90% exactly zero.
    const CHANNELS: usize = 4;
    const CELLS: usize = 20_000;
    let occupied: Vec<bool> = (0..CELLS).map(|c| (c * 7919) % 10 == 3).collect();
    let noise = normals(CHANNELS * CELLS, 0x9E37_79B9_7F4A_7C15);
    let values: Vec<f32> = noise
        .iter()
        .enumerate()
        .map(|(i, &x)| if occupied[i % CELLS] { x.abs() } else { 0.0 })
        .collect();
    let collect = |frames: &[(&[f32], Option<&[bool]>)]| {
        let mut o = HistogramObserver::new(2048).unwrap();
        for (v, m) in frames {
            o.observe(v, *m).unwrap();
        }
        o.histogram().unwrap()
    };
    // Streamed in 4 frames of one channel each, the mask shared by every frame.
    let frames: Vec<&[f32]> = values.chunks(CELLS).collect();
    let masked = collect(
        &frames
            .iter()
            .map(|f| (*f, Some(&occupied[..])))
            .collect::<Vec<_>>(),
    );
    let unmasked = collect(&frames.iter().map(|f| (*f, None)).collect::<Vec<_>>());
    // The same frames with the empty cells dropped instead of masked.
    let occupied_frames: Vec<Vec<f32>> = frames
        .iter()
        .map(|f| {
            f.iter()
                .zip(&occupied)
                .filter(|(_, o)| **o)
                .map(|(x, _)| *x)
                .collect()
        })
        .collect();
    let reference = collect(
        &occupied_frames
            .iter()
            .map(|f| (&f[..], None))
            .collect::<Vec<_>>(),
    );
    assert!(
        masked == reference,
        "masked histogram = histogram of occupied cells"
    );
    assert_eq!(masked.total(), 8_000);
    assert_eq!(unmasked.total(), 80_000);

    let t_masked = entropy_threshold(&masked, 127).unwrap();
    let t_unmasked = entropy_threshold(&unmasked, 127).unwrap();
    eprintln!("masked {t_masked:.4}, unmasked {t_unmasked:.4}");
    // 72 000 counted zeros pile into bin 0; Q spreads each level's count over its bins, so
    // the spike is only represented well when levels are narrow, and KL drags the
    // threshold down, clipping real features.
    assert!(t_unmasked < 0.8 * t_masked, "{t_unmasked} vs {t_masked}");
}

#[test]
fn percentile_and_mse_on_reference_histograms() {
    let cases = cases();
    let gauss = &cases["gaussian"];
    let h = Histogram::new(gauss.counts.clone(), gauss.bin_width).unwrap();
    // |N(0,1)| quantiles: 99% → 2.5758, 99.99% → 3.8906, within two bins (tail bins whose
    // expected count rounds to 0 shift the far quantile down a little).
    for (p, q) in [(99.0, 2.575_829), (99.99, 3.890_592)] {
        let t = percentile_threshold(&h, p).unwrap();
        assert!((t - q).abs() <= 2.0 * gauss.bin_width, "{p}: {t} vs {q}");
    }
    // MSE-optimal 8-bit clip of a Gaussian: about 3.94σ on this histogram.
    let t = mse_threshold(&h, 127).unwrap();
    eprintln!("gaussian mse threshold {t:.4}");
    assert!((3.8..4.8).contains(&t), "{t}");
}
