"""KITTI-layout object datasets for training (what `lidarq gen` writes, or real KITTI).

Mirrors OpenPCDet's KittiDataset for PointPillars: points are kept in camera 2's field of
view (`FOV_POINTS_ONLY`), labels of the model's classes become LiDAR boxes
`[x, y, z, dx, dy, dz, yaw]` (box centre; yaw about +z from +x), and training frames pass
through ground-truth sampling, a random flip about the x axis, a global rotation and a
global scaling before the range crop and the voxelizer (`voxelize.py`, the same numbers as
the Rust crate).

`prepare()` reads a split once into a compact cache (FOV points of every frame, their boxes,
and the database of object point crops used by ground-truth sampling), so that epochs cost
no file parsing.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_WIDTH, IMAGE_HEIGHT = 1242, 375
#: Points farther than this are dropped by `prepare` (beyond any model range we train).
MAX_CACHE_RANGE = 90.0


@dataclass
class Calib:
    p2: np.ndarray  # [3, 4]
    r0: np.ndarray  # [3, 3]
    v2c: np.ndarray  # [3, 4]

    @classmethod
    def read(cls, path: Path) -> "Calib":
        rows = {}
        for line in path.read_text().splitlines():
            if ":" in line:
                key, values = line.split(":", 1)
                rows[key.strip()] = np.array([float(v) for v in values.split()], dtype=np.float64)
        return cls(rows["P2"].reshape(3, 4), rows["R0_rect"].reshape(3, 3), rows["Tr_velo_to_cam"].reshape(3, 4))

    def lidar_to_rect(self, pts: np.ndarray) -> np.ndarray:
        return (pts @ self.v2c[:, :3].T + self.v2c[:, 3]) @ self.r0.T

    def rect_to_lidar(self, pts: np.ndarray) -> np.ndarray:
        ref = pts @ np.linalg.inv(self.r0).T
        rot, t = self.v2c[:, :3], self.v2c[:, 3]
        return (ref - t) @ np.linalg.inv(rot).T

    def fov_mask(self, xyz: np.ndarray) -> np.ndarray:
        """Points in front of camera 2 that project into the image (OpenPCDet's get_fov_flag)."""
        rect = self.lidar_to_rect(xyz.astype(np.float64))
        img = rect @ self.p2[:, :3].T + self.p2[:, 3]
        depth = img[:, 2] - self.p2[2, 3]
        with np.errstate(divide="ignore", invalid="ignore"):
            u, v = img[:, 0] / img[:, 2], img[:, 1] / img[:, 2]
        return (u >= 0) & (u < IMAGE_WIDTH) & (v >= 0) & (v < IMAGE_HEIGHT) & (depth >= 0)


def read_labels(path: Path, calib: Calib, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """LiDAR boxes [G, 7] and class indices [G] of the label records whose type is a class."""
    boxes, labels = [], []
    for line in path.read_text().splitlines():
        f = line.split()
        if not f or f[0] not in classes:
            continue
        h, w, l = (float(v) for v in f[8:11])
        loc = calib.rect_to_lidar(np.array([[float(v) for v in f[11:14]]]))[0]
        ry = float(f[14])
        boxes.append([loc[0], loc[1], loc[2] + h / 2, l, w, h, -(math.pi / 2 + ry)])
        labels.append(classes.index(f[0]))
    return np.asarray(boxes, np.float32).reshape(-1, 7), np.asarray(labels, np.int64)


def read_split(root: Path, split: str) -> list[str]:
    return (root / "ImageSets" / f"{split}.txt").read_text().split()


def points_in_boxes(xyz: np.ndarray, boxes: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """[G, N] mask of points inside each (rotated) box, enlarged by `margin` on every side."""
    mask = np.zeros((len(boxes), len(xyz)), bool)
    if len(boxes) == 0:
        return mask
    half = boxes[:, 3:6] / 2 + margin
    # A point in the box lies within the box's circumradius along x: the points sorted by x
    # give each box its candidates in one binary search, and only those get the exact test.
    reach = np.hypot(half[:, 0], half[:, 1]) + 1e-3
    order = np.argsort(xyz[:, 0])
    xs = xyz[order, 0]
    lo = np.searchsorted(xs, boxes[:, 0] - reach, "left")
    count = np.searchsorted(xs, boxes[:, 0] + reach, "right") - lo
    g = np.repeat(np.arange(len(boxes)), count)
    n = order[np.arange(count.sum()) - np.repeat(np.cumsum(count) - count - lo, count)]
    dx, dy, dz = (xyz[:, k][n] - boxes[:, k][g] for k in range(3))
    c, s = np.cos(boxes[:, 6])[g], np.sin(boxes[:, 6])[g]
    inside = (np.abs(dx * c + dy * s) <= half[:, 0][g]) & (np.abs(dy * c - dx * s) <= half[:, 1][g])
    inside &= np.abs(dz) <= half[:, 2][g]
    mask[g[inside], n[inside]] = True
    return mask


@dataclass
class SplitCache:
    """Every frame of a split: points concatenated ([sum N, 4] float32) with offsets, boxes
    with offsets, and the object database (points of each labelled object, box, class)."""

    ids: list[str]
    points: np.ndarray
    point_offsets: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    box_offsets: np.ndarray
    db_points: np.ndarray
    db_offsets: np.ndarray
    db_boxes: np.ndarray
    db_labels: np.ndarray

    def frame(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.points[self.point_offsets[i] : self.point_offsets[i + 1]]
        b = slice(self.box_offsets[i], self.box_offsets[i + 1])
        return p, self.boxes[b], self.labels[b]

    def db_object(self, j: int) -> np.ndarray:
        return self.db_points[self.db_offsets[j] : self.db_offsets[j + 1]]

    def save(self, path: Path) -> None:
        np.savez(path, ids=np.array(self.ids), **{k: getattr(self, k) for k in _ARRAYS})

    @classmethod
    def load(cls, path: Path) -> "SplitCache":
        z = np.load(path)
        return cls(ids=[str(v) for v in z["ids"]], **{k: z[k] for k in _ARRAYS})


_ARRAYS = ["points", "point_offsets", "boxes", "labels", "box_offsets", "db_points", "db_offsets", "db_boxes", "db_labels"]


def _read_frame(args):
    root, fid, classes, min_db_points = args
    calib = Calib.read(root / "training" / "calib" / f"{fid}.txt")
    pts = np.fromfile(root / "training" / "velodyne" / f"{fid}.bin", dtype=np.float32).reshape(-1, 4)
    pts = pts[np.isfinite(pts).all(axis=1)]
    pts = pts[calib.fov_mask(pts[:, :3]) & (np.linalg.norm(pts[:, :2], axis=1) < MAX_CACHE_RANGE)]
    boxes, labels = read_labels(root / "training" / "label_2" / f"{fid}.txt", calib, classes)
    inside = points_in_boxes(pts, boxes)
    db = [(pts[inside[g]].copy(), boxes[g], labels[g]) for g in range(len(boxes)) if inside[g].sum() >= min_db_points]
    return pts, boxes, labels, db


def prepare(root: Path, split: str, classes: list[str], min_db_points: int = 5, workers: int = 1, progress=None) -> SplitCache:
    """Reads a split into a `SplitCache` (FOV points within MAX_CACHE_RANGE); the database
    keeps objects with at least `min_db_points` points."""
    ids = read_split(root, split)
    jobs = [(root, fid, classes, min_db_points) for fid in ids]
    pts_all, boxes_all, labels_all, db = [], [], [], []
    with _pool(workers) if workers > 1 else _Serial() as pool:
        for n, (pts, boxes, labels, objs) in enumerate(pool.imap(_read_frame, jobs, chunksize=8)):
            pts_all.append(pts)
            boxes_all.append(boxes)
            labels_all.append(labels)
            db.extend(objs)
            if progress:
                progress(n + 1, len(ids))

    def offsets(parts):
        return np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)

    return SplitCache(
        ids=ids,
        points=np.concatenate(pts_all).astype(np.float32),
        point_offsets=offsets(pts_all),
        boxes=np.concatenate(boxes_all).astype(np.float32).reshape(-1, 7),
        labels=np.concatenate(labels_all).astype(np.int64),
        box_offsets=offsets(boxes_all),
        db_points=np.concatenate([o[0] for o in db]).astype(np.float32) if db else np.zeros((0, 4), np.float32),
        db_offsets=offsets([o[0] for o in db]),
        db_boxes=np.asarray([o[1] for o in db], np.float32).reshape(-1, 7),
        db_labels=np.asarray([o[2] for o in db], np.int64),
    )


def _pool(workers: int):
    """Worker processes whose numpy runs its BLAS on one thread: each frame's small matrix
    products gain nothing from threads, and forked workers inheriting the parent's
    OpenBLAS threads fight each other for the cores (4x slower on 2 cores). Spawned
    workers load numpy afresh under OPENBLAS_NUM_THREADS=1; the parent keeps its own."""
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        return multiprocessing.get_context("spawn").Pool(workers)
    finally:
        if before is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = before


class _Serial:
    """A stand-in for multiprocessing.Pool that maps in this process."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap(self, fn, items, chunksize=1):
        return map(fn, items)


def nearest_bev(boxes: np.ndarray) -> np.ndarray:
    """Axis-aligned BEV rectangles [x1, y1, x2, y2] of boxes snapped to the nearest axis
    (SECOND's `rbbox2d_to_near_bbox`): the anchors are axis-aligned, so target assignment
    and collision tests use this cheap IoU instead of the rotated one."""
    yaw = boxes[:, 6] - np.floor(boxes[:, 6] / np.pi + 0.5) * np.pi
    swap = np.abs(yaw) > np.pi / 4
    dx = np.where(swap, boxes[:, 4], boxes[:, 3])
    dy = np.where(swap, boxes[:, 3], boxes[:, 4])
    return np.stack([boxes[:, 0] - dx / 2, boxes[:, 1] - dy / 2, boxes[:, 0] + dx / 2, boxes[:, 1] + dy / 2], axis=1)


def iou_aligned(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of axis-aligned rectangles [x1, y1, x2, y2]."""
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class AugmentConfig:
    """OpenPCDet's KITTI PointPillars augmentations; `sample_groups[c]` objects of class c
    in the scene after ground-truth sampling."""

    sample_groups: tuple[int, ...] = (20, 12, 12)
    flip: bool = True
    rotation: float = math.pi / 4
    scaling: tuple[float, float] = (0.95, 1.05)


def sample_ground_truth(
    cache: SplitCache, pts: np.ndarray, boxes: np.ndarray, labels: np.ndarray, groups, rng: np.random.Generator
):
    """Pastes objects from the database into the scene where they collide with nothing
    (nearest-axis BEV overlap with the scene's boxes or an earlier pick), removing the scene
    points inside the pasted boxes."""
    picks = []
    for c, want in enumerate(groups):
        need = want - int((labels == c).sum())
        pool = np.nonzero(cache.db_labels == c)[0]
        if need > 0 and len(pool):
            picks.append(rng.choice(pool, size=min(need, len(pool)), replace=False))
    if not picks:
        return pts, boxes, labels
    cand = np.concatenate(picks)
    rects = nearest_bev(cache.db_boxes[cand])
    free = np.ones(len(cand), bool)
    if len(boxes):
        free = iou_aligned(rects, nearest_bev(boxes)).max(axis=1) <= 0
    overlap = iou_aligned(rects, rects) > 0
    chosen = []
    for i in np.nonzero(free)[0]:
        if not overlap[i, chosen].any():
            chosen.append(i)
    if not chosen:
        return pts, boxes, labels
    chosen = cand[chosen]
    new_boxes = cache.db_boxes[chosen]
    keep = ~points_in_boxes(pts, new_boxes, margin=0.1).any(axis=0)
    pts = np.concatenate([pts[keep]] + [cache.db_object(j) for j in chosen])
    return pts, np.concatenate([boxes, new_boxes]), np.concatenate([labels, cache.db_labels[chosen]])


def augment(pts: np.ndarray, boxes: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator):
    """Random flip about x, global rotation about z, global scaling (in that order)."""
    pts, boxes = pts.copy(), boxes.copy()
    if cfg.flip and rng.random() < 0.5:
        pts[:, 1] = -pts[:, 1]
        boxes[:, 1] = -boxes[:, 1]
        boxes[:, 6] = -boxes[:, 6]
    angle = rng.uniform(-cfg.rotation, cfg.rotation)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]], np.float32)
    pts[:, :2] = pts[:, :2] @ rot.T
    boxes[:, :2] = boxes[:, :2] @ rot.T
    boxes[:, 6] += angle
    scale = rng.uniform(*cfg.scaling)
    pts[:, :3] *= scale
    boxes[:, :6] *= scale
    return pts, boxes


def mask_boxes_in_range(boxes: np.ndarray, pc_range) -> np.ndarray:
    """Boxes with at least one BEV corner in the range (OpenPCDet, min_num_corners=1)."""
    if len(boxes) == 0:
        return np.zeros(0, bool)
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    inside = np.zeros(len(boxes), bool)
    for u, v in [(1, 1), (-1, 1), (-1, -1), (1, -1)]:
        hx, hy = u * boxes[:, 3] / 2, v * boxes[:, 4] / 2
        x = boxes[:, 0] + c * hx - s * hy
        y = boxes[:, 1] + s * hx + c * hy
        inside |= (x >= pc_range[0]) & (x <= pc_range[3]) & (y >= pc_range[1]) & (y <= pc_range[4])
    return inside
