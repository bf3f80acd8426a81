//! From head maps to detections, as OpenPCDet's `generate_predicted_boxes` and
//! `post_processing` with class-agnostic NMS: sigmoid scores, best class per anchor,
//! score threshold, the `nms_pre_maxsize` best, ResidualCoder decode with the
//! direction-bin correction, rotated BEV NMS, `nms_post_maxsize` kept.

pub mod anchors;
pub mod box_coder;

use lidarq_data::{Box3D, Detection};
use rayon::prelude::*;

use crate::config::{ModelConfig, PostProcessingConfig};
use crate::graph::BOX_CODE_SIZE;
use crate::nms::nms;
use anchors::{Anchor, generate_anchors};
use box_coder::{DirectionBins, decode};

/// Borrowed head maps of one frame, channels-last `[H, W, A·n]` like OpenPCDet's permuted
/// outputs, so anchor `i` owns `cls[i·K .. (i+1)·K]`, `boxes[i·7 ..]`, `dir[i·bins ..]`.
#[derive(Debug, Clone, Copy)]
pub struct HeadView<'a> {
    /// Class logits.
    pub cls: &'a [f32],
    /// Box residuals.
    pub boxes: &'a [f32],
    /// Direction logits, when the model has a direction classifier.
    pub dir: Option<&'a [f32]>,
}

/// A decoded candidate before NMS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Anchor index.
    pub anchor: usize,
    /// Class index (into the config's class names).
    pub class: usize,
    /// Sigmoid score.
    pub score: f32,
    /// Decoded box.
    pub bbox: Box3D,
}

/// Anchors and settings, prepared once per model.
#[derive(Debug, Clone)]
pub struct PostProcessor {
    anchors: Vec<Anchor>,
    class_names: Vec<String>,
    dir: Option<DirectionBins>,
    cfg: PostProcessingConfig,
}

/// Anchors per parallel task of the score scan.
const SCAN_ANCHORS: usize = 8192;

