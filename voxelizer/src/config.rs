//! What to voxelize: the training config's range, voxel size and limits, and the f32
//! grid geometry derived from them exactly as spconv derives it.
//!
//! The config keeps the YAML values as f64 because OpenPCDet uses them at two precisions:
//! spconv receives them as C++ `float` (so the cell test runs on `f32(voxel_size)` and
//! `f32(range)`), while PillarVFE computes its centre offset `voxel_size / 2 + range_min`
//! from the Python double `voxel_size` and the float32 `range_min` (see [`Grid`]).

use crate::error::{Result, VoxelError};

/// Training or inference: OpenPCDet keeps a different pillar limit for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `MAX_NUMBER_OF_VOXELS.train`.
    Train,
    /// `MAX_NUMBER_OF_VOXELS.test`.
    Test,
}

impl Split {
    /// OpenPCDet's KITTI `MAX_NUMBER_OF_VOXELS` (PointPillars and SECOND alike).
    fn kitti_max_voxels(self) -> usize {
        match self {
            Split::Train => 16000,
            Split::Test => 40000,
        }
    }
}

/// Range, voxel size and limits, as OpenPCDet's `DATA_PROCESSOR` /
/// `transform_points_to_voxels` entry writes them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoxelConfig {
    /// `[x_min, y_min, z_min, x_max, y_max, z_max]` in metres.
    pub point_cloud_range: [f64; 6],
    /// Voxel edge along x, y, z in metres (a pillar is one voxel spanning all of z).
    pub voxel_size: [f64; 3],
    /// Points kept per voxel; later points of a full voxel are dropped.
    pub max_points_per_voxel: usize,
    /// Voxels kept per frame; points of voxels first seen after the limit are dropped.
    pub max_voxels: usize,
}

impl VoxelConfig {
    /// OpenPCDet `kitti_models/pointpillar.yaml`: range [0, -39.68, -3, 69.12, 39.68, 1],
    /// pillars of 0.16 × 0.16 × 4 m, 32 points per pillar, 16000 (train) / 40000 (test)
    /// pillars. Grid 432 × 496 × 1.
    pub fn kitti_pointpillars(split: Split) -> Self {
        Self {
            point_cloud_range: [0.0, -39.68, -3.0, 69.12, 39.68, 1.0],
            voxel_size: [0.16, 0.16, 4.0],
            max_points_per_voxel: 32,
            max_voxels: split.kitti_max_voxels(),
        }
    }

    /// OpenPCDet `kitti_models/second.yaml`: range [0, -40, -3, 70.4, 40, 1], voxels of
    /// 0.05 × 0.05 × 0.1 m, 5 points per voxel, 16000 (train) / 40000 (test) voxels.
    /// Grid 1408 × 1600 × 40.
    pub fn kitti_second(split: Split) -> Self {
        Self {
            point_cloud_range: [0.0, -40.0, -3.0, 70.4, 40.0, 1.0],
            voxel_size: [0.05, 0.05, 0.1],
            max_points_per_voxel: 5,
            max_voxels: split.kitti_max_voxels(),
        }
    }
}

/// Which decorated features PillarVFE builds per point (`USE_ABSLOTE_XYZ`,
/// `WITH_DISTANCE` in the model config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PillarDecoration {
    /// Keep x, y, z in front of intensity (10 channels instead of 7).
    pub use_absolute_xyz: bool,
    /// Append ‖(x, y, z)‖ as a last channel.
    pub with_distance: bool,
}

impl PillarDecoration {
    /// OpenPCDet's KITTI PointPillars: absolute xyz, no distance — 10 channels.
    pub const KITTI: Self = Self {
        use_absolute_xyz: true,
        with_distance: false,
    };

    /// Channels per point: `[x, y, z,] intensity, x−x̄, y−ȳ, z−z̄, x−x_c, y−y_c, z−z_c[, ‖xyz‖]`.
    pub fn num_channels(&self) -> usize {
        7 + if self.use_absolute_xyz { 3 } else { 0 } + usize::from(self.with_distance)
    }
}

impl Default for PillarDecoration {
    fn default() -> Self {
        Self::KITTI
    }
}

/// Largest grid a frame may index: cell ids are u32 and `u32::MAX` means "no cell".
const MAX_CELLS: u64 = u32::MAX as u64;

