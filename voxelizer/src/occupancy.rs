//! The part of every output that says which voxels a frame occupies.

use crate::assign::Assignment;
use crate::config::Grid;

/// Which voxels (or pillars) a frame occupies, in order of first appearance: their
/// coordinates (z, y, x), their kept-point counts, and the grid they index. Both
/// [`crate::PillarBatch`] and [`crate::VoxelBatch`] dereference to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Occupancy {
    coords: Vec<[i32; 3]>,
    num_points: Vec<u32>,
    grid_size: [usize; 3],
}

impl Occupancy {
    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.num_points.len()
    }

    /// True when no point fell in range.
    pub fn is_empty(&self) -> bool {
        self.num_points.is_empty()
    }

    /// Coordinates (z, y, x) in grid cells; z is 0 on a one-layer pillar grid.
    pub fn coords(&self) -> &[[i32; 3]] {
        &self.coords
    }

    /// Points kept per voxel, `1..=max_points_per_voxel`.
    pub fn num_points(&self) -> &[u32] {
        &self.num_points
    }

    /// Grid cells along (x, y, z): a pillar BEV canvas is `grid_size[1] × grid_size[0]`,
    /// a sparse backbone's spatial shape is the reverse, (z, y, x).
    pub fn grid_size(&self) -> [usize; 3] {
        self.grid_size
    }

    /// Copies the assignment's voxels, reusing the buffers.
    pub(crate) fn fill(&mut self, grid: &Grid, assignment: &Assignment) {
        self.grid_size = grid.dims.map(|d| d as usize);
        self.coords.clone_from(&assignment.coords);
        self.num_points.clone_from(&assignment.num_points);
    }
}
