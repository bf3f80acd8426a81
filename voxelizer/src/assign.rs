//! Which point lands in which voxel slot: spconv's `Point2VoxelCPU` rule, in two passes.
//!
//! 1. In parallel, every point gets its cell id (or "dropped"); this is a pure map, so the
//!    thread count cannot change it.
//! 2. Sequentially, in point order, cells become voxels in order of first appearance until
//!    `max_voxels` exist, and each voxel takes its first `max_points_per_voxel` points.
//!    This pass is the first-come rule itself; it stays sequential because any split of it
//!    would have to be merged back in point order, which costs more than it saves (it is a
//!    few nanoseconds per point).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use lidarq_data::PointCloud;
use rayon::prelude::*;

use crate::config::Grid;
use crate::error::{Result, VoxelError};

/// A grid up to this many cells maps cell → voxel through a dense array (16 MiB at most);
/// larger grids (fine sparse voxels) use a hash map.
const DENSE_TABLE_MAX_CELLS: usize = 1 << 22;

/// Points per rayon task in the cell pass: large enough that scheduling is noise.
const CELL_CHUNK: usize = 8192;

/// Marks a dropped point or an unused dense-table entry.
const NONE: u32 = u32::MAX;

/// Cell id → voxel index for the frame being built.
#[derive(Debug)]
enum CellTable {
    /// One entry per grid cell, `NONE` when the cell has no voxel.
    Dense(Vec<u32>),
    /// Only the occupied cells.
    Sparse(HashMap<u32, u32, BuildHasherDefault<CellHasher>>),
}

impl CellTable {
    fn new(num_cells: usize) -> Self {
        if num_cells <= DENSE_TABLE_MAX_CELLS {
            Self::Dense(vec![NONE; num_cells])
        } else {
            Self::Sparse(HashMap::default())
        }
    }

    fn get(&self, cell: u32) -> Option<u32> {
        match self {
            Self::Dense(table) => Some(table[cell as usize]).filter(|&v| v != NONE),
            Self::Sparse(map) => map.get(&cell).copied(),
        }
    }

    fn insert(&mut self, cell: u32, voxel: u32) {
        match self {
            Self::Dense(table) => table[cell as usize] = voxel,
            Self::Sparse(map) => {
                map.insert(cell, voxel);
            }
        }
    }

    /// Empties the table; `cells` are the occupied cells (the dense table resets only them).
    fn clear(&mut self, cells: &[u32]) {
        match self {
            Self::Dense(table) => cells.iter().for_each(|&c| table[c as usize] = NONE),
            Self::Sparse(map) => map.clear(),
        }
    }
}

/// Multiplicative (Fibonacci) hashing of a u32 cell id: cell ids are dense small integers,
/// so SipHash's DoS resistance buys nothing and costs most of the lookup.
#[derive(Debug, Default)]
struct CellHasher(u64);

impl Hasher for CellHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The frame's voxels and the points each one kept, reused from frame to frame.
#[derive(Debug)]
pub(crate) struct Assignment {
    table: CellTable,
    /// Per point: its cell id or `NONE`.
    point_cells: Vec<u32>,
    /// Per voxel, in order of first appearance: its cell id.
    voxel_cells: Vec<u32>,
    /// Per voxel: (z, y, x).
    pub coords: Vec<[i32; 3]>,
    /// Per voxel: points kept (1..=max_points).
    pub num_points: Vec<u32>,
    /// `[voxel][slot]` → the kept point's (x, y, z, intensity), `max_points` slots per
    /// voxel, the first `num_points` valid. Copying the point here, while the points are
    /// streamed in order, makes every later per-voxel pass read contiguous memory instead
    /// of gathering from four cloud columns (which cost a cache miss per point per column
    /// on a 120k-point frame: points of one pillar come from different beams).
    slots: Vec<[f32; 4]>,
    pub max_points: usize,
    max_voxels: usize,
}

impl Assignment {
    pub fn new(grid: &Grid, max_points: usize, max_voxels: usize) -> Self {
        Self {
            table: CellTable::new(grid.num_cells()),
            point_cells: Vec::new(),
            voxel_cells: Vec::new(),
            coords: Vec::new(),
            num_points: Vec::new(),
            slots: Vec::new(),
            max_points,
            max_voxels,
        }
    }

    /// Number of voxels of the last frame.
    pub fn len(&self) -> usize {
        self.num_points.len()
    }

    /// The points (x, y, z, intensity) voxel `v` kept, in point order.
    #[inline]
    pub fn points_of(&self, v: usize) -> &[[f32; 4]] {
        let start = v * self.max_points;
        &self.slots[start..start + self.num_points[v] as usize]
    }

