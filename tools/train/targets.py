"""Training targets and losses of the anchor head, as OpenPCDet's AnchorHeadSingle trains.

* Target assignment (AxisAlignedTargetAssigner): per class, each anchor takes the ground
  truth of highest IoU; IoU >= matched_threshold is a positive, < unmatched_threshold a
  negative, in between ignored, and each ground truth's best anchor(s) are forced positive.
  The IoU is the nearest-axis BEV IoU (`kitti_data.nearest_bev`): the anchors are
  axis-aligned.
* Box targets: ResidualCoder (dx/diag, dy/diag, dz/h, log sizes, yaw residual), the exact
  inverse of `model.decode_boxes` and the Rust box coder.
* Losses: sigmoid focal loss (alpha 0.25, gamma 2) over the classes, smooth-L1 (beta 1/9)
  on the residuals with the yaw term as sin(a - b), cross-entropy on the direction bins,
  each normalised by the frame's positives and weighted 1 / 2 / 0.2.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

import kitti_data
import model as M

LOSS_WEIGHTS = {"cls": 1.0, "loc": 2.0, "dir": 0.2}
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
SMOOTH_L1_BETA = 1.0 / 9.0


class TargetAssigner:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.anchors = M.generate_anchors(cfg)  # [H, W, A, 7]
        h, w, a, _ = self.anchors.shape
        self.shape = (h, w, a)
        self.per_class = []
        start = 0
        for c, g in enumerate(cfg["dense_head"]["anchor_generator"]):
            n = len(g["anchor_sizes"]) * len(g["anchor_rotations"]) * len(g["anchor_bottom_heights"])
            anchors = self.anchors[:, :, start : start + n].reshape(-1, 7)
            self.per_class.append((start, n, anchors, kitti_data.nearest_bev(anchors), g))
            start += n
        self.flat = self.anchors.reshape(-1, 7)
        self.centers_x = self.anchors[0, :, 0, 0]
        self.centers_y = self.anchors[:, 0, 0, 1]

    def iou(self, rects: np.ndarray, n: int, gt_rects: np.ndarray) -> np.ndarray:
        """`kitti_data.iou_aligned(rects, gt_rects)` of one class's anchors ([H, W, n] order),
        computed only for the anchors whose centre is near enough to overlap each box (the
        others are exactly 0): the dense matrix is most of a training frame's loading time."""
        iou = np.zeros((len(rects), len(gt_rects)), np.float32)
        reach = float(np.max(rects[:, 2:] - rects[:, :2])) / 2 + 1e-3
        w = len(self.centers_x)
        for j, (x1, y1, x2, y2) in enumerate(gt_rects):
            xs = np.arange(*np.searchsorted(self.centers_x, [x1 - reach, x2 + reach]))
            ys = np.arange(*np.searchsorted(self.centers_y, [y1 - reach, y2 + reach]))
            near = ((ys[:, None, None] * w + xs[None, :, None]) * n + np.arange(n)[None, None, :]).ravel()
            iou[near, j] = kitti_data.iou_aligned(rects[near], gt_rects[j : j + 1])[:, 0]
        return iou

    def assign(self, boxes: np.ndarray, labels: np.ndarray):
        """(labels [N] int64: -1 ignore, 0 background, c+1 class c; box targets [N, 7];
        direction bins [N]) in the head's anchor order [H, W, A]."""
        h, w, a = self.shape
        out_labels = np.zeros((h, w, a), np.int64)
        out_gt = np.zeros((h, w, a), np.int64)
        for c, (start, n, anchors, rects, g) in enumerate(self.per_class):
            lab = -np.ones(len(anchors), np.int64)
            gt_idx = np.zeros(len(anchors), np.int64)
            sel = np.nonzero(labels == c)[0]
            if len(sel):
                iou = self.iou(rects, n, kitti_data.nearest_bev(boxes[sel]))
                best = iou.argmax(axis=1)
                best_iou = iou[np.arange(len(anchors)), best]
                gt_best = iou.max(axis=0)
                gt_best[gt_best == 0] = -1
                forced = np.nonzero(iou == gt_best[None, :])[0]
                pos = best_iou >= g["matched_threshold"]
                lab[pos] = c + 1
                gt_idx[pos] = sel[best[pos]]
                lab[best_iou < g["unmatched_threshold"]] = 0
                lab[forced] = c + 1
                gt_idx[forced] = sel[best[forced]]
            else:
                lab[:] = 0
            out_labels[:, :, start : start + n] = lab.reshape(h, w, n)
            out_gt[:, :, start : start + n] = gt_idx.reshape(h, w, n)
        out_labels = out_labels.reshape(-1)
        out_gt = out_gt.reshape(-1)
        targets = np.zeros((len(out_labels), 7), np.float32)
        dirs = np.zeros(len(out_labels), np.int64)
        fg = np.nonzero(out_labels > 0)[0]
        if len(fg):
            targets[fg] = encode(boxes[out_gt[fg]], self.flat[fg])
            dh = self.cfg["dense_head"]
            period = 2 * math.pi / dh["num_dir_bins"]
            rot = boxes[out_gt[fg], 6] - dh["dir_offset"]
            rot = rot - np.floor(rot / (2 * math.pi)) * 2 * math.pi
            dirs[fg] = np.clip(np.floor(rot / period), 0, dh["num_dir_bins"] - 1).astype(np.int64)
        return out_labels, targets, dirs


