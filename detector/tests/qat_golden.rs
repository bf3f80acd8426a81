//! The int8 executor against the PyTorch fake-quant model of quantization-aware training
//! (`tools/train/qat.py`), on fixtures written by
//! `python tools/train/export_qat_golden.py --out detector/tests/fixtures/qat_golden`: the
//! QAT export of a small random model (BatchNorm folded, activation ranges) and the
//! fake-quant model's head maps on 900 random pillars. Both quantize with the same scales,
//! zero points and rounding, so they agree to within a few quantization steps (the i32
//! bias rounding and float summation order are the only differences).

mod common;

use std::path::{Path, PathBuf};

use common::Golden;
use lidarq_detector::quantized::ActivationRanges;
use lidarq_detector::{Executor, Fp32Executor, Model, QuantizedModel};
use lidarq_quant::PrecisionPlan;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qat_golden")
}

fn quantized() -> (Model, QuantizedModel) {
    let model = Model::load(&fixtures()).unwrap();
    let ranges = ActivationRanges::load(&fixtures().join("qat_ranges.json")).unwrap();
    let q = QuantizedModel::from_ranges(&model, &ranges, PrecisionPlan::default()).unwrap();
    (model, q)
}

fn mean_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

/// Largest |a - b| and the spread of `b` (max - min).
fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let lo = b.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = b.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (diff, hi - lo)
}

#[test]
fn int8_executor_matches_the_fake_quant_model() {
    let g = Golden::load(&fixtures());
    let (model, q) = quantized();
    let mut exec = Executor::new(&q.graph, &q.setup).unwrap();
    let head = exec.run(&g.input(&model.config)).unwrap();
    let mut float = Fp32Executor::new(&model.graph).unwrap();
    let reference = float.run(&g.input(&model.config)).unwrap();
    let outputs = [
        ("cls_preds", head.cls, reference.cls),
        ("box_preds", head.boxes, reference.boxes),
        ("dir_cls_preds", head.dir.unwrap(), reference.dir.unwrap()),
    ];
    for (name, int8, fp32) in outputs {
        let want = &g.f32s[name];
        let (worst, spread) = max_diff(int8, want);
        // The head reads the concat's int8 codes: one code of it moves an output by about
        // spread / 255. Requantization rounds in fixed point and float sums in another
        // order, so a value near a rounding tie can land one code away; allow 3.
        assert!(
            worst <= 3.0 * spread / 255.0,
            "{name}: int8 vs fake-quant {worst} (output spread {spread})"
        );
        // On average the int8 executor sits much closer to fake-quant than float does:
        // they share every rounding, float shares none.
        let (int8_mean, fp32_mean) = (mean_diff(int8, want), mean_diff(fp32, want));
        assert!(
            int8_mean * 2.0 < fp32_mean,
            "{name}: mean |int8 - fake-quant| {int8_mean}, mean |fp32 - fake-quant| {fp32_mean}"
        );
    }
}

#[test]
fn ranges_must_cover_every_layer() {
    let model = Model::load(&fixtures()).unwrap();
    let mut ranges = ActivationRanges::load(&fixtures().join("qat_ranges.json")).unwrap();
    ranges.tensors.remove("backbone_2d.blocks.0.1");
    ranges
        .tensors
        .insert("backbone_2d.blocks.9.1".into(), [0.0, 1.0]);
    ranges.input_channels.pop();
    let err = QuantizedModel::from_ranges(&model, &ranges, PrecisionPlan::default())
        .unwrap_err()
        .to_string();
    for part in [
        "no range for layer `backbone_2d.blocks.0.1`",
        "`backbone_2d.blocks.9.1` is not a layer",
        "9 input channel ranges for 10 channels",
    ] {
        assert!(err.contains(part), "{err}");
    }
}
