//! The per-frame entry point: one [`Voxelizer`] per stream of frames, owning every buffer.

use lidarq_data::PointCloud;

use crate::assign::Assignment;
use crate::config::{Grid, PillarDecoration, VoxelConfig};
use crate::error::Result;
use crate::mean_vfe::VoxelBatch;
use crate::pillar::PillarBatch;

/// Turns frames into pillars or mean voxels. After the first frames it allocates nothing:
/// its own buffers and the output batch's grow to the largest frame seen and are reused.
/// Not shareable across threads while running (it is `&mut`); it parallelises internally
/// with rayon, and its output is identical for every thread count.
#[derive(Debug)]
pub struct Voxelizer {
    config: VoxelConfig,
    grid: Grid,
    assignment: Assignment,
}

impl Voxelizer {
    /// Checks the config and derives the grid.
    pub fn new(config: VoxelConfig) -> Result<Self> {
        let grid = Grid::new(&config)?;
        let assignment = Assignment::new(&grid, config.max_points_per_voxel, config.max_voxels);
        Ok(Self {
            config,
            grid,
            assignment,
        })
    }

    /// The config this voxelizer was built from.
    pub fn config(&self) -> &VoxelConfig {
        &self.config
    }

    /// Grid cells along (x, y, z), spconv's `round((max − min) / voxel_size)` in f32.
    pub fn grid_size(&self) -> [usize; 3] {
        self.grid.dims.map(|d| d as usize)
    }

    /// PointPillars input: assigns the cloud's points to pillars and writes PillarVFE's
    /// decorated features into `out`. Fails only when the cloud's columns disagree.
    pub fn pillarize(
        &mut self,
        cloud: &PointCloud,
        decoration: PillarDecoration,
        out: &mut PillarBatch,
    ) -> Result<()> {
        self.assignment.run(&self.grid, cloud)?;
        out.fill(&self.grid, &self.assignment, decoration);
        Ok(())
    }

    /// Sparse-backbone input: assigns the cloud's points to voxels and writes MeanVFE's
    /// per-voxel means into `out`. Fails only when the cloud's columns disagree.
    pub fn voxelize_mean(&mut self, cloud: &PointCloud, out: &mut VoxelBatch) -> Result<()> {
        self.assignment.run(&self.grid, cloud)?;
        out.fill(&self.grid, &self.assignment);
        Ok(())
    }
}
