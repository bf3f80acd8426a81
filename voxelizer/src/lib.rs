//! Turns point clouds into the backbone's input: PointPillars pillars (decorated point
//! features, pillar coordinates, point counts) and sparse voxels with mean features for
//! SECOND-style backbones. It must reproduce the training code's preprocessing exactly, or
//! a model trained in PyTorch silently loses accuracy here.
//!
//! # Use
//!
//! ```
//! use lidarq_data::PointCloud;
//! use lidarq_voxelizer::{PillarBatch, PillarDecoration, Split, VoxelConfig, Voxelizer};
//!
//! let mut voxelizer = Voxelizer::new(VoxelConfig::kitti_pointpillars(Split::Test))?;
//! let mut batch = PillarBatch::new(); // reused frame after frame
//! let mut cloud = PointCloud::default();
//! cloud.push(10.0, 2.0, -1.0, 0.5);
//! cloud.push(10.05, 2.03, -0.9, 0.1);
//! voxelizer.pillarize(&cloud, PillarDecoration::KITTI, &mut batch)?;
//! assert_eq!(batch.len(), 1);
//! assert_eq!(batch.coords()[0], [0, 260, 62]); // (z, y, x)
//! assert_eq!(batch.num_points()[0], 2);
//! assert_eq!(batch.features().len(), 1 * 32 * 10);
//! assert_eq!(batch.grid_size(), [432, 496, 1]); // (x, y, z)
//! # Ok::<(), lidarq_voxelizer::VoxelError>(())
//! ```
//!
//! - [`VoxelConfig`]: range, voxel size, limits ([`VoxelConfig::kitti_pointpillars`],
//!   [`VoxelConfig::kitti_second`] presets); [`PillarDecoration`]: PillarVFE's flags.
//! - [`Voxelizer::pillarize`] → [`PillarBatch`]: features `[P, max_points, C]` f32;
//!   it dereferences to [`Occupancy`]: coords `[P]` of (z, y, x) i32, num_points `[P]`
//!   u32, grid size (x, y, z).
//! - [`Voxelizer::voxelize_mean`] → [`VoxelBatch`]: features `[V, 4]`, and the same
//!   [`Occupancy`].
//!
//! The numpy reference of both modes is `tools/train/voxelize.py`; the golden test
//! (`tests/golden.rs`) holds this crate to it on committed fixtures.
//!
//! # What "exactly" means: the reference and every decision
//!
//! The reference is OpenPCDet's KITTI preprocessing with spconv 2.x:
//! `mask_points_and_boxes_outside_range`, then `transform_points_to_voxels`
//! (spconv `Point2VoxelCPU3d.point_to_voxel`, zyx layout), then the decoration of
//! `PillarVFE.forward` (or `MeanVFE.forward`) on float32 tensors.
//!
//! **Which points count.** A point is kept when both hold:
//! - OpenPCDet's range mask: `x_min ≤ x ≤ x_max` and `y_min ≤ y ≤ y_max`, compared in f32
//!   (`point_cloud_range` is a float32 array; z is not masked here);
//! - spconv's cell test, per axis: `q = (p − f32(min)) / f32(voxel)` in f32 (one rounded
//!   subtraction, one rounded division, no FMA), cell `c = floor(q)`, kept iff
//!   `0 ≤ c < n` with `n = round_half_away((f32(max) − f32(min)) / f32(voxel))` in f32.
//!
//! So the upper bound is the grid, not the range: a point at x == 69.12 gives
//! q = 432.00003 and cell 432 = n, and is dropped; a point at x == 0 or at z == −3 is kept
//! in cell 0; z == 1 (the range top) is dropped. A point on an interior voxel boundary
//! goes wherever the f32 quotient floors: x = 0.16 lands in cell 1, but y = −39.52, one
//! voxel above y_min, lands in cell 0, as in spconv. NaN coordinates fail every comparison and
//! are dropped. Since `floor(q) ∈ [0, n)` ⇔ `q ∈ [0, n)` for integer n, the test is done
//! on q and `c` is then the truncation of a non-negative q.
//!
//! **Which voxels and points are kept** (spconv's CPU generator, sequential): points are
//! visited in cloud order; a point whose cell has no voxel yet opens one if fewer than
//! `max_voxels` exist, and is dropped otherwise (and so are all later points of that
//! cell); a point whose voxel already holds `max_points_per_voxel` points is dropped.
//! Voxels are emitted in order of first appearance; each voxel's points in cloud order.
//! Coordinates are (z, y, x) i32 (spconv's zyx layout, OpenPCDet's `voxel_coords`
//! without the batch column). Grid size is reported as (x, y, z), like OpenPCDet's
//! `grid_size`; for the presets spconv's f32 rounding and OpenPCDet's f64 one agree.
//!
//! **Pillar features** (PillarVFE, 10 channels for KITTI, see [`PillarBatch`]):
//! `[x, y, z, intensity, x−x̄, y−ȳ, z−z̄, x−x_c, y−y_c, z−z_c]`,
//! `use_absolute_xyz: false` drops the first three, `with_distance` appends ‖xyz‖, and
//! padded slots are zero. Arithmetic, all in f32:
//! - x̄: `sum / n` where `sum` adds the kept points' coordinates in point order starting
//!   from 0. PyTorch sums all `max_points` slots (padding is zero) with its own reduction
//!   order, so versus PyTorch the mean may differ in the last bits; the numpy reference
//!   pins this crate's order and the two agree bit for bit.
//! - x_c: `f32(f32(c_x) · f32(voxel_x)) + offset_x`, two separate roundings as PyTorch's
//!   `coords * voxel_x + x_offset` performs them with Python-float scalars cast to the
//!   tensor's float32. `offset_x = f32(f64(voxel_x) / 2 + f64(f32(x_min)))`: PillarVFE
//!   adds the Python double `voxel_x / 2` to the float32 `point_cloud_range[0]` in double
//!   (NumPy 1.x scalar promotion) and PyTorch rounds the sum to f32 once. (NumPy 2 would
//!   add in f32; for both presets the two give the same f32 offsets, which a unit test
//!   checks.) This is why [`VoxelConfig`] keeps the YAML values as f64.
//! - distance: `sqrt((x·x + y·y) + z·z)`, each operation rounded to f32 (`torch.norm`
//!   may differ by an ulp).
//! - padding: PyTorch multiplies by the 0/1 mask, which can leave −0.0; this crate and
//!   the numpy reference write +0.0. The two are equal as numbers and to every layer.
//!
//! **Mean voxel features** (MeanVFE): per channel `sum / n` over the kept points, summed
//! in point order from 0, in f32.
//!
//! # Performance and determinism
//!
//! The cell computation and the decoration run on rayon; the first-come assignment is one
//! sequential pass (see `assign.rs`). Every parallel step is a pure per-point or
//! per-voxel map, so the output is bit-identical for every thread count. Cells map to
//! voxels through a dense table for grids up to 4 Mi cells (KITTI pillars: 214 272) and a
//! hash map above (fine sparse-voxel grids).

mod assign;
mod config;
mod error;
mod mean_vfe;
mod occupancy;
mod pillar;
mod voxelizer;

pub use config::{PillarDecoration, Split, VoxelConfig};
pub use error::{Result, VoxelError};
pub use mean_vfe::{MEAN_CHANNELS, VoxelBatch};
pub use occupancy::Occupancy;
pub use pillar::PillarBatch;
pub use voxelizer::Voxelizer;
