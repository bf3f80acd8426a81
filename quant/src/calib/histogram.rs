//! Histograms of absolute values, and the observer that collects them frame by frame.

use crate::error::{QuantError, Result};
use crate::observer::{MinMaxObserver, Observer, counted};

/// A fixed histogram of `|x|`: bin `k` counts values in `(k·w, (k+1)·w]`, bin 0 also 0.
/// Right-closed bins make merging adjacent pairs exact: `|x|` in bin `k` of width `w` is in bin
/// `⌊k/2⌋` of width `2w`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    counts: Vec<u64>,
    bin_width: f64,
}

impl Histogram {
    /// A histogram from its counts and bin width (finite, > 0).
    pub fn new(counts: Vec<u64>, bin_width: f64) -> Result<Self> {
        if !(bin_width.is_finite() && bin_width > 0.0) {
            return Err(QuantError::Parameter {
                name: "bin_width",
                value: bin_width,
                reason: "must be finite and positive",
            });
        }
        if counts.is_empty() {
            return Err(QuantError::EmptyHistogram {
                context: "histogram has no bins",
            });
        }
        Ok(Self { counts, bin_width })
    }

    /// Count per bin.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
    /// Width of one bin.
    pub fn bin_width(&self) -> f64 {
        self.bin_width
    }
    /// Number of bins.
    pub fn len(&self) -> usize {
        self.counts.len()
    }
    /// Always false (a histogram has at least one bin); here for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
    /// Upper edge of bin `bins − 1`: the threshold that keeps the first `bins` bins.
    pub fn edge(&self, bins: usize) -> f64 {
        bins as f64 * self.bin_width
    }

    /// Error unless some value was counted.
    pub(crate) fn require_counts(&self, context: &'static str) -> Result<u64> {
        match self.total() {
            0 => Err(QuantError::EmptyHistogram { context }),
            total => Ok(total),
        }
    }
}

/// Streams frames into a histogram of `|x|` with at most `max_bins` bins, plus the signed
/// min/max (for affine schemes).
///
/// The first frame with a nonzero counted value sets the bin width to `frame_max / max_bins`.
/// When a later value exceeds the covered range, adjacent bin pairs are merged (the width
/// doubles) until it fits, so every count stays exact on the coarser grid: the result depends
/// on the first frame's maximum and on the later values, not on how they are split into
/// frames or ordered. Zeros seen before the width is known are held and land in bin 0.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramObserver {
    max_bins: usize,
    counts: Vec<u64>,
    bin_width: f64,
    early_zeros: u64,
    range: MinMaxObserver,
}

impl HistogramObserver {
    /// A collector with `max_bins` bins (TensorRT uses 2048); an even count ≥ 2.
    pub fn new(max_bins: usize) -> Result<Self> {
        if max_bins < 2 || !max_bins.is_multiple_of(2) {
            return Err(QuantError::Parameter {
                name: "max_bins",
                value: max_bins as f64,
                reason: "must be even and at least 2",
            });
        }
        Ok(Self {
            max_bins,
            counts: Vec::new(),
            bin_width: 0.0,
            early_zeros: 0,
            range: MinMaxObserver::new(),
        })
    }

    /// The histogram collected so far; an error if no nonzero value was counted.
    pub fn histogram(&self) -> Result<Histogram> {
        if self.counts.is_empty() {
            return Err(QuantError::EmptyHistogram {
                context: "no nonzero value observed",
            });
        }
        Histogram::new(self.counts.clone(), self.bin_width)
    }

    /// Signed `(min, max)` of the counted values.
    pub fn range(&self) -> Option<(f32, f32)> {
        self.range.range()
    }

    fn merge_pairs(&mut self) {
        let half = self.max_bins / 2;
        for k in 0..half {
            self.counts[k] = self.counts[2 * k] + self.counts[2 * k + 1];
        }
        self.counts[half..].fill(0);
        self.bin_width *= 2.0;
    }

    fn add(&mut self, a: f64) {
        while a > self.bin_width * self.max_bins as f64 {
            self.merge_pairs();
        }
        // ceil(a / w) − 1 for right-closed bins; 0 and tiny values land in bin 0.
        let k = ((a / self.bin_width).ceil() as usize).saturating_sub(1);
        self.counts[k.min(self.max_bins - 1)] += 1;
    }
}

impl Observer for HistogramObserver {
    fn observe(&mut self, values: &[f32], mask: Option<&[bool]>) -> Result<()> {
        self.range.observe(values, mask)?;
        if self.counts.is_empty() {
            let frame_max = counted(values, mask)?.fold(0f32, |m, x| m.max(x.abs()));
            if frame_max == 0.0 {
                self.early_zeros += counted(values, mask)?.count() as u64;
                return Ok(());
            }
            self.bin_width = frame_max as f64 / self.max_bins as f64;
            self.counts = vec![0; self.max_bins];
            self.counts[0] = self.early_zeros;
        }
        for x in counted(values, mask)? {
            self.add(x.abs() as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_frame_sets_width_and_growth_merges_pairs() {
        let mut h = HistogramObserver::new(4).unwrap();
        h.observe(&[0.0, 0.0], None).unwrap();
        assert!(h.histogram().is_err());
        // Width 1, right-closed bins: |x| = 0.5, 1.5, 4 (top edge), -2.5, 1 → bins 0, 1, 3, 2, 0.
        h.observe(&[0.5, 1.5, 4.0, -2.5, 1.0], None).unwrap();
        let hist = h.histogram().unwrap();
        assert_eq!(hist.counts(), &[4, 1, 1, 1]);
        assert_eq!(hist.bin_width(), 1.0);
        // 7.5 exceeds 4: width doubles to 2, pairs merge, then 7.5 lands in bin 3.
        h.observe(&[7.5, 9.0], Some(&[true, false])).unwrap();
        let hist = h.histogram().unwrap();
        assert_eq!(hist.counts(), &[5, 2, 0, 1]);
        assert_eq!(hist.bin_width(), 2.0);
        assert_eq!(h.range(), Some((-2.5, 7.5)));
        // 30 needs two doublings (width 8): [5,2,0,1] → [7,1,0,0] → [8,0,0,0]; 30 → bin 3.
        h.observe(&[30.0], None).unwrap();
        assert_eq!(h.histogram().unwrap().counts(), &[8, 0, 0, 1]);
    }

    #[test]
    fn later_frame_boundaries_do_not_change_the_histogram() {
        let values: Vec<f32> = (0..1000)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.37 * (1.0 + i as f32 / 100.0))
            .collect();
        let (first, rest) = values.split_at(100);
        let mut whole = HistogramObserver::new(64).unwrap();
        whole.observe(first, None).unwrap();
        whole.observe(rest, None).unwrap();
        let mut split = HistogramObserver::new(64).unwrap();
        split.observe(first, None).unwrap();
        for frame in rest.rchunks(7) {
            split.observe(frame, None).unwrap();
        }
        let a = whole.histogram().unwrap();
        assert_eq!(a, split.histogram().unwrap());
        assert_eq!(a.total(), 1000);
        assert!(a.bin_width() > 18.5 / 64.0, "growth happened");
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(HistogramObserver::new(3).is_err());
        assert!(HistogramObserver::new(0).is_err());
        assert!(Histogram::new(vec![1], 0.0).is_err());
        assert!(Histogram::new(vec![], 1.0).is_err());
    }
}
