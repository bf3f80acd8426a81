//! Pillar-side tensors: gathering the points of each pillar into compact rows, the max
//! over a pillar's rows, and the scatter into the BEV map.
//!
//! A pillar with `n < max_points` points has `max_points − n` padded slots that are all
//! zero on input, so every layer maps them to the same row: one row stands for all of
//! them, which the max over points then sees exactly as PyTorch does (PFN layers take the
//! max over padded slots too).

use rayon::prelude::*;

use crate::error::{DetectorError, Result};

/// Pillars to rows per rayon task.
const PILLARS_PER_TASK: usize = 512;

/// The detector's input: a voxelizer pillar batch, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct PillarInput<'a> {
    /// Decorated features `[P, max_points, C]`, padded slots zero.
    pub features: &'a [f32],
    /// Pillar coordinates `(z, y, x)`.
    pub coords: &'a [[i32; 3]],
    /// Real points per pillar.
    pub num_points: &'a [u32],
    /// Slots per pillar.
    pub max_points: usize,
}

impl<'a> From<&'a lidarq_voxelizer::PillarBatch> for PillarInput<'a> {
    fn from(b: &'a lidarq_voxelizer::PillarBatch) -> Self {
        Self {
            features: b.features(),
            coords: b.coords(),
            num_points: b.num_points(),
            max_points: b.max_points(),
        }
    }
}

impl PillarInput<'_> {
    /// Number of pillars.
    pub fn len(&self) -> usize {
        self.num_points.len()
    }

    /// True without pillars.
    pub fn is_empty(&self) -> bool {
        self.num_points.is_empty()
    }

    /// Checks the sizes against each other and the model's feature count.
    pub fn validate(&self, channels: usize, grid: (usize, usize)) -> Result<()> {
        let p = self.len();
        if self.coords.len() != p {
            return Err(DetectorError::Input(format!(
                "{} coords for {p} pillars",
                self.coords.len()
            )));
        }
        if self.features.len() != p * self.max_points * channels {
            return Err(DetectorError::Input(format!(
                "features hold {} values; {p} pillars × {} slots × {channels} features need {}",
                self.features.len(),
                self.max_points,
                p * self.max_points * channels
            )));
        }
        let (ny, nx) = grid;
        for (i, &[z, y, x]) in self.coords.iter().enumerate() {
            if z != 0 || y < 0 || x < 0 || y as usize >= ny || x as usize >= nx {
                return Err(DetectorError::Input(format!(
                    "pillar {i}: coords (z, y, x) = ({z}, {y}, {x}) outside the {ny}×{nx} grid"
                )));
            }
        }
        Ok(())
    }
}

/// Row layout of the pillars: pillar `p` owns rows `offsets[p] .. offsets[p + 1]`, its
/// real points first, then (if not full) the one row standing for its padded slots.
#[derive(Debug, Clone, Default)]
pub struct PillarRows {
    /// `P + 1` row offsets.
    pub offsets: Vec<usize>,
}

impl PillarRows {
    /// Plans the rows of `input`.
    pub fn plan(&mut self, input: &PillarInput) {
        let m = input.max_points;
        self.offsets.clear();
        self.offsets.push(0);
        let mut total = 0;
        for &n in input.num_points {
            let n = (n as usize).min(m);
            total += if n < m { n + 1 } else { n };
            self.offsets.push(total);
        }
    }