/// The geometry every stage uses, all in f32 as spconv and PyTorch compute it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid {
    /// `f32(range_min)` per axis (x, y, z).
    pub min: [f32; 3],
    /// `f32(range_max)` for x and y, for OpenPCDet's inclusive range mask.
    pub max_xy: [f32; 2],
    /// `f32(voxel_size)` per axis.
    pub voxel: [f32; 3],
    /// Cells per axis (x, y, z).
    pub dims: [u32; 3],
    /// `dims` as f32, the exclusive upper bound of a cell quotient.
    pub dims_f: [f32; 3],
    /// PillarVFE's `voxel_size / 2 + range_min` per axis, rounded once to f32.
    pub center_offset: [f32; 3],
}

impl Grid {
    /// Derives the grid, rejecting configs spconv would silently misbehave on.
    pub fn new(cfg: &VoxelConfig) -> Result<Self> {
        check_limit("max_points_per_voxel", cfg.max_points_per_voxel)?;
        check_limit("max_voxels", cfg.max_voxels)?;
        let mut grid = Self {
            min: [0.0; 3],
            max_xy: [0.0; 2],
            voxel: [0.0; 3],
            dims: [0; 3],
            dims_f: [0.0; 3],
            center_offset: [0.0; 3],
        };
        for axis in 0..3 {
            let (lo, hi, size) = (
                cfg.point_cloud_range[axis],
                cfg.point_cloud_range[axis + 3],
                cfg.voxel_size[axis],
            );
            check_finite(RANGE_FIELDS[axis], lo)?;
            check_finite(RANGE_FIELDS[axis + 3], hi)?;
            check_finite(VOXEL_FIELDS[axis], size)?;
            // All three are finite from here on, so plain comparisons decide.
            if size as f32 <= 0.0 {
                return Err(config_error(VOXEL_FIELDS[axis], size, "must be > 0 as f32"));
            }
            if hi as f32 <= lo as f32 {
                return Err(config_error(
                    RANGE_FIELDS[axis + 3],
                    hi,
                    "must exceed the range minimum as f32",
                ));
            }
            // spconv: grid_size = std::round((max - min) / vsize) on floats, half away
            // from zero, which is what f32::round does.
            let cells = ((hi as f32 - lo as f32) / size as f32).round();
            if cells < 1.0 {
                return Err(config_error(
                    VOXEL_FIELDS[axis],
                    size,
                    "is larger than twice the range: the grid has no cell",
                ));
            }
            if cells > i32::MAX as f32 {
                return Err(config_error(
                    VOXEL_FIELDS[axis],
                    size,
                    "gives more cells than an i32 coordinate holds",
                ));
            }
            grid.min[axis] = lo as f32;
            grid.voxel[axis] = size as f32;
            grid.dims[axis] = cells as u32;
            grid.dims_f[axis] = cells;
            grid.center_offset[axis] = (size / 2.0 + f64::from(lo as f32)) as f32;
        }
        grid.max_xy = [
            cfg.point_cloud_range[3] as f32,
            cfg.point_cloud_range[4] as f32,
        ];
        let dims = grid.dims.map(u64::from);
        if dims.iter().product::<u64>() >= MAX_CELLS {
            return Err(VoxelError::Grid {
                grid: dims,
                msg: "cell ids must fit in u32",
            });
        }
        Ok(grid)
    }

    /// Number of cells, `nx · ny · nz` (below `u32::MAX` by construction).
    pub fn num_cells(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product()
    }

    /// The cell id of a point, or `dropped` when the point is dropped (OpenPCDet's range
    /// mask and spconv's cell test; see the crate docs). Branch-free so that the cell
    /// pass vectorises: every comparison is evaluated and the id is selected at the end.
    #[inline]
    pub fn cell_or(&self, x: f32, y: f32, z: f32, dropped: u32) -> u32 {
        let masked =
            (x >= self.min[0]) & (x <= self.max_xy[0]) & (y >= self.min[1]) & (y <= self.max_xy[1]);
        let q = [
            (x - self.min[0]) / self.voxel[0],
            (y - self.min[1]) / self.voxel[1],
            (z - self.min[2]) / self.voxel[2],
        ];
        // floor(q) ∈ [0, n) ⇔ q ∈ [0, n) for integer n; NaN fails both comparisons.
        let inside = |a: usize| (q[a] >= 0.0) & (q[a] < self.dims_f[a]);
        // For kept points q ≥ 0, so truncation is floor; for dropped ones the saturating
        // casts and wrapping arithmetic give a value that is discarded.
        let [cx, cy, cz] = q.map(|v| v as u32);
        let cell = cz
            .wrapping_mul(self.dims[1])
            .wrapping_add(cy)
            .wrapping_mul(self.dims[0])
            .wrapping_add(cx);
        if masked & inside(0) & inside(1) & inside(2) {
            cell
        } else {
            dropped
        }
    }

