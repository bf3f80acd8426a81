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

    /// The extra field called `name`, if the cloud has one.
    pub fn extra(&self, name: &str) -> Option<&[f64]> {
        self.extra
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.values.as_slice())
    }

    /// Checks that every column, extras included, holds [`PointCloud::len`] values; the
    /// message names the first column that does not.
    pub fn check_columns(&self) -> std::result::Result<(), String> {
        let n = self.len();
        let named = [
            ("y", self.y.len()),
            ("z", self.z.len()),
            ("intensity", self.intensity.len()),
        ];
        let extras = self.extra.iter().map(|f| (f.name.as_str(), f.values.len()));
        match named.into_iter().chain(extras).find(|&(_, len)| len != n) {
            Some((name, len)) => Err(format!("column {name} has {len} values but x has {n}")),
            None => Ok(()),
        }
    }

    /// Keeps the points whose `keep` flag is true, in order, in every column.
    /// Panics when `keep.len() != self.len()` (a caller bug, not an input error).
    pub fn retain_mask(&mut self, keep: &[bool]) {
        assert_eq!(
            keep.len(),
            self.len(),
            "mask length must equal the point count"
        );
        fn retain<T: Copy>(column: &mut Vec<T>, keep: &[bool]) {
            let mut flags = keep.iter();
            column.retain(|_| flags.next().copied().unwrap_or(false));
        }
        retain(&mut self.x, keep);
        retain(&mut self.y, keep);
        retain(&mut self.z, keep);
        retain(&mut self.intensity, keep);
        for f in &mut self.extra {
            retain(&mut f.values, keep);
        }
    }

    /// Keeps the points inside `range` = `[x_min, y_min, z_min, x_max, y_max, z_max]` (the
    /// order of OpenPCDet's `POINT_CLOUD_RANGE`), half-open: `min <= v < max` on each axis,
    /// the same rule as the voxel grid. NaN coordinates are outside. Returns the number of
    /// points removed.
    pub fn crop_range(&mut self, range: &[f32; 6]) -> usize {
        let inside = |v: f32, axis: usize| v >= range[axis] && v < range[axis + 3];
        let keep: Vec<bool> = (0..self.len())
            .map(|i| inside(self.x[i], 0) && inside(self.y[i], 1) && inside(self.z[i], 2))
            .collect();
        self.retain_in_place(&keep)
    }

    /// Drops points with a NaN or infinite x, y, z or intensity; returns how many.
    pub fn retain_finite(&mut self) -> usize {
        let keep: Vec<bool> = (0..self.len())
            .map(|i| {
                self.x[i].is_finite()
                    && self.y[i].is_finite()
                    && self.z[i].is_finite()
                    && self.intensity[i].is_finite()
            })
            .collect();
        self.retain_in_place(&keep)
    }

    fn retain_in_place(&mut self, keep: &[bool]) -> usize {
        let before = self.len();
        if keep.iter().all(|&k| k) {
            return 0;
        }
        self.retain_mask(keep);
        before - self.len()
    }

    /// Per-column minimum and maximum of x, y, z, intensity over finite values; `None` for
    /// an empty cloud.
    pub fn bounds(&self) -> Option<Bounds> {
        if self.is_empty() {
            return None;
        }
        let range = |c: &[f32]| {
            c.iter()
                .filter(|v| v.is_finite())
                .fold([f32::INFINITY, f32::NEG_INFINITY], |[lo, hi], &v| {
                    [lo.min(v), hi.max(v)]
                })
        };
        let cols = [
            range(&self.x),
            range(&self.y),
            range(&self.z),
            range(&self.intensity),
        ];
        Some(Bounds {
            min: cols.map(|c| c[0]),
            max: cols.map(|c| c[1]),
        })
    }
}

/// Ranges of the four core columns, in the order x, y, z, intensity.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bounds {
    /// Minima of x, y, z, intensity.
    pub min: [f32; 4],
    /// Maxima of x, y, z, intensity.
    pub max: [f32; 4],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud() -> PointCloud {
        let mut c = PointCloud::with_capacity(4);
        c.push(0.0, 0.0, 0.0, 0.1);
        c.push(10.0, -5.0, 1.0, 0.2);
        c.push(f32::NAN, 1.0, 1.0, 0.3);
        c.push(-1.0, 2.0, 3.0, f32::INFINITY);
        c.extra.push(ExtraField {
            name: "ring".into(),
            values: vec![0.0, 1.0, 2.0, 3.0],
        });
        c
    }

    #[test]
    fn crop_is_half_open_and_carries_extras() {
        let mut c = cloud();
        assert_eq!(c.crop_range(&[0.0, -5.0, 0.0, 10.0, 5.0, 4.0]), 3);
        assert_eq!(
            (c.x.as_slice(), c.extra("ring")),
            (&[0.0f32][..], Some(&[0.0][..]))
        );
        let mut c = cloud();
        assert_eq!(c.crop_range(&[-2.0, -6.0, -1.0, 11.0, 6.0, 4.0]), 1);
        assert_eq!(c.extra("ring"), Some(&[0.0, 1.0, 3.0][..]));
    }

    #[test]
    fn non_finite_points_are_dropped_and_counted() {
        let mut c = cloud();
        assert_eq!(c.retain_finite(), 2);
        assert_eq!(c.x, vec![0.0, 10.0]);
        assert_eq!(c.extra("ring"), Some(&[0.0, 1.0][..]));
        let b = c.bounds().unwrap();
        assert_eq!(b.min, [0.0, -5.0, 0.0, 0.1]);
        assert_eq!(b.max, [10.0, 0.0, 1.0, 0.2]);
        assert!(c.check_columns().is_ok());
        c.intensity.pop();
        assert_eq!(
            c.check_columns().unwrap_err(),
            "column intensity has 1 values but x has 2"
        );
    }
}
