//! The quantized executor and calibration on the golden fixture model (2 PFN layers,
//! 2 blocks, attention, non-trivial BatchNorm; `tests/fixtures/golden`) with synthetic
//! KITTI-like frames: int8 vs fp32 head SQNR, the int8 scatter's empty cells, artifact
//! round trips and size, bit-identical outputs across thread counts, and empty-cell
//! skipping against dense runs.

use std::path::{Path, PathBuf};

use lidarq_data::PointCloud;
use lidarq_data::synth::{SynthConfig, object_frame};
use lidarq_detector::exec::{CellWork, activation_params};
use lidarq_detector::quantized::{Calibrated, Phase, QuantMeta, layer_weights_len, weights_hash};
use lidarq_detector::{
    Activation, CalibrationOptions, Detector, ExecSetup, Executor, Fp32Executor, Graph, HeadView,
    Model, ModelConfig, PillarInput, QuantMode, QuantizedModel, calibrate,
};
use lidarq_quant::{Precision, PrecisionPlan, ThresholdMethod};
use lidarq_voxelizer::{PillarBatch, Split, Voxelizer};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn golden_model() -> Model {
    Model::load(&fixtures()).unwrap()
}

fn clouds(n: u64, seed: u64) -> Vec<PointCloud> {
    (0..n)
        .map(|i| object_frame(&SynthConfig::new(seed), i).cloud)
        .collect()
}

fn batches(model: &Model, clouds: &[PointCloud]) -> Vec<PillarBatch> {
    let mut v = Voxelizer::new(model.config.voxel_config(Split::Test)).unwrap();
    clouds
        .iter()
        .map(|c| {
            let mut b = PillarBatch::new();
            v.pillarize(c, model.config.decoration(), &mut b).unwrap();
            b
        })
        .collect()
}

/// Calibrated on 8 synthetic frames; the report compares on at most 2 (test time).
fn calibrated(model: &Model, options: CalibrationOptions) -> Calibrated {
    let options = CalibrationOptions {
        report_frames: options.report_frames.min(2),
        ..options
    };
    let frames = clouds(8, 1).into_iter().map(Ok);
    calibrate(model, frames, options, &mut |_, _, _| {}).unwrap()
}

/// `model` quantized in `mode` with the default options.
fn in_mode(model: &Model, mode: QuantMode) -> QuantizedModel {
    let options = CalibrationOptions {
        mode,
        ..CalibrationOptions::default()
    };
    calibrated(model, options).model
}

/// The head maps of one frame, concatenated (cls | boxes | dir).
fn flat(h: &HeadView) -> Vec<f32> {
    let mut v = h.cls.to_vec();
    v.extend_from_slice(h.boxes);
    v.extend_from_slice(h.dir.unwrap_or(&[]));
    v
}

/// SQNR (dB) of `test` against `reference`.
fn sqnr(reference: &[f32], test: &[f32]) -> f64 {
    let m = lidarq_quant::compare(reference, test).unwrap();
    m.sqnr_db
}

/// Head SQNR of a quantized model against fp32, over frames it was not calibrated on.
fn head_sqnr(model: &Model, q: &QuantizedModel) -> f64 {
    let frames = batches(model, &clouds(3, 99));
    let mut f = Fp32Executor::new(&model.graph).unwrap();
    let mut x = Executor::new(&q.graph, &q.setup).unwrap();
    let (mut r, mut t) = (Vec::new(), Vec::new());
    for b in &frames {
        r.extend(flat(&f.run(&PillarInput::from(b)).unwrap()));
        t.extend(flat(&x.run(&PillarInput::from(b)).unwrap()));
    }
    sqnr(&r, &t)
}