    /// Assigns the points of `cloud` to voxels (see the module docs).
    pub fn run(&mut self, grid: &Grid, cloud: &PointCloud) -> Result<()> {
        let n = checked_len(cloud)?;
        self.point_cells.resize(n, NONE);
        self.point_cells
            .par_chunks_mut(CELL_CHUNK)
            .zip(cloud.x.par_chunks(CELL_CHUNK))
            .zip(cloud.y.par_chunks(CELL_CHUNK))
            .zip(cloud.z.par_chunks(CELL_CHUNK))
            .for_each(|(((cells, xs), ys), zs)| {
                for (cell, ((&x, &y), &z)) in cells.iter_mut().zip(xs.iter().zip(ys).zip(zs)) {
                    *cell = grid.cell_or(x, y, z, NONE);
                }
            });

        self.table.clear(&self.voxel_cells);
        self.voxel_cells.clear();
        self.coords.clear();
        self.num_points.clear();
        let columns = cloud
            .x
            .iter()
            .zip(&cloud.y)
            .zip(&cloud.z)
            .zip(&cloud.intensity);
        for (&cell, (((&x, &y), &z), &intensity)) in self.point_cells.iter().zip(columns) {
            if cell == NONE {
                continue;
            }
            let voxel = match self.table.get(cell) {
                Some(v) => v as usize,
                None if self.voxel_cells.len() == self.max_voxels => continue,
                None => {
                    let v = self.voxel_cells.len();
                    self.table.insert(cell, v as u32);
                    self.voxel_cells.push(cell);
                    self.coords.push(grid.coords_of(cell));
                    self.num_points.push(0);
                    let needed = self.voxel_cells.len() * self.max_points;
                    if self.slots.len() < needed {
                        // Grows to the largest frame's voxel count, then never again.
                        self.slots
                            .resize(needed.max(2 * self.slots.len()), [0.0; 4]);
                    }
                    v
                }
            };
            let kept = self.num_points[voxel] as usize;
            if kept < self.max_points {
                self.slots[voxel * self.max_points + kept] = [x, y, z, intensity];
                self.num_points[voxel] += 1;
            }
        }
        Ok(())
    }
}

/// The cloud's point count after checking that its columns agree and fit u32 indices.
fn checked_len(cloud: &PointCloud) -> Result<usize> {
    let n = cloud.x.len();
    for (column, len) in [
        ("y", cloud.y.len()),
        ("z", cloud.z.len()),
        ("intensity", cloud.intensity.len()),
    ] {
        if len != n {
            return Err(VoxelError::ColumnLength {
                column,
                len,
                expected: n,
            });
        }
    }
    let max = NONE as usize;
    if n > max {
        return Err(VoxelError::TooManyPoints { len: n, max });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Split, VoxelConfig};

    fn clustered_cloud(n: usize, seed: u64) -> PointCloud {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut cloud = PointCloud::with_capacity(n);
        for _ in 0..n {
            // Clustered in a small box so cells repeat and the limits bind.
            let [x, y, z, i]: [f32; 4] = rng.random();
            cloud.push(2.0 * x, 2.0 * y - 1.0, 1.2 * z - 1.5, i);
        }
        cloud
    }

    /// The dense and the hashed table are two representations of one map: forcing either
    /// on the same grid must give the same voxels, slots and counts.
    #[test]
    fn dense_and_sparse_tables_agree() {
        let cfg = VoxelConfig {
            point_cloud_range: [0.0, -1.0, -3.0, 2.0, 1.0, 1.0],
            voxel_size: [0.05, 0.05, 0.1],
            max_points_per_voxel: 3,
            max_voxels: 300,
        };
        let grid = Grid::new(&cfg).unwrap();
        let cloud = clustered_cloud(5000, 7);
        let mut dense = Assignment::new(&grid, cfg.max_points_per_voxel, cfg.max_voxels);
        assert!(matches!(dense.table, CellTable::Dense(_)));
        let mut sparse = Assignment::new(&grid, cfg.max_points_per_voxel, cfg.max_voxels);
        sparse.table = CellTable::Sparse(HashMap::default());
        for _ in 0..2 {
            dense.run(&grid, &cloud).unwrap();
            sparse.run(&grid, &cloud).unwrap();
            assert_eq!(dense.len(), 300);
            assert!(dense.num_points.contains(&3));
            assert_eq!(sparse.coords, dense.coords);
            assert_eq!(sparse.num_points, dense.num_points);
            for v in 0..dense.len() {
                assert_eq!(sparse.points_of(v), dense.points_of(v));
                assert!(!dense.points_of(v).is_empty());
            }
        }
    }

    #[test]
    fn mismatched_columns_are_an_error() {
        let mut cloud = clustered_cloud(10, 1);
        cloud.intensity.pop();
        let grid = Grid::new(&VoxelConfig::kitti_pointpillars(Split::Test)).unwrap();
        let mut a = Assignment::new(&grid, 32, 100);
        assert!(matches!(
            a.run(&grid, &cloud),
            Err(VoxelError::ColumnLength {
                column: "intensity",
                len: 9,
                expected: 10
            })
        ));
    }
}
