"""Training targets, losses and data augmentation: hand-checked cases and round trips."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

import kitti_data as D  # noqa: E402
import model as M  # noqa: E402
import targets as T  # noqa: E402

CFG = M.load_config(HERE / "configs" / "demo.json")


def test_encode_inverts_the_reference_decoder():
    rng = np.random.default_rng(0)
    anchors = M.generate_anchors(CFG)
    h, w, a, _ = anchors.shape
    flat = anchors.reshape(-1, 7)
    boxes = flat.copy()
    boxes[:, :3] += rng.normal(0, 0.5, (len(flat), 3)).astype(np.float32)
    boxes[:, 3:6] *= rng.uniform(0.7, 1.4, (len(flat), 3)).astype(np.float32)
    boxes[:, 6] += rng.uniform(-0.7, 0.7, len(flat)).astype(np.float32)
    cfg = {**CFG, "dense_head": {**CFG["dense_head"], "use_direction_classifier": False}}
    head = {"box_preds": T.encode(boxes, flat).reshape(h, w, a * 7), "cls_preds": np.zeros((h, w, a * 3), np.float32)}
    _, decoded = M.decode_boxes(cfg, head, anchors)
    np.testing.assert_allclose(decoded, boxes, rtol=1e-5, atol=1e-4)


def test_a_box_on_an_anchor_is_its_positive_with_zero_residuals():
    assigner = T.TargetAssigner(CFG)
    anchors = assigner.anchors
    car = anchors[40, 60, 0].copy()  # Car anchor, yaw 0
    labels, box_t, dirs = assigner.assign(car[None, :], np.array([0]))
    flat_index = (40 * anchors.shape[1] + 60) * anchors.shape[2]
    assert labels[flat_index] == 1
    np.testing.assert_allclose(box_t[flat_index], 0.0, atol=1e-6)
    # yaw 0 minus the 0.78539 direction offset wraps to 2π - 0.785 -> bin 1 of 2
    assert dirs[flat_index] == 1
    # A Pedestrian anchor at the same cell is background for a car (its class has no box).
    assert labels[flat_index + 2] == 0
    # Far away is background; the other classes' anchors never become positives.
    assert (labels[labels > 0] == 1).all()
    assert labels[0] == 0


def test_direction_bin_flips_with_the_heading():
    assigner = T.TargetAssigner(CFG)
    car = assigner.anchors[40, 60, 0].copy()
    car[6] = math.pi
    _, _, dirs = assigner.assign(car[None, :], np.array([0]))
    flat_index = (40 * assigner.anchors.shape[1] + 60) * assigner.anchors.shape[2]
    assert dirs[flat_index] == 0


def test_focal_loss_of_a_confident_background_is_small_and_positives_count():
    labels = torch.zeros(1, 4, dtype=torch.long)
    labels[0, 1] = 1
    preds = {"cls_preds": torch.full((1, 4, 3), -8.0), "box_preds": torch.zeros(1, 4, 7)}
    preds["cls_preds"][0, 1, 0] = 8.0
    terms = T.losses(preds, labels, torch.zeros(1, 4, 7), torch.zeros(1, 4, dtype=torch.long), 3)
    assert float(terms["cls"]) < 1e-6
    preds["cls_preds"][0, 1, 0] = -8.0  # the positive is missed: alpha (1 - p)^2 bce
    terms = T.losses(preds, labels, torch.zeros(1, 4, 7), torch.zeros(1, 4, dtype=torch.long), 3)
    p = 1 / (1 + math.exp(8.0))
    assert abs(float(terms["cls"]) - 0.25 * (1 - p) ** 2 * -math.log(p)) < 1e-4


def test_ground_truth_sampling_pastes_without_overlap():
    rng = np.random.default_rng(3)
    db_boxes = np.array([[10 + 5 * i, 0, -1, 4, 1.6, 1.5, 0] for i in range(6)], np.float32)
    db_points = np.concatenate([b[None, :4] + np.zeros((7, 4), np.float32) for b in db_boxes])
    cache = D.SplitCache(
        ids=["0"], points=np.zeros((0, 4), np.float32), point_offsets=np.array([0, 0]),
        boxes=np.zeros((0, 7), np.float32), labels=np.zeros(0, np.int64), box_offsets=np.array([0, 0]),
        db_points=db_points, db_offsets=np.arange(0, 43, 7), db_boxes=db_boxes, db_labels=np.zeros(6, np.int64),
    )
    scene = np.array([[20, 0, -1, 4, 1.6, 1.5, 0.1]], np.float32)  # overlaps database box 2
    pts = np.array([[20, 0, -1, 0.5], [0, 30, 0, 0.5]], np.float32)
    out_pts, boxes, labels = D.sample_ground_truth(cache, pts, scene, np.array([0]), (10, 0, 0), rng)
    assert len(boxes) == 6 and set(boxes[1:, 0].tolist()) == {10, 15, 25, 30, 35}
    rects = D.nearest_bev(boxes)
    iou = D.iou_aligned(rects, rects)
    assert (iou[~np.eye(len(boxes), dtype=bool)] == 0).all()
    assert len(out_pts) == 2 + 5 * 7


def test_fov_keeps_the_hand_computed_pixel():
    calib = D.Calib(
        p2=np.array([[721.5377, 0, 609.5593, 44.85728], [0, 721.5377, 172.854, 0.2163791], [0, 0, 1, 0.002745884]]),
        r0=np.array([[0.9999239, 0.00983776, -0.007445048], [-0.009869795, 0.9999421, -0.004278459], [0.007402527, 0.004351614, 0.9999631]]),
        v2c=np.array([[0.007533745, -0.9999714, -0.000616602, -0.004069766], [0.01480249, 0.0007280733, -0.9998902, -0.07631618], [0.9998621, 0.00752379, 0.01480755, -0.2717806]]),
    )
    mask = calib.fov_mask(np.array([[20.0, 3.0, -1.0], [-20.0, 0.0, -1.0], [5.0, 20.0, -1.0], [10.0, 0.0, 8.0]]))
    assert mask.tolist() == [True, False, False, False]
    box = np.array([[20.0, 3.0, -1.0, 4.0, 1.6, 1.5, 0.3]])
    assert D.points_in_boxes(np.array([[21.0, 3.5, -0.5], [22.5, 3.0, -1.0]]), box).tolist() == [[True, False]]


def test_location_loss_is_smooth_l1_of_the_residuals_with_sin_of_the_yaw_difference():
    labels = torch.tensor([[0, 2, 0, -1]])
    box = torch.zeros(1, 4, 7)
    box[0, 1, 0] = 1.0  # |dx| = 1 > beta: 1 - beta / 2
    box[0, 1, 6] = 0.05  # yaw: sin(0.05 - 0.0) < beta: 0.5 sin^2 / beta
    box[0, 3, :] = 5.0  # ignored anchor: no location loss
    preds = {"cls_preds": torch.zeros(1, 4, 3), "box_preds": box}
    terms = T.losses(preds, labels, torch.zeros(1, 4, 7), torch.zeros(1, 4, dtype=torch.long), 3)
    beta = 1.0 / 9.0
    expected = 2.0 * ((1.0 - beta / 2) + 0.5 * math.sin(0.05) ** 2 / beta)
    assert abs(float(terms["loc"]) - expected) < 1e-5


def test_assigner_iou_near_the_boxes_equals_the_dense_matrix():
    assigner = T.TargetAssigner(CFG)
    rng = np.random.default_rng(5)
    boxes = np.concatenate(
        [rng.uniform([-2, -22, -2], [53, 22, 0], (25, 3)), rng.uniform(0.5, 6, (25, 3)), rng.uniform(-3, 3, (25, 1))], axis=1
    ).astype(np.float32)
    gt = D.nearest_bev(boxes)
    for _, n, _, rects, _ in assigner.per_class:
        dense = D.iou_aligned(rects, gt)
        assert (dense > 0).sum() > 100
        np.testing.assert_array_equal(assigner.iou(rects, n, gt), dense)


def test_prefetched_keeps_the_order_and_raises_the_loaders_error():
    import train as TR

    assert list(TR.prefetched(iter(range(7)), depth=2)) == list(range(7))

    def failing():
        yield 1
        raise ValueError("frame 2 is unreadable")

    got = []
    try:
        for b in TR.prefetched(failing()):
            got.append(b)
        raise AssertionError("the loader's error was swallowed")
    except ValueError as e:
        assert str(e) == "frame 2 is unreadable"
    assert got == [1]