#[test]
fn int8_head_outputs_track_fp32() {
    let model = golden_model();
    let kl = calibrated(&model, CalibrationOptions::default());
    assert_eq!(kl.report.meta.frames, 8);
    let precisions = &kl.model.setup.precisions;
    let names: Vec<&str> = model.graph.layers.iter().map(|l| l.name.as_str()).collect();
    for (name, p) in names.iter().zip(precisions) {
        let want = if name.contains("attention") {
            Precision::Fp16
        } else {
            Precision::Int8
        };
        assert_eq!(*p, want, "{name}");
    }
    // Each int8 tensor adds rounding noise at ≈ 40-50 dB for a well-used 8-bit range
    // (measured per layer in the report); the head maps, dominated by large class logits,
    // keep ≈ 53 dB with sparsity-aware KL. 40 dB leaves room for toolchain-level float
    // differences while a wrong scale, zero point, bias or deconv layout (≤ 20 dB) fails.
    let s = head_sqnr(&model, &kl.model);
    assert!(s > 40.0, "int8 (KL, sparse) head SQNR {s:.1} dB");
    for l in &kl.report.layers {
        assert!(l.sqnr_db > 35.0, "{}: {:.1} dB", l.layer, l.sqnr_db);
        assert!(l.cosine > 0.999, "{}: cosine {}", l.layer, l.cosine);
        assert!(l.clipped < 0.01, "{}: {} clipped", l.layer, l.clipped);
    }
    // Counting the empty cells (and the ReLU zeros) drags the KL thresholds down and clips
    // the activations: the failure mode sparsity-aware calibration exists to avoid.
    let sqnr_of =
        |options: CalibrationOptions| head_sqnr(&model, &calibrated(&model, options).model);
    let base = CalibrationOptions::default;
    let sn = sqnr_of(CalibrationOptions {
        sparse: false,
        ..base()
    });
    assert!(sn < s - 10.0, "KL without masking {sn:.1} dB vs {s:.1} dB");
    // fp16 everywhere: ~11 significant bits at every layer boundary.
    let s16 = sqnr_of(CalibrationOptions {
        mode: QuantMode::Fp16,
        ..base()
    });
    assert!(s16 > 60.0, "fp16 head SQNR {s16:.1} dB");
    // Dynamic: per-frame min-max ranges, no clipping but no calibration either.
    let sd = sqnr_of(CalibrationOptions {
        mode: QuantMode::Dynamic,
        ..base()
    });
    assert!(sd > 40.0, "dynamic head SQNR {sd:.1} dB");
    // Every threshold method gives a working model.
    for method in [
        ThresholdMethod::Max,
        ThresholdMethod::Percentile(99.99),
        ThresholdMethod::Mse,
    ] {
        let s = sqnr_of(CalibrationOptions { method, ..base() });
        assert!(s > 40.0, "{method:?}: head SQNR {s:.1} dB");
    }
}

#[test]
fn empty_cells_hold_the_zero_point() {
    let model = golden_model();
    let q = calibrated(&model, CalibrationOptions::default()).model;
    let frames = batches(&model, &clouds(2, 5));
    let mut x = Executor::new(&q.graph, &q.setup).unwrap();
    for b in &frames {
        let input = PillarInput::from(b);
        let mut pillars: Vec<i8> = Vec::new();
        let mut checked = false;
        x.run_observed(&input, &mut |name, out| {
            let Activation::I8 { values, params } = out else {
                return;
            };
            if name == "vfe.pfn_layers.1" {
                pillars = values.to_vec();
            }
            if name == "map_to_bev_module" {
                let c = pillars.len() / input.len();
                let nx = 32;
                let mut occupied = vec![false; values.len() / c];
                for (p, &[_, y, x]) in input.coords.iter().enumerate() {
                    let cell = y as usize * nx + x as usize;
                    occupied[cell] = true;
                    assert_eq!(
                        &values[cell * c..(cell + 1) * c],
                        &pillars[p * c..(p + 1) * c]
                    );
                }
                let zp = params.zero_point as i8;
                for (cell, &o) in occupied.iter().enumerate() {
                    if !o {
                        assert!(values[cell * c..(cell + 1) * c].iter().all(|&v| v == zp));
                    }
                }
                assert_eq!(params.dequantize(params.zero_point), 0.0);
                assert!(occupied.iter().any(|o| !o) && occupied.iter().any(|o| *o));
                checked = true;
            }
        })
        .unwrap();
        assert!(checked, "the scatter ran in int8");
    }
}

#[test]
fn artifact_round_trip_is_bit_identical() {
    let model = golden_model();
    let frames = batches(&model, &clouds(2, 7));
    for mode in [QuantMode::Static, QuantMode::Dynamic, QuantMode::Fp16] {
        let q = in_mode(&model, mode);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.int8.safetensors");
        q.save(&path).unwrap();
        let back = QuantizedModel::load(&path).unwrap();
        assert_eq!(back, q, "{mode}");
        let mut a = Executor::new(&q.graph, &q.setup).unwrap();
        let mut b = Executor::new(&back.graph, &back.setup).unwrap();
        for f in &frames {
            let x = flat(&a.run(&PillarInput::from(f)).unwrap());
            let y = flat(&b.run(&PillarInput::from(f)).unwrap());
            assert!(
                x.iter().zip(&y).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{mode}"
            );
        }
        // Detector level: the artifact file and the in-memory model detect the same boxes.
        let cloud = &clouds(1, 11)[0];
        let d1 = Detector::from_quantized(&q).unwrap().detect(cloud).unwrap();
        let d2 = Detector::load_quantized(&path)
            .unwrap()
            .detect(cloud)
            .unwrap();
        assert_eq!(d1, d2, "{mode}");
    }
    let bad = QuantizedModel::from_bytes(Path::new("x"), &[1, 2, 3]);
    assert!(bad.is_err());
}