    /// The (z, y, x) coordinates of a cell id.
    #[inline]
    pub fn coords_of(&self, cell: u32) -> [i32; 3] {
        let x = cell % self.dims[0];
        let yz = cell / self.dims[0];
        [
            (yz / self.dims[1]) as i32,
            (yz % self.dims[1]) as i32,
            x as i32,
        ]
    }
}

const RANGE_FIELDS: [&str; 6] = [
    "point_cloud_range[0]",
    "point_cloud_range[1]",
    "point_cloud_range[2]",
    "point_cloud_range[3]",
    "point_cloud_range[4]",
    "point_cloud_range[5]",
];
const VOXEL_FIELDS: [&str; 3] = ["voxel_size[0]", "voxel_size[1]", "voxel_size[2]"];

fn config_error(field: &'static str, value: impl ToString, msg: &'static str) -> VoxelError {
    VoxelError::Config {
        field,
        value: value.to_string(),
        msg,
    }
}

fn check_finite(field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && (value as f32).is_finite() {
        Ok(())
    } else {
        Err(config_error(field, value, "must be finite as f32"))
    }
}

fn check_limit(field: &'static str, value: usize) -> Result<()> {
    if value == 0 || value > u32::MAX as usize {
        Err(config_error(field, value, "must be in 1..=u32::MAX"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kitti_grid_matches_openpcdet() {
        let grid = Grid::new(&VoxelConfig::kitti_pointpillars(Split::Test)).unwrap();
        assert_eq!(grid.dims, [432, 496, 1]);
        assert_eq!(grid.center_offset, [0.08, -39.6, -1.0]);
        let grid = Grid::new(&VoxelConfig::kitti_second(Split::Train)).unwrap();
        assert_eq!(grid.dims, [1408, 1600, 40]);
    }

    #[test]
    fn cell_ids_round_trip_to_coords() {
        let grid = Grid::new(&VoxelConfig::kitti_second(Split::Test)).unwrap();
        for (x, y, z) in [
            (0.0, -40.0, -3.0),
            (70.39, 39.99, 0.99),
            (12.34, -5.6, -0.7),
        ] {
            let cell = grid.cell_or(x, y, z, u32::MAX);
            assert_ne!(cell, u32::MAX);
            let [cz, cy, cx] = grid.coords_of(cell);
            let expect = |p: f32, axis: usize| ((p - grid.min[axis]) / grid.voxel[axis]) as i32;
            assert_eq!([cz, cy, cx], [expect(z, 2), expect(y, 1), expect(x, 0)]);
        }
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let base = VoxelConfig::kitti_pointpillars(Split::Train);
        let mut cfg = base.clone();
        cfg.voxel_size[2] = 0.0;
        assert!(matches!(
            Grid::new(&cfg),
            Err(VoxelError::Config {
                field: "voxel_size[2]",
                ..
            })
        ));
        let mut cfg = base.clone();
        cfg.point_cloud_range[3] = -1.0;
        assert!(matches!(
            Grid::new(&cfg),
            Err(VoxelError::Config {
                field: "point_cloud_range[3]",
                ..
            })
        ));
        let mut cfg = base.clone();
        cfg.point_cloud_range[0] = f64::NAN;
        assert!(Grid::new(&cfg).is_err());
        let mut cfg = base.clone();
        cfg.max_voxels = 0;
        assert!(matches!(
            Grid::new(&cfg),
            Err(VoxelError::Config {
                field: "max_voxels",
                ..
            })
        ));
        let mut cfg = base;
        cfg.voxel_size = [1e-3, 1e-3, 1e-3];
        assert!(matches!(Grid::new(&cfg), Err(VoxelError::Grid { .. })));
    }
}
