//! A checkpoint with missing, extra, mis-shaped and wrongly typed tensors gives one error
//! that names every one of them.

use std::path::Path;

use lidarq_detector::weights::Tensor;
use lidarq_detector::{DetectorError, Graph, ModelConfig, WeightStore};
use safetensors::SafeTensors;

#[test]
fn every_bad_tensor_is_named_in_one_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let cfg = ModelConfig::from_file(&dir.join("model.json")).unwrap();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Tensor)> = st
        .tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(name, v)| {
            let data = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (
                name,
                Tensor {
                    shape: v.shape().to_vec(),
                    data,
                },
            )
        })
        .collect();
    // The intact checkpoint loads (num_batches_tracked, dropped here, is optional).
    let mut ok = WeightStore::from_tensors(Path::new("ok.safetensors"), tensors.clone());
    Graph::build(&cfg, &mut ok);
    ok.finish().unwrap();

    tensors
        .retain(|(n, _)| n != "backbone_2d.blocks.1.4.weight" && n != "dense_head.conv_cls.bias");
    for (n, t) in &mut tensors {
        if n == "backbone_2d.deblocks.0.0.weight" {
            t.shape = vec![16, 16, 1, 1, 1];
        }
    }
    tensors.push((
        "dense_head.conv_extra.weight".into(),
        Tensor {
            shape: vec![1],
            data: vec![0.0],
        },
    ));
    let mut bad = WeightStore::from_tensors(Path::new("bad.safetensors"), tensors);
    Graph::build(&cfg, &mut bad);
    let err = bad.finish().unwrap_err();
    let DetectorError::Weights { path, problems } = &err else {
        panic!("wrong error: {err}")
    };
    assert_eq!(path, Path::new("bad.safetensors"));
    assert_eq!(problems.len(), 4, "{problems:#?}");
    let msg = err.to_string();
    for needle in [
        "backbone_2d.blocks.1.4.weight: missing (expected shape [32, 32, 3, 3])",
        "dense_head.conv_cls.bias: missing (expected shape [18])",
        "backbone_2d.deblocks.0.0.weight: expected shape [16, 16, 1, 1], got [16, 16, 1, 1, 1]",
        "dense_head.conv_extra.weight: unexpected tensor",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in:\n{msg}");
    }
}

#[test]
fn a_non_safetensors_file_is_a_clear_error() {
    let err =
        WeightStore::from_bytes(Path::new("x.pth"), b"PK\x03\x04 not safetensors").unwrap_err();
    assert!(
        err.to_string().starts_with("x.pth: not a safetensors file"),
        "{err}"
    );
}