#[test]
fn an_all_int8_artifact_is_at_least_3_8x_smaller_than_fp32() {
    // The KITTI-size graph (4.8 M weights) with random weights; the size does not depend on
    // the activation parameters, so every tensor gets the same ones (no calibration run).
    let model = Model::random(ModelConfig::kitti(), 3).unwrap();
    let params = activation_params(-4.0, 4.0).unwrap();
    let meta = QuantMeta {
        mode: QuantMode::Static,
        method: ThresholdMethod::Entropy,
        weight_clip: ThresholdMethod::Max,
        frames: 0,
        sparse: true,
        plan: PrecisionPlan {
            default: Precision::Int8,
            rules: Vec::new(),
        },
        source_hash: weights_hash(&model.graph),
        lidarq_version: "test".into(),
    };
    let q = QuantizedModel::from_model(
        &model,
        vec![Some(params); model.graph.tensors.len()],
        None,
        meta,
    )
    .unwrap();
    assert!(q.setup.precisions.iter().all(|&p| p == Precision::Int8));
    // The fp32 weights file holds at least every folded weight and bias in f32 (the real
    // one also holds the BatchNorm statistics).
    let fp32_bytes: usize = model
        .graph
        .layers
        .iter()
        .map(|l| layer_weights_len(&l.op))
        .sum::<usize>()
        * 4;
    let bytes = q.to_bytes().unwrap().len();
    let ratio = fp32_bytes as f64 / bytes as f64;
    assert!(
        ratio >= 3.8,
        "fp32 {fp32_bytes} B vs int8 artifact {bytes} B: {ratio:.3}×"
    );
}

#[test]
fn mixed_plans_insert_boundaries_and_round_trip() {
    // int8 → fp32 scatter → int8 block 0 → fp16 block 1 (and attention) → int8 deconvs and
    // concat → an fp32 head conv beside int8 ones: every kind of domain change.
    let model = golden_model();
    let mut plan = PrecisionPlan::default();
    for rule in [
        "map_to_bev_module=fp32",
        "backbone_2d.blocks.1.*=fp16",
        "dense_head.conv_box=fp32",
    ] {
        plan.rules.push(rule.parse().unwrap());
    }
    let options = CalibrationOptions {
        plan,
        ..CalibrationOptions::default()
    };
    let q = calibrated(&model, options).model;
    let p = |name: &str| {
        let i = model
            .graph
            .layers
            .iter()
            .position(|l| l.name == name)
            .unwrap();
        q.setup.precisions[i]
    };
    assert_eq!(p("map_to_bev_module"), Precision::Fp32);
    assert_eq!(p("backbone_2d.blocks.1.4"), Precision::Fp16);
    assert_eq!(p("backbone_2d.blocks.0.1"), Precision::Int8);
    assert_eq!(p("dense_head.conv_box"), Precision::Fp32);
    let s = head_sqnr(&model, &q);
    assert!(s > 40.0, "mixed plan head SQNR {s:.1} dB");
    let back = QuantizedModel::from_bytes(Path::new("mem"), &q.to_bytes().unwrap()).unwrap();
    assert_eq!(back, q);
}

#[test]
fn int8_outputs_do_not_depend_on_the_thread_count() {
    let model = golden_model();
    let frames = batches(&model, &clouds(2, 13));
    for mode in [QuantMode::Static, QuantMode::Dynamic] {
        let q = in_mode(&model, mode);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut x = Executor::new(&q.graph, &q.setup).unwrap();
                frames
                    .iter()
                    .flat_map(|f| flat(&x.run(&PillarInput::from(f)).unwrap()))
                    .map(f32::to_bits)
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(run(1), run(2), "{mode}");
    }
}

