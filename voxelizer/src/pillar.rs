//! Pillar mode: PillarVFE's decorated point features, the PointPillars backbone input.
//!
//! Per pillar, in f32 and in this order (the numpy reference does the same operations):
//! - `sum = ((0 + p₀) + p₁) + …` over the kept points in point order, for x, y, z;
//!   `mean = sum / n` with `n` the kept-point count as f32;
//! - `centre = f32(coord · f32(voxel_size)) + f32(voxel_size / 2 + range_min)`, two
//!   separately rounded f32 operations as PyTorch performs them (no fused multiply-add);
//! - each kept point's row `[x, y, z,] i, x−x̄, y−ȳ, z−z̄, x−x_c, y−y_c, z−z_c[, d]` with
//!   `d = sqrt((x·x + y·y) + z·z)`;
//! - padded slots (`k ≥ n`) are +0.0 in every channel.

use rayon::prelude::*;

use crate::assign::Assignment;
use crate::config::{Grid, PillarDecoration};
use crate::occupancy::Occupancy;

/// Pillars per rayon task: one pillar is ~1 KiB of output, so 64 keeps tasks ~64 KiB.
const PILLAR_CHUNK: usize = 64;

/// One frame's pillars, ready for the pillar feature net: features `[P, max_points, C]`
/// (row-major, contiguous) and, through [`Occupancy`] (which it dereferences to),
/// coordinates `[P]` as (z, y, x), kept-point counts `[P]` and the grid size.
/// Pillars are in order of first appearance in the cloud, as spconv emits them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PillarBatch {
    occupancy: Occupancy,
    features: Vec<f32>,
    max_points: usize,
    num_channels: usize,
}

impl PillarBatch {
    /// An empty batch; [`crate::Voxelizer::pillarize`] fills it and reuses its buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Features `[P, max_points, C]`, row-major; padded slots are +0.0.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// The `[max_points, C]` block of pillar `p`.
    pub fn pillar(&self, p: usize) -> &[f32] {
        let stride = self.max_points * self.num_channels;
        &self.features[p * stride..(p + 1) * stride]
    }

    /// Slots per pillar (`max_points_per_voxel`).
    pub fn max_points(&self) -> usize {
        self.max_points
    }

    /// Channels per point `C` ([`PillarDecoration::num_channels`]).
    pub fn num_channels(&self) -> usize {
        self.num_channels
    }

    /// Rebuilds the batch from an assignment, reusing every buffer.
    pub(crate) fn fill(
        &mut self,
        grid: &Grid,
        assignment: &Assignment,
        decoration: PillarDecoration,
    ) {
        // Padding is most of the buffer (a 120k-point KITTI frame fills ~15% of the slots),
        // so it is not rewritten every frame: a block's slots at or past the previous
        // frame's count for that block are still +0.0, and only the slots the previous
        // frame used and this one does not are cleared. A new layout starts from zeros.
        let layout = (assignment.max_points, decoration.num_channels());
        if layout != (self.max_points, self.num_channels) {
            self.features.clear();
            self.occupancy = Occupancy::default();
        }
        (self.max_points, self.num_channels) = layout;
        let stride = self.max_points * self.num_channels;
        // Blocks past the previous frame's count come out of `resize` as zeros.
        self.features.resize(assignment.len() * stride, 0.0);
        let previous = self.occupancy.num_points();
        let channels = self.num_channels;
        self.features
            .par_chunks_mut(stride)
            .with_min_len(PILLAR_CHUNK)
            .enumerate()
            .for_each(|(p, out)| {
                let used = previous.get(p).map_or(0, |&n| n as usize);
                let pillar = Pillar::new(grid, assignment.points_of(p), assignment.coords[p]);
                pillar.decorate(decoration, channels, used, out);
            });
        self.occupancy.fill(grid, assignment);
    }
}

impl std::ops::Deref for PillarBatch {
    type Target = Occupancy;

    fn deref(&self) -> &Occupancy {
        &self.occupancy
    }
}

/// The per-pillar constants of the decoration.
struct Pillar<'a> {
    points: &'a [[f32; 4]],
    mean: [f32; 3],
    center: [f32; 3],
}

impl<'a> Pillar<'a> {
    fn new(grid: &Grid, points: &'a [[f32; 4]], coord: [i32; 3]) -> Self {
        let mut sum = [0.0f32; 3];
        for point in points {
            for (s, p) in sum.iter_mut().zip(point) {
                *s += p;
            }
        }
        let n = points.len() as f32;
        let [cz, cy, cx] = coord;
        let cell = [cx, cy, cz];
        Self {
            points,
            mean: sum.map(|s| s / n),
            center: std::array::from_fn(|a| cell[a] as f32 * grid.voxel[a] + grid.center_offset[a]),
        }
    }

    /// Writes the `[max_points, channels]` block of this pillar, whose slots from `used`
    /// on are already +0.0.
    fn decorate(
        &self,
        decoration: PillarDecoration,
        channels: usize,
        used: usize,
        out: &mut [f32],
    ) {
        let (rows, padding) = out.split_at_mut(self.points.len() * channels);
        for (row, &[x, y, z, intensity]) in rows.chunks_exact_mut(channels).zip(self.points) {
            let p = [x, y, z];
            let mut c = 0;
            if decoration.use_absolute_xyz {
                row[..3].copy_from_slice(&p);
                c = 3;
            }
            row[c] = intensity;
            for a in 0..3 {
                row[c + 1 + a] = p[a] - self.mean[a];
                row[c + 4 + a] = p[a] - self.center[a];
            }
            if decoration.with_distance {
                row[c + 7] = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            }
        }
        let stale = used.saturating_sub(self.points.len()) * channels;
        padding[..stale].fill(0.0);
    }
}
