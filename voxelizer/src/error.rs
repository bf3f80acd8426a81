/// Every failure of the voxelizer: a configuration it cannot honour, or a cloud whose
/// columns disagree. Points themselves never fail: out-of-range and NaN points are dropped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VoxelError {
    /// A configuration field is out of its domain.
    #[error("voxel config: {field} = {value}: {msg}")]
    Config {
        /// The offending field, e.g. `voxel_size[2]`.
        field: &'static str,
        /// Its value as written.
        value: String,
        /// What was wrong.
        msg: &'static str,
    },
    /// The grid the configuration implies cannot be indexed.
    #[error("voxel config: grid {grid:?} (x, y, z) has too many cells: {msg}")]
    Grid {
        /// Cells along x, y, z.
        grid: [u64; 3],
        /// Which limit was exceeded.
        msg: &'static str,
    },
    /// A point-cloud column is shorter or longer than `x`.
    #[error("point cloud: column {column} has {len} values but x has {expected}")]
    ColumnLength {
        /// The column, e.g. `intensity`.
        column: &'static str,
        /// Its length.
        len: usize,
        /// The length of `x`.
        expected: usize,
    },
    /// The cloud has more points than the u32 point indices can address.
    #[error("point cloud: {len} points, more than the {max} a frame may hold")]
    TooManyPoints {
        /// Points in the cloud.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Result of the voxelizer.
pub type Result<T> = std::result::Result<T, VoxelError>;
