//! From matches to average precision: the score thresholds sampled along recall, the
//! precision (and orientation similarity) at each, and AP over 11 or 40 recall points.

use super::matching::Counts;

/// Number of precision samples the reference keeps: 0, 1/40, …, 40/40 of recall.
pub const SAMPLES: usize = 41;

/// How AP samples the precision curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RecallPoints {
    /// 11 points, samples 0, 4, …, 40 (the original KITTI metric).
    R11,
    /// 40 points, samples 1 … 40 (KITTI's metric since 2019).
    R40,
}

impl RecallPoints {
    /// The short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::R11 => "R11",
            Self::R40 => "R40",
        }
    }
}

/// Score thresholds at which precision is sampled: walking the true positives' scores from
/// the highest, a score is kept when its recall is the closest to the next multiple of
/// 1/40 (the last one always). The recall of the k-th threshold is (k + 1) / `num_gt`, so
/// with fewer than 41 ground truths the thresholds run out before recall 1 is sampled —
/// the reference behaves so, and we do too (see `docs/EVAL.md`).
pub(crate) fn thresholds(mut scores: Vec<f32>, num_gt: usize) -> Vec<f32> {
    scores.sort_unstable_by(|a, b| b.total_cmp(a));
    let n = num_gt as f64;
    let mut current = 0.0f64;
    let mut out = Vec::with_capacity(SAMPLES);
    for (i, &score) in scores.iter().enumerate() {
        let last = i + 1 == scores.len();
        let left = (i + 1) as f64 / n;
        let right = if last { left } else { (i + 2) as f64 / n };
        if right - current < current - left && !last {
            continue;
        }
        if out.len() == SAMPLES {
            break;
        }
        out.push(score);
        current += 1.0 / (SAMPLES as f64 - 1.0);
    }
    out
}

/// The precision–recall curve of one class × difficulty × metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Curve {
    /// Ground truths that must be found.
    pub num_gt: usize,
    /// Score threshold of each sample (fewer than 41 when recall stops short).
    pub thresholds: Vec<f32>,
    /// Recall per sample (not interpolated: the reference's right-to-left maximum of recall
    /// is constant and used nowhere, so we keep the raw value for plots).
    pub recall: Vec<f64>,
    /// Interpolated precision per sample: the maximum at this or any later sample; 41
    /// values, zero past the last threshold.
    pub precision: Vec<f64>,
    /// Interpolated orientation similarity per sample (image metric only).
    pub aos: Option<Vec<f64>>,
}

impl Curve {
    /// Builds the curve from the counts at each threshold.
    pub(crate) fn new(
        num_gt: usize,
        thresholds: Vec<f32>,
        counts: &[Counts],
        with_aos: bool,
    ) -> Self {
        let mut recall = vec![0.0; SAMPLES];
        let mut precision = vec![0.0; SAMPLES];
        let mut aos = vec![0.0; SAMPLES];
        for (i, c) in counts.iter().enumerate() {
            let (tp, fp, misses) = (c.tp as f64, c.fp as f64, c.misses as f64);
            recall[i] = share(tp, tp + misses);
            precision[i] = share(tp, tp + fp);
            aos[i] = share(c.similarity, tp + fp);
        }
        for v in [&mut precision, &mut aos] {
            for i in (0..counts.len()).rev() {
                if i + 1 < SAMPLES {
                    v[i] = v[i].max(v[i + 1]);
                }
            }
        }
        Self {
            num_gt,
            thresholds,
            recall,
            precision,
            aos: with_aos.then_some(aos),
        }
    }

    /// AP in percent, or `None` when no ground truth must be found.
    pub fn ap(&self, points: RecallPoints) -> Option<f64> {
        (self.num_gt > 0).then(|| average(&self.precision, points))
    }

    /// Average orientation similarity in percent (image metric with orientations only).
    pub fn aos_ap(&self, points: RecallPoints) -> Option<f64> {
        let aos = self.aos.as_ref()?;
        (self.num_gt > 0).then(|| average(aos, points))
    }
}