/// Logits this far below the threshold's logit are rejected without an exp; the exact
/// sigmoid decides every anchor nearer the threshold.
const LOGIT_MARGIN: f32 = 1e-2;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl PostProcessor {
    /// Generates the anchors of `cfg`.
    pub fn new(cfg: &ModelConfig) -> Self {
        let dh = &cfg.dense_head;
        Self {
            anchors: generate_anchors(cfg),
            class_names: cfg.class_names.clone(),
            dir: dh.use_direction_classifier.then_some(DirectionBins {
                offset: dh.dir_offset,
                limit_offset: dh.dir_limit_offset,
                bins: dh.num_dir_bins,
            }),
            cfg: cfg.post_processing,
        }
    }

    /// The anchors, in head order.
    pub fn anchors(&self) -> &[Anchor] {
        &self.anchors
    }

    /// Decodes the box of anchor `i` (residuals, then the direction bin).
    pub fn decode_anchor(&self, head: &HeadView, i: usize) -> Box3D {
        let t = &head.boxes[i * BOX_CODE_SIZE..(i + 1) * BOX_CODE_SIZE];
        let mut b = decode(t, &self.anchors[i]);
        if let (Some(d), Some(dir)) = (self.dir, head.dir) {
            b[6] = d.apply(
                b[6],
                argmax(dir[i * d.bins..(i + 1) * d.bins].iter().copied()).0,
            );
        }
        Box3D {
            x: b[0],
            y: b[1],
            z: b[2],
            dx: b[3],
            dy: b[4],
            dz: b[5],
            yaw: b[6],
        }
    }

    /// Candidates above the score threshold, best first (ties in anchor order), at most
    /// `nms_pre_maxsize`, decoded.
    pub fn candidates(&self, head: &HeadView) -> Vec<Candidate> {
        let k = self.class_names.len();
        let t = self.cfg.score_thresh.clamp(1e-7, 1.0 - 1e-7);
        let logit_floor = (t / (1.0 - t)).ln() - LOGIT_MARGIN;
        // The sigmoid is monotone, so an anchor's score is the sigmoid of its largest logit:
        // one exp per anchor instead of one per class. A key orders best score first and
        // ties in anchor order (the bits of non-negative floats order like the floats), a
        // total order, so selecting the best `nms_pre_maxsize` keys and sorting only those
        // equals sorting all.
        let n = self.anchors.len().min(head.cls.len() / k);
        let mut keys: Vec<u64> = head.cls[..n * k]
            .par_chunks(SCAN_ANCHORS * k)
            .enumerate()
            .flat_map_iter(|(c, chunk)| {
                chunk.chunks_exact(k).enumerate().filter_map(move |(j, l)| {
                    let best = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    if best < logit_floor {
                        return None;
                    }
                    let score = sigmoid(best);
                    let i = (c * SCAN_ANCHORS + j) as u32;
                    (score >= self.cfg.score_thresh)
                        .then(|| (u64::from(score.to_bits()) << 32) | u64::from(!i))
                })
            })
            .collect();
        let keep = self.cfg.nms_pre_maxsize;
        if keep == 0 {
            keys.clear();
        } else if keys.len() > keep {
            keys.select_nth_unstable_by(keep - 1, |a, b| b.cmp(a));
            keys.truncate(keep);
        }
        keys.sort_unstable_by(|a, b| b.cmp(a));
        keys.into_iter()
            .map(|key| {
                let anchor = !(key as u32) as usize;
                // The first class with the best probability, as `torch.max` over sigmoids.
                let (class, score) = argmax(
                    head.cls[anchor * k..(anchor + 1) * k]
                        .iter()
                        .map(|&v| sigmoid(v)),
                );
                Candidate {
                    anchor,
                    class,
                    score,
                    bbox: self.decode_anchor(head, anchor),
                }
            })
            .collect()
    }

    /// Final detections of one frame, best first.
    pub fn detections(&self, head: &HeadView) -> Vec<Detection> {
        let cands = self.candidates(head);
        let boxes: Vec<Box3D> = cands.iter().map(|c| c.bbox).collect();
        let order: Vec<usize> = (0..cands.len()).collect();
        nms(
            &boxes,
            &order,
            self.cfg.nms_thresh,
            self.cfg.nms_post_maxsize,
        )
        .into_iter()
        .map(|i| Detection {
            bbox: cands[i].bbox,
            class: self.class_names[cands[i].class].clone(),
            score: cands[i].score,
        })
        .collect()
    }
}

/// Index and value of the first maximum (NaN never wins).
fn argmax(v: impl IntoIterator<Item = f32>) -> (usize, f32) {
    v.into_iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, x)| {
            if x > best.1 { (i, x) } else { best }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_the_best_scores_first_with_ties_in_anchor_order() {
        let mut cfg = ModelConfig::kitti();
        cfg.post_processing.score_thresh = 0.1;
        cfg.post_processing.nms_pre_maxsize = 1000;
        let post = PostProcessor::new(&cfg);
        let (n, k) = (post.anchors().len(), cfg.class_names.len());
        // Thirteen distinct logits: thousands of tied scores around the cut.
        let cls: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919) % 13) as f32 * 0.5 - 3.0)
            .collect();
        let boxes = vec![0.0; n * BOX_CODE_SIZE];
        let head = HeadView {
            cls: &cls,
            boxes: &boxes,
            dir: None,
        };
        let got: Vec<(usize, usize, f32)> = post
            .candidates(&head)
            .iter()
            .map(|c| (c.anchor, c.class, c.score))
            .collect();
        // The plain definition: a stable sort of every anchor above the threshold.
        let mut want: Vec<(usize, usize, f32)> = cls
            .chunks_exact(k)
            .enumerate()
            .map(|(i, l)| {
                let (class, score) = (0..k).fold((0, f32::NEG_INFINITY), |best, c| {
                    let p = sigmoid(l[c]);
                    if p > best.1 { (c, p) } else { best }
                });
                (i, class, score)
            })
            .filter(|c| c.2 >= 0.1)
            .collect();
        assert!(want.len() > 10_000, "{} candidates", want.len());
        want.sort_by(|a, b| b.2.total_cmp(&a.2));
        want.truncate(1000);
        assert_eq!(got, want);
    }
}
