//! Loading the golden fixtures that `tools/train` exports (safetensors of f32 / i32
//! tensors: pillar input and reference outputs).
// Each test crate uses the parts it needs.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use lidarq_detector::{ModelConfig, PillarInput};
use safetensors::{Dtype, SafeTensors};

pub struct Golden {
    pub f32s: HashMap<String, Vec<f32>>,
    pub i32s: HashMap<String, Vec<i32>>,
    pub coords: Vec<[i32; 3]>,
    pub num_points: Vec<u32>,
}

impl Golden {
    /// The pillar input of the fixture.
    pub fn input(&self, cfg: &ModelConfig) -> PillarInput<'_> {
        PillarInput {
            features: &self.f32s["features"],
            coords: &self.coords,
            num_points: &self.num_points,
            max_points: cfg.voxel.max_points_per_voxel,
        }
    }

    /// Reads `dir/golden.safetensors`.
    pub fn load(dir: &Path) -> Golden {
        let bytes = std::fs::read(dir.join("golden.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut f32s: HashMap<String, Vec<f32>> = HashMap::new();
        let mut i32s: HashMap<String, Vec<i32>> = HashMap::new();
        for (name, view) in st.tensors() {
            let words = view
                .data()
                .chunks_exact(4)
                .map(|b| [b[0], b[1], b[2], b[3]]);
            match view.dtype() {
                Dtype::F32 => {
                    f32s.insert(name, words.map(f32::from_le_bytes).collect());
                }
                Dtype::I32 => {
                    i32s.insert(name, words.map(i32::from_le_bytes).collect());
                }
                other => panic!("{name}: unexpected dtype {other:?}"),
            }
        }
        let coords = i32s["coords"]
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        let num_points = i32s["num_points"].iter().map(|&n| n as u32).collect();
        Golden {
            f32s,
            i32s,
            coords,
            num_points,
        }
    }
}
