//! The spinning multi-beam LiDAR: beam elevations, azimuth resolution, range limits and
//! the measurement model (range noise, dropout, intensity).

use std::f32::consts::PI;

/// A spinning LiDAR: every beam fires once per azimuth column, `columns` times per turn.
#[derive(Debug, Clone, PartialEq)]
pub struct LidarModel {
    /// Beam elevations (rad), top beam first.
    pub elevations: Vec<f32>,
    /// Azimuth columns per revolution.
    pub columns: usize,
    /// Farthest return (m).
    pub max_range: f32,
    /// Nearest return (m): closer hits (the ego car's own body) are discarded.
    pub min_range: f32,
    /// Height of the optical center above the road (m).
    pub mount_height: f32,
    /// Standard deviation of the range error (m).
    pub range_noise: f32,
    /// Probability that a beam returns nothing whatever it hits.
    pub dropout: f32,
}

/// Columns per turn of a Velodyne spinning at 10 Hz: its 0.09° resolution is specified at
/// 5 Hz, at KITTI's 10 Hz the step is about 0.17°, which gives KITTI's ~120k points a sweep.
const COLUMNS_10HZ: usize = 2083;

fn linspace_deg(from: f32, to: f32, n: usize) -> impl Iterator<Item = f32> {
    let step = if n > 1 {
        (to - from) / (n - 1) as f32
    } else {
        0.0
    };
    (0..n).map(move |i| (from + step * i as f32) * PI / 180.0)
}

impl LidarModel {
    /// Velodyne HDL-64E as mounted on the KITTI car: an upper block of 32 beams from +2° to
    /// −8.33° (1/3° apart) and a lower block of 32 from −8.83° to −24.9° (about 1/2° apart).
    pub fn hdl64() -> Self {
        let elevations = linspace_deg(2.0, -8.33, 32)
            .chain(linspace_deg(-8.83, -24.9, 32))
            .collect();
        Self::with_elevations(elevations)
    }

    /// A 32-beam sensor like the HDL-32E: +10.67° to −30.67°, evenly spaced.
    pub fn hdl32() -> Self {
        Self::with_elevations(linspace_deg(10.67, -30.67, 32).collect())
    }

    /// A 128-beam sensor (VLS-128-like): dense near the horizon, +15° to −25°.
    pub fn vls128() -> Self {
        let elevations = linspace_deg(15.0, 3.0, 16)
            .chain(linspace_deg(2.8, -8.0, 80))
            .chain(linspace_deg(-8.5, -25.0, 32))
            .collect();
        Self::with_elevations(elevations)
    }

    /// The preset with this many beams (32, 64 or 128).
    pub fn with_beams(beams: usize) -> Option<Self> {
        match beams {
            32 => Some(Self::hdl32()),
            64 => Some(Self::hdl64()),
            128 => Some(Self::vls128()),
            _ => None,
        }
    }

    fn with_elevations(elevations: Vec<f32>) -> Self {
        Self {
            elevations,
            columns: COLUMNS_10HZ,
            max_range: 120.0,
            min_range: 2.5,
            mount_height: 1.73,
            range_noise: 0.02,
            dropout: 0.03,
        }
    }

    /// Number of beams.
    pub fn beams(&self) -> usize {
        self.elevations.len()
    }

    /// Rays per sweep.
    pub fn rays(&self) -> usize {
        self.beams() * self.columns
    }

    /// Azimuth of column `c` (rad, counter-clockwise from +x, in [−π, π)).
    pub(crate) fn azimuth(&self, c: usize) -> f32 {
        -PI + 2.0 * PI * (c as f32 + 0.5) / self.columns as f32
    }
}

/// Measured intensity in [0, 1]: Lambertian in the incidence angle, mildly attenuated with
/// range (KITTI's intensities are range-compensated only in part).
pub(crate) fn intensity(reflectivity: f32, cos_incidence: f32, range: f32) -> f32 {
    let lambert = 0.25 + 0.75 * cos_incidence.abs();
    let attenuation = 1.0 - 0.35 * (range / 120.0).min(1.0);
    reflectivity * lambert * attenuation
}

/// Weak returns (dark, grazing or far surfaces) fall below the detector threshold more
/// often: the probability that a hit with this expected intensity produces a point.
pub(crate) fn detection_probability(expected_intensity: f32, material_return: f32) -> f32 {
    let strength = (expected_intensity / 0.02).min(1.0);
    material_return * (0.6 + 0.4 * strength)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hdl64_spans_kitti_elevations() {
        let m = LidarModel::hdl64();
        assert_eq!(m.beams(), 64);
        assert!((m.elevations[0].to_degrees() - 2.0).abs() < 1e-4);
        assert!((m.elevations[31].to_degrees() + 8.33).abs() < 1e-4);
        assert!((m.elevations[63].to_degrees() + 24.9).abs() < 1e-4);
        // The upper block is denser than the lower one, as on the real sensor.
        let upper = m.elevations[0] - m.elevations[1];
        let lower = m.elevations[40] - m.elevations[41];
        assert!(upper < lower);
    }

    #[test]
    fn presets_by_beam_count() {
        assert_eq!(LidarModel::with_beams(32).map(|m| m.beams()), Some(32));
        assert_eq!(LidarModel::with_beams(128).map(|m| m.beams()), Some(128));
        assert!(LidarModel::with_beams(16).is_none());
    }

    #[test]
    fn azimuths_cover_the_turn() {
        let m = LidarModel::hdl64();
        assert!(m.azimuth(0) > -PI && m.azimuth(m.columns - 1) < PI);
        let step = m.azimuth(1) - m.azimuth(0);
        assert!((step.to_degrees() - 0.1728).abs() < 1e-3);
    }
}
