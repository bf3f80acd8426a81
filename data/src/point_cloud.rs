//! A point cloud stored as columns (structure of arrays): one allocation per field, never
//! one per point, and the layout the voxelizer streams through.

/// A per-point field beyond x, y, z, intensity (ring, time, anything a PCD declares),
/// widened to f64 so that every PCD numeric type is held exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraField {
    /// Field name as the source file declares it.
    pub name: String,
    /// One value per point.
    pub values: Vec<f64>,
}

/// N points in the LiDAR frame with intensity and optional extra fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointCloud {
    /// x in metres (forward).
    pub x: Vec<f32>,
    /// y in metres (left).
    pub y: Vec<f32>,
    /// z in metres (up).
    pub z: Vec<f32>,
    /// Reflectance; 0 where the source has none.
    pub intensity: Vec<f32>,
    /// Extra per-point fields, each as long as `x`.
    pub extra: Vec<ExtraField>,
}

impl PointCloud {
    /// An empty cloud with room for `n` points.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            x: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            z: Vec::with_capacity(n),
            intensity: Vec::with_capacity(n),
            extra: Vec::new(),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// True when the cloud has no point.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Appends one point (extra fields are not extended: use only on clouds without them).
    pub fn push(&mut self, x: f32, y: f32, z: f32, intensity: f32) {
        self.x.push(x);
        self.y.push(y);
        self.z.push(z);
        self.intensity.push(intensity);
    }
}
