//! The fp32 detector against the PyTorch reference (`tools/train/model.py`) on fixtures
//! written by `python tools/train/export_golden.py --out detector/tests/fixtures/golden`:
//! a small random model (2 PFN layers, 2 blocks, attention with partial windows, 3
//! classes) with non-trivial BatchNorm statistics, 900 random pillars, PyTorch's
//! intermediate tensors, head maps and detections after NMS.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::Golden;

use lidarq_detector::{
    Fp32Executor, Graph, HeadView, ModelConfig, PillarInput, PostProcessor, WeightStore,
};

/// fp32 reorderings (GEMM blocking, folded BatchNorm) against PyTorch.
const CLOSE: f32 = 1e-4;
/// Scores after NMS.
const SCORE_TOL: f32 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn model() -> (ModelConfig, Graph) {
    let cfg = ModelConfig::from_file(&fixtures().join("model.json")).unwrap();
    let mut store = WeightStore::from_file(&fixtures().join("model.safetensors")).unwrap();
    let graph = Graph::build(&cfg, &mut store);
    store.finish().unwrap();
    (cfg, graph)
}

fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let (i, err) = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .enumerate()
        .fold((0, 0.0f32), |m, (i, e)| if e > m.1 { (i, e) } else { m });
    assert!(
        err <= tol,
        "{name}: max abs error {err} at {i} (got {}, want {})",
        got[i],
        want[i]
    );
}

fn assert_detections(cfg: &ModelConfig, post: &PostProcessor, head: &HeadView, g: &Golden) {
    let dets = post.detections(head);
    let boxes = &g.f32s["det_boxes"];
    let scores = &g.f32s["det_scores"];
    let labels = &g.i32s["det_labels"];
    assert_eq!(dets.len(), scores.len(), "number of detections");
    assert!(
        dets.len() >= 10,
        "the fixture should exercise NMS with many boxes"
    );
    for (i, d) in dets.iter().enumerate() {
        assert_eq!(
            d.class, cfg.class_names[labels[i] as usize],
            "detection {i}: class"
        );
        assert!(
            (d.score - scores[i]).abs() <= SCORE_TOL,
            "detection {i}: score {} vs {}",
            d.score,
            scores[i]
        );
        let b = [
            d.bbox.x, d.bbox.y, d.bbox.z, d.bbox.dx, d.bbox.dy, d.bbox.dz, d.bbox.yaw,
        ];
        assert_close(
            &format!("detection {i}"),
            &b,
            &boxes[i * 7..(i + 1) * 7],
            CLOSE,
        );
    }
}

#[test]
fn head_outputs_and_detections_match_pytorch() {
    let (cfg, graph) = model();
    let g = Golden::load(&fixtures());
    let input = g.input(&cfg);

    let mut exec = Fp32Executor::new(&graph).unwrap();
    let mut taps: HashMap<String, Vec<f32>> = HashMap::new();
    let head = exec
        .run_observed(&input, &mut |layer, out| {
            taps.insert(layer.to_string(), out.to_vec());
        })
        .unwrap();
    assert_close(
        "pillar_features",
        &taps["vfe.pfn_layers.1"],
        &g.f32s["pillar_features"],
        CLOSE,
    );
    assert_close(
        "backbone_2d.attention",
        &taps["backbone_2d.attention"],
        &g.f32s["backbone_2d.attention"],
        CLOSE,
    );
    assert_close(
        "spatial_features_2d",
        &taps["backbone_2d.concat"],
        &g.f32s["spatial_features_2d"],
        CLOSE,
    );
    assert_close("cls_preds", head.cls, &g.f32s["cls_preds"], CLOSE);
    assert_close("box_preds", head.boxes, &g.f32s["box_preds"], CLOSE);
    assert_close(
        "dir_cls_preds",
        head.dir.unwrap(),
        &g.f32s["dir_cls_preds"],
        CLOSE,
    );

    let post = PostProcessor::new(&cfg);
    // Post-processing alone, on PyTorch's own head maps, then end to end.
    let torch_head = HeadView {
        cls: &g.f32s["cls_preds"],
        boxes: &g.f32s["box_preds"],
        dir: Some(&g.f32s["dir_cls_preds"]),
    };
    assert_detections(&cfg, &post, &torch_head, &g);
    assert_detections(&cfg, &post, &head, &g);
}

#[test]
fn a_second_frame_reuses_buffers_and_gives_the_same_bytes() {
    let (cfg, graph) = model();
    let g = Golden::load(&fixtures());
    let input = g.input(&cfg);
    let mut exec = Fp32Executor::new(&graph).unwrap();
    let first = exec.run(&input).unwrap().cls.to_vec();
    // A frame with fewer pillars in between must leave no trace.
    let half = PillarInput {
        features: &input.features[..input.features.len() / 2],
        coords: &g.coords[..450],
        num_points: &g.num_points[..450],
        ..input
    };
    let other = exec.run(&half).unwrap().cls.to_vec();
    assert_ne!(first, other);
    assert_eq!(exec.run(&input).unwrap().cls, first.as_slice());
}
