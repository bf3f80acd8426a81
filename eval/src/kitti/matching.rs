//! Greedy matching of detections to ground truth in one frame, for one class, difficulty
//! and metric — the reference's `compute_statistics_jit`, rule for rule. Objects of other
//! classes are dropped up front (they take part in nothing), keeping the order of the rest:
//! ties go to the first object in file order, as in the reference.

use super::filter::{IGNORED, VALID};

/// One frame seen by one class × difficulty × metric: roles, scores and the overlaps of the
/// objects that take part.
#[derive(Debug, Default)]
pub(crate) struct FrameCase {
    /// [`VALID`] or [`IGNORED`] per ground truth.
    pub gt_role: Vec<i8>,
    pub gt_alpha: Vec<f32>,
    /// [`VALID`] or [`IGNORED`] per detection.
    pub dt_role: Vec<i8>,
    pub dt_score: Vec<f32>,
    pub dt_alpha: Vec<f32>,
    /// The detection lies in a `DontCare` region (image metric only): not a false positive.
    pub dt_in_dontcare: Vec<bool>,
    /// The detection counts as a false positive when unmatched (false only outside the
    /// scope of a breakdown).
    pub dt_counts_fp: Vec<bool>,
    /// Overlap of detection `d` with ground truth `g` at `d * gt_len + g`.
    pub overlap: Vec<f64>,
}

/// Counts over the detections at or above one score threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub misses: u64,
    /// Sum over true positives of (1 + cos Δα) / 2.
    pub similarity: f64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.misses += o.misses;
        self.similarity += o.similarity;
    }
}

/// The two passes of the reference: collecting the scores of true positives (each ground
/// truth takes the highest-scoring free detection above the overlap threshold), and
/// counting at a score threshold (each ground truth takes the free detection of highest
/// overlap, preferring a valid over an ignored detection).
#[derive(Debug, Clone, Copy)]
enum Pass {
    Scores,
    Count { threshold: f32 },
}

/// Scores of the true positives, appended to `out`.
pub(crate) fn tp_scores(
    case: &FrameCase,
    min_overlap: f64,
    assigned: &mut Vec<bool>,
    out: &mut Vec<f32>,
) {
    greedy(case, min_overlap, Pass::Scores, assigned, |_, d| {
        out.push(case.dt_score[d])
    });
}

/// TP / FP / miss counts of the detections scoring at least `threshold`.
pub(crate) fn counts_at(
    case: &FrameCase,
    min_overlap: f64,
    threshold: f32,
    assigned: &mut Vec<bool>,
) -> Counts {
    let mut similarity = 0.0;
    let (tp, misses) = greedy(
        case,
        min_overlap,
        Pass::Count { threshold },
        assigned,
        |g, d| {
            let delta = case.gt_alpha[g] as f64 - case.dt_alpha[d] as f64;
            similarity += (1.0 + delta.cos()) / 2.0;
        },
    );
    let fp = (0..case.dt_role.len())
        .filter(|&d| {
            !assigned[d]
                && case.dt_role[d] == VALID
                && case.dt_score[d] >= threshold
                && case.dt_counts_fp[d]
                && !case.dt_in_dontcare[d]
        })
        .count() as u64;
    Counts {
        tp,
        fp,
        misses,
        similarity,
    }
}

