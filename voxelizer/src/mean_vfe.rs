//! Voxel mode: MeanVFE's per-voxel mean, the input of SECOND-style sparse backbones.
//!
//! Per voxel and channel (x, y, z, intensity), in f32: `sum = ((0 + p₀) + p₁) + …` over
//! the kept points in point order, then `mean = sum / n`.

use rayon::prelude::*;

use crate::assign::Assignment;
use crate::config::Grid;
use crate::occupancy::Occupancy;

/// Channels of a mean voxel feature: x, y, z, intensity.
pub const MEAN_CHANNELS: usize = 4;

/// Voxels per rayon task: a voxel is 16 bytes of output, so tasks need many of them.
const VOXEL_CHUNK: usize = 1024;

/// One frame's sparse voxels: mean features `[V, 4]` (x, y, z, intensity) and, through
/// [`Occupancy`] (which it dereferences to), coordinates `[V]` as (z, y, x), kept-point
/// counts `[V]` and the grid size, in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoxelBatch {
    occupancy: Occupancy,
    features: Vec<f32>,
}

impl VoxelBatch {
    /// An empty batch; [`crate::Voxelizer::voxelize_mean`] fills it and reuses its buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mean features `[V, 4]`, row-major.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// Rebuilds the batch from an assignment, reusing every buffer.
    pub(crate) fn fill(&mut self, grid: &Grid, assignment: &Assignment) {
        self.occupancy.fill(grid, assignment);
        self.features.resize(assignment.len() * MEAN_CHANNELS, 0.0);
        self.features
            .par_chunks_mut(MEAN_CHANNELS)
            .with_min_len(VOXEL_CHUNK)
            .enumerate()
            .for_each(|(v, out)| {
                let points = assignment.points_of(v);
                let mut sum = [0.0f32; MEAN_CHANNELS];
                for point in points {
                    for (s, p) in sum.iter_mut().zip(point) {
                        *s += p;
                    }
                }
                let n = points.len() as f32;
                for (o, s) in out.iter_mut().zip(sum) {
                    *o = s / n;
                }
            });
    }
}

impl std::ops::Deref for VoxelBatch {
    type Target = Occupancy;

    fn deref(&self) -> &Occupancy {
        &self.occupancy
    }
}
