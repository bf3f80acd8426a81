//! Surface materials: how bright a surface looks to the LiDAR and how reliably it returns.

/// A surface's LiDAR response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Material {
    /// Diffuse reflectivity at 905 nm, in [0, 1].
    pub reflectivity: f32,
    /// Probability that a hit returns at all (glass and black paint often do not).
    pub returns: f32,
}

const fn m(reflectivity: f32, returns: f32) -> Material {
    Material {
        reflectivity,
        returns,
    }
}

pub(crate) const ASPHALT: Material = m(0.22, 0.97);
pub(crate) const LANE_PAINT: Material = m(0.75, 1.0);
pub(crate) const CONCRETE: Material = m(0.32, 0.98);
pub(crate) const GRASS: Material = m(0.28, 0.95);
pub(crate) const GLASS: Material = m(0.06, 0.45);
pub(crate) const TIRE: Material = m(0.06, 0.9);
pub(crate) const PLATE: Material = m(0.95, 1.0);
pub(crate) const CLOTH: Material = m(0.30, 0.97);
pub(crate) const SKIN: Material = m(0.40, 0.97);
pub(crate) const BIKE_FRAME: Material = m(0.45, 0.85);
pub(crate) const POLE: Material = m(0.50, 0.98);
pub(crate) const BARK: Material = m(0.25, 0.97);
pub(crate) const FOLIAGE: Material = m(0.30, 0.70);
pub(crate) const WALL: Material = m(0.35, 0.99);
pub(crate) const SIGN: Material = m(0.98, 1.0);

/// Car paint: from black (dark, often missing returns) to white.
pub(crate) fn paint(lightness: f32) -> Material {
    m(0.08 + 0.5 * lightness, 0.75 + 0.25 * lightness)
}