def smooth_l1(diff: torch.Tensor) -> torch.Tensor:
    d = diff.abs()
    return torch.where(d < SMOOTH_L1_BETA, 0.5 * d**2 / SMOOTH_L1_BETA, d - 0.5 * SMOOTH_L1_BETA)


def encode(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """ResidualCoder.encode_torch (no sin/cos angle encoding)."""
    diag = np.sqrt(anchors[:, 3] ** 2 + anchors[:, 4] ** 2)
    t = np.empty_like(anchors)
    t[:, 0] = (boxes[:, 0] - anchors[:, 0]) / diag
    t[:, 1] = (boxes[:, 1] - anchors[:, 1]) / diag
    t[:, 2] = (boxes[:, 2] - anchors[:, 2]) / anchors[:, 5]
    t[:, 3:6] = np.log(np.maximum(boxes[:, 3:6], 1e-5) / anchors[:, 3:6])
    t[:, 6] = boxes[:, 6] - anchors[:, 6]
    return t.astype(np.float32)


def losses(preds: dict, labels: torch.Tensor, box_targets: torch.Tensor, dir_targets: torch.Tensor, num_classes: int):
    """Loss terms of a batch. preds: head maps [B, H, W, A*k]; labels [B, N]."""
    b = labels.shape[0]
    cls = preds["cls_preds"].reshape(b, -1, num_classes)
    box = preds["box_preds"].reshape(b, -1, 7)
    positives = (labels > 0).float()
    cared = (labels >= 0).float()
    normalizer = positives.sum(1, keepdim=True).clamp(min=1.0)
    cls_w = cared / normalizer
    onehot = F.one_hot(labels.clamp(min=0), num_classes + 1)[..., 1:].bool()
    p = torch.sigmoid(cls)
    one_minus_pt = torch.where(onehot, 1 - p, p)
    alpha = torch.where(onehot, FOCAL_ALPHA, 1 - FOCAL_ALPHA)
    bce = F.binary_cross_entropy_with_logits(cls, onehot.float(), reduction="none")
    cls_loss = (alpha * one_minus_pt.pow(FOCAL_GAMMA) * bce * cls_w[..., None]).sum() / b

    reg_w = positives / normalizer
    pa, ta = box[..., 6], box_targets[..., 6]
    # Smooth-L1 of each residual, the yaw one as sin(a - b) = sin a cos b - cos a sin b.
    sl1 = smooth_l1(box[..., :6] - box_targets[..., :6]).sum(-1)
    sl1 = sl1 + smooth_l1(torch.sin(pa) * torch.cos(ta) - torch.cos(pa) * torch.sin(ta))
    loc_loss = (sl1 * reg_w).sum() / b

    terms = {"cls": cls_loss * LOSS_WEIGHTS["cls"], "loc": loc_loss * LOSS_WEIGHTS["loc"]}
    if "dir_cls_preds" in preds:
        d = preds["dir_cls_preds"].reshape(b, labels.shape[1], -1)
        ce = F.cross_entropy(d.reshape(-1, d.shape[-1]), dir_targets.reshape(-1), reduction="none").reshape(b, -1)
        terms["dir"] = (ce * reg_w).sum() / b * LOSS_WEIGHTS["dir"]
    return terms