/// Assigns detections to ground truths in ground-truth order; calls `on_tp(gt, dt)` for
/// each true positive and returns (true positives, misses). `assigned` is scratch space
/// that holds, on return, which detections were taken.
fn greedy(
    case: &FrameCase,
    min_overlap: f64,
    pass: Pass,
    assigned: &mut Vec<bool>,
    mut on_tp: impl FnMut(usize, usize),
) -> (u64, u64) {
    const NO_DETECTION: f64 = -10_000_000.0;
    let n_gt = case.gt_role.len();
    assigned.clear();
    assigned.resize(case.dt_role.len(), false);
    let (mut tp, mut misses) = (0, 0);
    for g in 0..n_gt {
        let mut det: Option<usize> = None;
        let mut best_score = NO_DETECTION;
        let mut max_overlap = 0.0;
        let mut took_ignored = false;
        for (d, &taken) in assigned.iter().enumerate() {
            if taken {
                continue;
            }
            let overlap = case.overlap[d * n_gt + g];
            if overlap <= min_overlap {
                continue;
            }
            match pass {
                Pass::Scores => {
                    let score = case.dt_score[d] as f64;
                    if score > best_score {
                        det = Some(d);
                        best_score = score;
                    }
                }
                Pass::Count { threshold } => {
                    if case.dt_score[d] < threshold {
                        continue;
                    }
                    if case.dt_role[d] == VALID && (overlap > max_overlap || took_ignored) {
                        max_overlap = overlap;
                        det = Some(d);
                        took_ignored = false;
                    } else if case.dt_role[d] == IGNORED && det.is_none() {
                        det = Some(d);
                        took_ignored = true;
                    }
                }
            }
        }
        match det {
            None if case.gt_role[g] == VALID => misses += 1,
            None => {}
            Some(d) => {
                assigned[d] = true;
                if case.gt_role[g] == VALID && case.dt_role[d] == VALID {
                    tp += 1;
                    on_tp(g, d);
                }
            }
        }
    }
    (tp, misses)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame with the given roles and overlaps (rows: detections).
    fn case(gt_role: &[i8], dt: &[(i8, f32)], overlap: &[&[f64]]) -> FrameCase {
        FrameCase {
            gt_role: gt_role.to_vec(),
            gt_alpha: vec![0.0; gt_role.len()],
            dt_role: dt.iter().map(|d| d.0).collect(),
            dt_score: dt.iter().map(|d| d.1).collect(),
            dt_alpha: vec![0.0; dt.len()],
            dt_in_dontcare: vec![false; dt.len()],
            dt_counts_fp: vec![true; dt.len()],
            overlap: overlap.concat(),
        }
    }

    #[test]
    fn scores_pass_takes_highest_score_counting_pass_highest_overlap() {
        // One ground truth, two detections above 0.7: 0.75 @ 0.9 and 0.95 @ 0.6.
        let c = case(&[VALID], &[(VALID, 0.9), (VALID, 0.6)], &[&[0.75], &[0.95]]);
        let (mut scratch, mut scores) = (Vec::new(), Vec::new());
        tp_scores(&c, 0.7, &mut scratch, &mut scores);
        assert_eq!(scores, vec![0.9]);
        // At threshold 0.6 the counting pass matches the 0.95-overlap detection; the other
        // is a false positive either way.
        let n = counts_at(&c, 0.7, 0.6, &mut scratch);
        assert_eq!((n.tp, n.fp, n.misses), (1, 1, 0));
        assert_eq!(scratch, vec![false, true]);
        let n = counts_at(&c, 0.7, 0.7, &mut scratch);
        assert_eq!((n.tp, n.fp, n.misses), (1, 0, 0));
    }

    #[test]
    fn overlap_threshold_is_strict() {
        let c = case(&[VALID], &[(VALID, 0.9)], &[&[0.7]]);
        let n = counts_at(&c, 0.7, 0.0, &mut Vec::new());
        assert_eq!((n.tp, n.fp, n.misses), (0, 1, 1));
    }

    #[test]
    fn ignored_ground_truth_absorbs_a_detection() {
        let c = case(&[IGNORED], &[(VALID, 0.9)], &[&[0.9]]);
        let n = counts_at(&c, 0.7, 0.0, &mut Vec::new());
        assert_eq!((n.tp, n.fp, n.misses), (0, 0, 0));
    }

    #[test]
    fn valid_detection_replaces_an_ignored_one() {
        // The ignored detection comes first and is taken, then the valid one replaces it
        // even at lower overlap; the ignored one stays free and is never a false positive.
        let c = case(
            &[VALID],
            &[(IGNORED, 0.9), (VALID, 0.8)],
            &[&[0.95], &[0.8]],
        );
        let mut scratch = Vec::new();
        let n = counts_at(&c, 0.7, 0.0, &mut scratch);
        assert_eq!((n.tp, n.fp, n.misses), (1, 0, 0));
        assert_eq!(scratch, vec![false, true]);
        // Alone, the ignored detection absorbs the ground truth: no TP, no miss.
        let c = case(&[VALID], &[(IGNORED, 0.9)], &[&[0.95]]);
        let n = counts_at(&c, 0.7, 0.0, &mut scratch);
        assert_eq!((n.tp, n.fp, n.misses), (0, 0, 0));
    }

    #[test]
    fn below_threshold_detections_are_invisible() {
        let c = case(&[VALID], &[(VALID, 0.3)], &[&[0.9]]);
        let n = counts_at(&c, 0.7, 0.5, &mut Vec::new());
        assert_eq!((n.tp, n.fp, n.misses), (0, 0, 1));
    }

    #[test]
    fn dontcare_and_out_of_scope_detections_are_not_false_positives() {
        let mut c = case(&[], &[(VALID, 0.9), (VALID, 0.8), (VALID, 0.7)], &[]);
        c.dt_in_dontcare[0] = true;
        c.dt_counts_fp[1] = false;
        let n = counts_at(&c, 0.7, 0.0, &mut Vec::new());
        assert_eq!((n.tp, n.fp, n.misses), (0, 1, 0));
    }

    #[test]
    fn orientation_similarity() {
        let mut c = case(
            &[VALID, VALID],
            &[(VALID, 0.9), (VALID, 0.8)],
            &[&[0.9, 0.0], &[0.0, 0.9]],
        );
        c.gt_alpha = vec![0.0, std::f32::consts::FRAC_PI_2];
        let n = counts_at(&c, 0.7, 0.0, &mut Vec::new());
        assert_eq!(n.tp, 2);
        // Δα of 0 and π/2: 1 + 1/2.
        assert!((n.similarity - 1.5).abs() < 1e-7);
    }
}
