//! Seed derivation. Every random decision is a pure function of the user's seed and the
//! index of what it concerns (frame, zone, segment, ray), never of the order in which
//! threads get to it — hence identical bytes whatever the thread count.

/// splitmix64's finalizer: a bijective avalanche of 64 bits.
fn avalanche(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Combines a seed with an index into a new, well-mixed seed.
pub(crate) fn mix(seed: u64, index: u64) -> u64 {
    avalanche(seed ^ avalanche(index.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// A tiny counter-based generator for the per-ray noise (splitmix64).
pub(crate) struct RayRng(u64);

impl RayRng {
    pub fn new(frame_seed: u64, ray: u64) -> Self {
        Self(mix(frame_seed, ray))
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        (avalanche(self.0) >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_separates_neighbours() {
        assert_ne!(mix(1, 2), mix(2, 1));
        assert_ne!(mix(0, 0), mix(0, 1));
        assert_eq!(mix(42, 7), mix(42, 7));
    }

    #[test]
    fn ray_noise_has_unit_moments() {
        let mut r = RayRng::new(3, 0);
        let n = 20000;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let v = r.normal() as f64;
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