/// A ratio, 0 where the reference would divide 0 by 0 (it gets NaN; see `docs/EVAL.md`).
fn share(num: f64, den: f64) -> f64 {
    if den > 0.0 { num / den } else { 0.0 }
}

fn average(samples: &[f64], points: RecallPoints) -> f64 {
    let (sum, count): (f64, f64) = match points {
        RecallPoints::R11 => (samples.iter().step_by(4).sum(), 11.0),
        RecallPoints::R40 => (samples[1..].iter().sum(), 40.0),
    };
    sum / count * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_ground_truths_get_one_threshold_each() {
        let t = thresholds(vec![0.5, 0.9, 0.7], 3);
        assert_eq!(t, vec![0.9, 0.7, 0.5]);
    }

    #[test]
    fn many_ground_truths_are_sampled_every_fortieth_of_recall() {
        // 80 true positives of 80 ground truths: kept at i = 0 and every odd i, 41 in all.
        let scores: Vec<f32> = (0..80).map(|i| 1.0 - i as f32 / 100.0).collect();
        let t = thresholds(scores.clone(), 80);
        assert_eq!(t.len(), 41);
        assert_eq!(t[0], scores[0]);
        assert_eq!(t[1], scores[1]);
        assert_eq!(t[2], scores[3]);
        assert_eq!(t[40], scores[79]);
        // Half recall: 40 true positives of 80 give 21 samples.
        assert_eq!(thresholds(scores[..40].to_vec(), 80).len(), 21);
    }

    fn perfect(n: usize) -> Curve {
        let t = thresholds(vec![1.0; n], n);
        let counts: Vec<Counts> = (0..t.len())
            .map(|_| Counts {
                tp: n as u64,
                fp: 0,
                misses: 0,
                similarity: n as f64,
            })
            .collect();
        Curve::new(n, t, &counts, true)
    }

    #[test]
    fn perfect_detector_scores_100_with_41_ground_truths() {
        let c = perfect(41);
        assert_eq!(c.ap(RecallPoints::R40), Some(100.0));
        assert_eq!(c.ap(RecallPoints::R11), Some(100.0));
        assert_eq!(c.aos_ap(RecallPoints::R40), Some(100.0));
    }

    #[test]
    fn perfect_detector_with_few_ground_truths_is_capped_by_sampling() {
        // n thresholds fill samples 0..n: R40 counts samples 1..n, R11 samples 0, 4, ...
        let c = perfect(10);
        assert_eq!(c.ap(RecallPoints::R40), Some(9.0 / 40.0 * 100.0));
        assert_eq!(c.ap(RecallPoints::R11), Some(3.0 / 11.0 * 100.0));
        let c = perfect(2);
        assert_eq!(c.ap(RecallPoints::R40), Some(2.5));
        assert_eq!(c.ap(RecallPoints::R11), Some(1.0 / 11.0 * 100.0));
        // 40 ground truths leave sample 40 empty.
        assert_eq!(perfect(40).ap(RecallPoints::R40), Some(97.5));
    }

    #[test]
    fn no_ground_truth_has_no_ap() {
        let c = Curve::new(0, vec![], &[], false);
        assert_eq!(c.ap(RecallPoints::R40), None);
        assert_eq!(c.aos_ap(RecallPoints::R40), None);
    }

    #[test]
    fn precision_is_interpolated_from_the_right() {
        let counts = [
            Counts {
                tp: 1,
                fp: 1,
                misses: 1,
                similarity: 0.0,
            },
            Counts {
                tp: 2,
                fp: 0,
                misses: 0,
                similarity: 0.0,
            },
        ];
        let c = Curve::new(2, vec![0.9, 0.8], &counts, false);
        assert_eq!(&c.precision[..3], &[1.0, 1.0, 0.0]);
        assert_eq!(&c.recall[..3], &[0.5, 1.0, 0.0]);
    }
}