#[test]
fn calibration_reports_progress_and_rejects_int8_attention() {
    let model = golden_model();
    let mut seen = Vec::new();
    let options = CalibrationOptions {
        report_frames: 2,
        ..CalibrationOptions::default()
    };
    calibrate(
        &model,
        clouds(3, 1).into_iter().map(Ok),
        options,
        &mut |phase, done, total| seen.push((phase, done, total)),
    )
    .unwrap();
    assert_eq!(
        seen,
        vec![
            (Phase::Collect, 1, 3),
            (Phase::Collect, 2, 3),
            (Phase::Collect, 3, 3),
            (Phase::Report, 1, 2),
            (Phase::Report, 2, 2),
        ]
    );
    let all_int8 = CalibrationOptions {
        plan: PrecisionPlan {
            default: Precision::Int8,
            rules: Vec::new(),
        },
        ..CalibrationOptions::default()
    };
    let err = calibrate(
        &model,
        clouds(1, 1).into_iter().map(Ok),
        all_int8,
        &mut |_, _, _| {},
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("attention"), "{err}");
}

/// FNV-1a 64 of the int8 model's head outputs on two frames (calibration included).
fn int8_digest() -> u64 {
    let model = golden_model();
    let q = in_mode(&model, QuantMode::Static);
    let mut x = Executor::new(&q.graph, &q.setup).unwrap();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &batches(&model, &clouds(2, 17)) {
        for v in flat(&x.run(&PillarInput::from(f)).unwrap()) {
            for b in v.to_bits().to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    h
}

/// Set in the child process of [`int8_outputs_do_not_depend_on_the_kernel_path`].
const DIGEST_CHILD: &str = "LIDARQ_TEST_DIGEST_CHILD";

#[test]
fn int8_outputs_do_not_depend_on_the_kernel_path() {
    use lidarq_quant::kernels::cpu;
    if std::env::var_os(DIGEST_CHILD).is_some() {
        println!("isa={} digest={:016x}", cpu::selected(), int8_digest());
        return;
    }
    // The kernel path is chosen once per process: rerun this test in a child forced to
    // the scalar reference and compare calibration + int8 execution end to end.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "int8_outputs_do_not_depend_on_the_kernel_path",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIGEST_CHILD, "1")
        .env("LIDARQ_ISA", "scalar")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // The test harness prints "test <name> ... " on the same line first.
    let line = text
        .lines()
        .find_map(|l| l.find("isa=").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("child printed no digest:\n{text}"));
    let here = format!("isa={} digest={:016x}", cpu::selected(), int8_digest());
    assert!(line.starts_with("isa=scalar"), "{line}");
    // The default must be the fastest path this CPU has (the quant crate's coverage guard
    // checks that against the CPU's features read on their own).
    if std::env::var_os("LIDARQ_ISA").is_none() {
        assert_eq!(
            cpu::selected(),
            cpu::selection().best_available,
            "the SIMD path meant to be compared"
        );
    }
    assert_eq!(
        line.split(' ').nth(1),
        here.split(' ').nth(1),
        "{line} vs {here}"
    );
}

/// Every layer's output bits over `frames`, and the cells computed per conv in the last.
fn layer_bits(
    graph: &Graph,
    setup: &ExecSetup,
    frames: &[PillarBatch],
    skip: bool,
) -> (Vec<u32>, Vec<CellWork>) {
    let mut x = Executor::new(graph, setup).unwrap();
    x.set_skip_empty(skip);
    let mut bits = Vec::new();
    for b in frames {
        x.run_observed(&PillarInput::from(b), &mut |_, out| match out {
            Activation::I8 { values, .. } => bits.extend(values.iter().map(|&v| v as u8 as u32)),
            Activation::F32(v) => bits.extend(v.iter().map(|v| v.to_bits())),
        })
        .unwrap();
    }
    (bits, x.cell_work())
}

#[test]
fn skipping_empty_cells_is_bit_identical_to_dense() {
    // Object points within 8 m only (no ground returns): a sparse map with empty regions
    // wider than an attention window, as far-range LiDAR BEV is.
    let sparse_clouds: Vec<PointCloud> = clouds(2, 21)
        .into_iter()
        .map(|mut c| {
            let keep: Vec<bool> =
                c.z.iter()
                    .zip(&c.x)
                    .map(|(&z, &x)| z > -1.2 && x < 8.0)
                    .collect();
            c.retain_mask(&keep);
            c
        })
        .collect();
    for attention in [true, false] {
        // Pillars of a quarter of the golden size: maps large enough that the border ring
        // and the edge windows leave empty interior cells at 1/8 resolution.
        let mut config = golden_model().config;
        config.voxel.voxel_size[0] /= 4.0;
        config.voxel.voxel_size[1] /= 4.0;
        if !attention {
            config.backbone_2d.attention = None;
        }
        let model = Model::random(config, 7).unwrap();
        let q = calibrated(&model, CalibrationOptions::default()).model;
        let frames = batches(&model, &sparse_clouds);
        let fp32 = ExecSetup::fp32(&model.graph);
        for (graph, setup, name) in [(&q.graph, &q.setup, "int8"), (&model.graph, &fp32, "fp32")] {
            let (dense, dense_work) = layer_bits(graph, setup, &frames, false);
            let (sparse, work) = layer_bits(graph, setup, &frames, true);
            assert!(dense == sparse, "{name}, attention: {attention}");
            assert!(dense_work.iter().all(|w| w.computed == w.total));
            let skipped = |prefix: &str| {
                work.iter()
                    .filter(|w| w.layer.starts_with(prefix))
                    .any(|w| w.computed < w.total)
            };
            // Every stage skips, after the attention block too (it is computed densely, and
            // passes on its empty full-sized windows; in int8 it runs in fp16 between a
            // dequantize and a quantize).
            for stage in [
                "backbone_2d.blocks.0.",
                "backbone_2d.deblocks.0.",
                "backbone_2d.deblocks.1.",
                "dense_head.",
            ] {
                assert!(skipped(stage), "{name}, {stage}: {work:?}");
            }
        }
    }
}

/// The head's 1×1 convolutions run as one fused layer; each head output must equal its
/// layer computed alone by the kernels from the observed head input (fp32 and int8, bit
/// for bit).
#[test]
fn the_fused_head_equals_each_head_layer_alone() {
    use lidarq_detector::exec::Int8Bias;
    use lidarq_detector::graph::Op;
    use lidarq_quant::Dequantizer;
    use lidarq_quant::kernels::{ConvShape, OutputStage, PackedConvF32, PackedConvI8};

    let model = golden_model();
    let q = in_mode(&model, QuantMode::Static);
    let frame = &batches(&model, &clouds(1, 23))[0];
    let fp32 = ExecSetup::fp32(&model.graph);
    for (graph, setup) in [(&model.graph, &fp32), (&q.graph, &q.setup)] {
        let heads: Vec<usize> = (0..graph.layers.len())
            .filter(|&i| graph.layers[i].name.starts_with("dense_head."))
            .collect();
        assert_eq!(heads.len(), 3);
        let input = graph.layers[heads[0]].inputs[0];
        let producer = graph.layers.iter().find(|l| l.output == input).unwrap();
        let (h, w, in_c) = graph.tensors[input].shape.hwc();
        let (mut x_f32, mut x_i8) = (Vec::new(), None);
        let mut outputs: Vec<(String, Vec<f32>)> = Vec::new();
        let mut exec = Executor::new(graph, setup).unwrap();
        exec.run_observed(&PillarInput::from(frame), &mut |name, out| {
            if name == producer.name {
                out.to_f32(&mut x_f32);
                if let Activation::I8 { values, .. } = out {
                    x_i8 = Some(values.to_vec());
                }
            } else if name.starts_with("dense_head.") {
                let mut v = Vec::new();
                out.to_f32(&mut v);
                outputs.push((name.to_string(), v));
            }
        })
        .unwrap();
        for (&li, (name, got)) in heads.iter().zip(&outputs) {
            assert_eq!(&graph.layers[li].name, name);
            let Op::Conv(c) = &graph.layers[li].op else {
                panic!("{name} is not a convolution")
            };
            let shape = ConvShape::conv(h, w, in_c, c.weights.out_channels, 1, 1, 0);
            let mut want = vec![0f32; shape.output_len()];
            match &setup.int8[li] {
                None => PackedConvF32::new(shape, &c.weights.data, Some(&c.weights.bias), c.relu)
                    .unwrap()
                    .run(&x_f32, &mut want)
                    .unwrap(),
                Some(qw) => {
                    let p = setup.activations[input].unwrap();
                    // The head input as the head reads it: the producer's int8 values, or
                    // the producer's f32 output quantized at the boundary.
                    let xq = x_i8
                        .clone()
                        .unwrap_or_else(|| x_f32.iter().map(|&v| p.quantize(v) as i8).collect());
                    let Int8Bias::Fixed(bias) = &qw.bias else {
                        panic!("static int8 has a fixed bias")
                    };
                    let scales = qw.scales.iter().map(|&s| p.scale * s).collect();
                    let stage =
                        OutputStage::Dequantize(Dequantizer::new(scales, bias.clone()).unwrap());
                    PackedConvI8::new(shape, &qw.weights, p.zero_point, stage)
                        .unwrap()
                        .run(&xq, &mut want)
                        .unwrap();
                }
            }
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(got) == bits(&want),
                "{name} ({:?})",
                setup.precisions[li]
            );
        }
    }
}