    /// Total rows.
    pub fn rows(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// Copies each pillar's rows from `input` (`[P, M, C]`) into `rows` (`[R, C]`).
    pub fn gather(&self, input: &PillarInput, channels: usize, rows: &mut Vec<f32>) {
        rows.clear();
        rows.resize(self.rows() * channels, 0.0);
        let m = input.max_points;
        let parts = split_rows(rows, &self.offsets, channels, PILLARS_PER_TASK);
        parts.into_par_iter().enumerate().for_each(|(task, out)| {
            let first = task * PILLARS_PER_TASK;
            let mut pos = 0;
            for p in first..(first + PILLARS_PER_TASK).min(input.len()) {
                // The padded row (if any) keeps the zeros `resize` wrote: exactly the
                // input's zero slots.
                let real = (input.num_points[p] as usize).min(m) * channels;
                out[pos..pos + real].copy_from_slice(&input.features[p * m * channels..][..real]);
                pos += (self.offsets[p + 1] - self.offsets[p]) * channels;
            }
        });
    }

    /// Max over each pillar's rows of `values` (`[R, C]`) → `out` (`[P, C]`). On int8
    /// values this is the max of the float values: requantization is monotone.
    pub fn max<T: Element>(&self, values: &[T], channels: usize, out: &mut Vec<T>) {
        let p = self.offsets.len().saturating_sub(1);
        out.clear();
        out.resize(p * channels, T::LOWEST);
        out.par_chunks_mut(channels * PILLARS_PER_TASK)
            .enumerate()
            .for_each(|(task, out)| {
                for (i, o) in out.chunks_exact_mut(channels).enumerate() {
                    let p = task * PILLARS_PER_TASK + i;
                    for row in values[self.offsets[p] * channels..self.offsets[p + 1] * channels]
                        .chunks_exact(channels)
                    {
                        for (o, &v) in o.iter_mut().zip(row) {
                            *o = o.max_of(v);
                        }
                    }
                }
            });
    }

    /// Each row followed by its pillar's max: `[R, C]`, `[P, C]` → `[R, 2C]` (the input of
    /// a PFN layer after a non-last one).
    pub fn concat_max<T: Element>(
        &self,
        values: &[T],
        max: &[T],
        channels: usize,
        out: &mut Vec<T>,
    ) {
        out.clear();
        out.resize(self.rows() * 2 * channels, T::LOWEST);
        for (p, w) in self.offsets.windows(2).enumerate() {
            let m = &max[p * channels..(p + 1) * channels];
            for r in w[0]..w[1] {
                let o = &mut out[r * 2 * channels..(r + 1) * 2 * channels];
                o[..channels].copy_from_slice(&values[r * channels..(r + 1) * channels]);
                o[channels..].copy_from_slice(m);
            }
        }
    }
}

/// An activation element the pillar ops work on: f32, or int8 in one quantized domain.
pub trait Element: Copy + Send + Sync {
    /// Smaller than or equal to every value (the max's start).
    const LOWEST: Self;
    /// The larger of two values.
    fn max_of(self, other: Self) -> Self;
}

impl Element for f32 {
    const LOWEST: Self = f32::NEG_INFINITY;
    fn max_of(self, other: Self) -> Self {
        self.max(other)
    }
}

impl Element for i8 {
    const LOWEST: Self = i8::MIN;
    fn max_of(self, other: Self) -> Self {
        Ord::max(self, other)
    }
}

/// Splits `buf` (rows of `channels`) at the row offsets of every `per_task`-th pillar.
fn split_rows<'b>(
    mut buf: &'b mut [f32],
    offsets: &[usize],
    channels: usize,
    per_task: usize,
) -> Vec<&'b mut [f32]> {
    let p = offsets.len().saturating_sub(1);
    let mut parts = Vec::with_capacity(p.div_ceil(per_task));
    let mut first = 0;
    while first < p {
        let last = (first + per_task).min(p);
        let (head, tail) = buf.split_at_mut((offsets[last] - offsets[first]) * channels);
        parts.push(head);
        buf = tail;
        first = last;
    }
    parts
}

/// Writes each pillar's vector at its cell of `map` (`[ny, nx, C]`), which must hold
/// `empty` (real 0: 0.0, or the int8 zero point) except at the cells listed in `written`
/// (the previous frame's): those are cleared first, so a frame touches a few MB instead of
/// the whole map. `written` is updated.
pub fn scatter<T: Copy>(
    pillars: &[T],
    coords: &[[i32; 3]],
    nx: usize,
    channels: usize,
    map: &mut [T],
    written: &mut Vec<usize>,
    empty: T,
) {
    for &cell in written.iter() {
        map[cell * channels..(cell + 1) * channels].fill(empty);
    }
    written.clear();
    for (v, &[_, y, x]) in pillars.chunks_exact(channels).zip(coords) {
        let cell = y as usize * nx + x as usize;
        map[cell * channels..(cell + 1) * channels].copy_from_slice(v);
        written.push(cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_gather_max_and_scatter() {
        // Two pillars, 3 slots, 2 channels: pillar 0 has 1 point, pillar 1 is full.
        let features = [1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, -4.0, 5.0, 6.0, -7.0, 8.0];
        let input = PillarInput {
            features: &features,
            coords: &[[0, 1, 0], [0, 0, 2]],
            num_points: &[1, 3],
            max_points: 3,
        };
        input.validate(2, (2, 3)).unwrap();
        let mut rows = PillarRows::default();
        rows.plan(&input);
        assert_eq!(rows.offsets, vec![0, 2, 5]);
        let mut g = Vec::new();
        rows.gather(&input, 2, &mut g);
        assert_eq!(g, vec![1.0, 2.0, 0.0, 0.0, 3.0, -4.0, 5.0, 6.0, -7.0, 8.0]);
        let mut m = Vec::new();
        rows.max(&g, 2, &mut m);
        // The padded row (zeros) takes part in pillar 0's max, as in PyTorch.
        assert_eq!(m, vec![1.0, 2.0, 5.0, 8.0]);
        let mut cm = Vec::new();
        rows.concat_max(&g, &m, 2, &mut cm);
        assert_eq!(&cm[..8], &[1.0, 2.0, 1.0, 2.0, 0.0, 0.0, 1.0, 2.0]);
        assert_eq!(&cm[16..], &[-7.0, 8.0, 5.0, 8.0]);
        let mut map = vec![0.0; 2 * 3 * 2];
        let mut written = Vec::new();
        scatter(&m, input.coords, 3, 2, &mut map, &mut written, 0.0);
        assert_eq!(
            map,
            vec![0.0, 0.0, 0.0, 0.0, 5.0, 8.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0]
        );
        // The next frame clears what this one wrote.
        scatter(&[7.0, 7.0], &[[0, 0, 0]], 3, 2, &mut map, &mut written, 0.0);
        assert_eq!(
            map,
            vec![7.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert!(input.validate(3, (2, 3)).is_err());
        assert!(input.validate(2, (1, 3)).is_err());
    }
}
