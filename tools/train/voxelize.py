"""Numpy reference of lidarq's voxelizer: PointPillars pillars and mean voxels.

This is the preprocessing the training pipeline runs and the oracle of the Rust crate
``lidarq-voxelizer`` (its golden fixtures are generated from this module). It reproduces
OpenPCDet's KITTI preprocessing with spconv 2.x -- ``mask_points_and_boxes_outside_range``,
``transform_points_to_voxels`` (spconv ``Point2VoxelCPU3d.point_to_voxel``) and the
decoration of ``PillarVFE`` / ``MeanVFE`` -- with every float operation in float32 and in a
fixed order, so that the Rust crate agrees with it bit for bit. The exactness decisions are
written out in the Rust crate's root docs (``voxelizer/src/lib.rs``); in short:

* a point is kept when ``x_min <= x <= x_max`` and ``y_min <= y <= y_max`` (OpenPCDet's range
  mask, float32) and, per axis, ``q = (p - f32(min)) / f32(voxel)`` (float32) lies in
  ``[0, n)`` with ``n = round_half_away((f32(max) - f32(min)) / f32(voxel))`` (spconv);
  the cell is ``floor(q)``;
* in point order, a new cell opens a voxel while fewer than ``max_voxels`` exist, and a
  voxel keeps its first ``max_points_per_voxel`` points; voxels come out in order of first
  appearance with coordinates (z, y, x);
* means are ``(((0 + p0) + p1) + ...) / n`` in float32; pillar centres are
  ``f32(c * f32(voxel)) + f32(voxel / 2 + f32(min))`` (the offset added in float64, rounded
  once); distance is ``sqrt((x*x + y*y) + z*z)``; padded slots are +0.0.

Only numpy is needed; nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "VoxelConfig",
    "PillarDecoration",
    "Grid",
    "Assignment",
    "grid_of",
    "assign",
    "points_to_voxels",
    "decorate_pillars",
    "mean_vfe",
    "pillarize",
    "voxelize_mean",
]


@dataclasses.dataclass(frozen=True)
class VoxelConfig:
    """Range ``[x_min, y_min, z_min, x_max, y_max, z_max]`` (m), voxel size (m), limits.

    Field names and JSON form match the Rust ``VoxelConfig``.
    """

    point_cloud_range: tuple[float, float, float, float, float, float]
    voxel_size: tuple[float, float, float]
    max_points_per_voxel: int
    max_voxels: int

    @classmethod
    def kitti_pointpillars(cls, split: str = "test") -> "VoxelConfig":
        """OpenPCDet ``kitti_models/pointpillar.yaml`` (grid 432 x 496 x 1)."""
        return cls(
            (0.0, -39.68, -3.0, 69.12, 39.68, 1.0),
            (0.16, 0.16, 4.0),
            32,
            _max_voxels(split),
        )

    @classmethod
    def kitti_second(cls, split: str = "test") -> "VoxelConfig":
        """OpenPCDet ``kitti_models/second.yaml`` (grid 1408 x 1600 x 40)."""
        return cls(
            (0.0, -40.0, -3.0, 70.4, 40.0, 1.0),
            (0.05, 0.05, 0.1),
            5,
            _max_voxels(split),
        )

    def to_json(self) -> dict:
        return {
            "point_cloud_range": list(self.point_cloud_range),
            "voxel_size": list(self.voxel_size),
            "max_points_per_voxel": self.max_points_per_voxel,
            "max_voxels": self.max_voxels,
        }

    @classmethod
    def from_json(cls, obj: dict) -> "VoxelConfig":
        return cls(
            tuple(float(v) for v in obj["point_cloud_range"]),
            tuple(float(v) for v in obj["voxel_size"]),
            int(obj["max_points_per_voxel"]),
            int(obj["max_voxels"]),
        )


def _max_voxels(split: str) -> int:
    limits = {"train": 16000, "test": 40000}
    if split not in limits:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    return limits[split]


@dataclasses.dataclass(frozen=True)
class PillarDecoration:
    """PillarVFE's ``USE_ABSLOTE_XYZ`` and ``WITH_DISTANCE``; KITTI defaults."""

    use_absolute_xyz: bool = True
    with_distance: bool = False

    def num_channels(self, num_point_features: int = 4) -> int:
        """Channels per point for clouds of ``num_point_features`` columns."""
        kept = num_point_features if self.use_absolute_xyz else num_point_features - 3
        return kept + 6 + int(self.with_distance)

    def to_json(self) -> dict:
        return {"use_absolute_xyz": self.use_absolute_xyz, "with_distance": self.with_distance}


class Grid(NamedTuple):
    """The float32 geometry (x, y, z order) spconv and PillarVFE compute with."""

    min: np.ndarray  # f32(range_min), shape (3,)
    max_xy: np.ndarray  # f32(range_max) of x and y, shape (2,)
    voxel: np.ndarray  # f32(voxel_size), shape (3,)
    dims: tuple[int, int, int]  # cells along x, y, z
    center_offset: np.ndarray  # f32(voxel / 2 + f32(min)), shape (3,)


def grid_of(cfg: VoxelConfig) -> Grid:
    """Derives the grid; raises ``ValueError`` for configs the Rust crate also rejects."""
    if not (1 <= cfg.max_points_per_voxel <= 2**32 - 1 and 1 <= cfg.max_voxels <= 2**32 - 1):
        raise ValueError(f"limits must be in 1..=2^32-1: {cfg}")
    rng = np.asarray(cfg.point_cloud_range, dtype=np.float32)
    voxel = np.asarray(cfg.voxel_size, dtype=np.float32)
    lo, hi = rng[:3], rng[3:]
    if not (np.all(np.isfinite(rng)) and np.all(np.isfinite(voxel))):
        raise ValueError(f"range and voxel size must be finite as float32: {cfg}")
    if not (np.all(voxel > 0) and np.all(hi > lo)):
        raise ValueError(f"voxel size must be > 0 and range max > min: {cfg}")
    # std::round on a float: half away from zero (the quotient is positive here).
    dims = tuple(int(math.floor(float(q) + 0.5)) for q in (hi - lo) / voxel)
    if min(dims) < 1 or max(dims) > 2**31 or math.prod(dims) >= 2**32 - 1:
        raise ValueError(f"grid {dims} is empty or too large: {cfg}")
    offset = np.asarray(
        [cfg.voxel_size[a] / 2 + float(lo[a]) for a in range(3)], dtype=np.float32
    )
    return Grid(lo, hi[:2].copy(), voxel, dims, offset)


class Assignment(NamedTuple):
    """Which points each voxel kept: ``point_index[v, k]`` (-1 past ``num_points[v]``)."""

    point_index: np.ndarray  # int64 [V, max_points]
    coords: np.ndarray  # int32 [V, 3], (z, y, x)
    num_points: np.ndarray  # int32 [V]


def _as_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points)
    if pts.dtype != np.float32 or pts.ndim != 2 or pts.shape[1] < 4:
        raise ValueError(f"points must be float32 [N, >=4], got {pts.dtype} {pts.shape}")
    return pts


def assign(points: np.ndarray, cfg: VoxelConfig) -> Assignment:
    """spconv's first-come voxel assignment of float32 ``points`` [N, >=4]."""
    pts = _as_points(points)
    g = grid_of(cfg)
    nx, ny, _ = g.dims
    x, y = pts[:, 0], pts[:, 1]
    keep = (x >= g.min[0]) & (x <= g.max_xy[0]) & (y >= g.min[1]) & (y <= g.max_xy[1])
    with np.errstate(invalid="ignore", over="ignore"):
        q = (pts[:, :3] - g.min) / g.voxel
    dims_f = np.asarray(g.dims, dtype=np.float32)
    keep &= np.all((q >= 0) & (q < dims_f), axis=1)  # NaN fails both comparisons
    idx = np.flatnonzero(keep)
    cells3 = q[idx].astype(np.int64)  # q >= 0: truncation is floor
    cell = (cells3[:, 2] * ny + cells3[:, 1]) * nx + cells3[:, 0]

    uniq, first, inverse = np.unique(cell, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first, kind="stable")
    rank = np.empty_like(by_appearance)
    rank[by_appearance] = np.arange(len(by_appearance))
    voxel = rank[inverse.reshape(-1)]
    num_voxels = min(len(uniq), cfg.max_voxels)
    sel = voxel < num_voxels
    idx, voxel = idx[sel], voxel[sel]

    # Slot = how many earlier points (in cloud order) the same voxel already had.
    perm = np.argsort(voxel, kind="stable")
    starts = np.searchsorted(voxel[perm], np.arange(num_voxels))
    slot = np.empty_like(voxel)
    slot[perm] = np.arange(len(perm)) - starts[voxel[perm]]
    sel = slot < cfg.max_points_per_voxel
    idx, voxel, slot = idx[sel], voxel[sel], slot[sel]

    point_index = np.full((num_voxels, cfg.max_points_per_voxel), -1, dtype=np.int64)
    point_index[voxel, slot] = idx
    num_points = np.bincount(voxel, minlength=num_voxels).astype(np.int32)
    vcell = uniq[by_appearance[:num_voxels]]
    coords = np.stack([vcell // (nx * ny), (vcell // nx) % ny, vcell % nx], axis=1)
    return Assignment(point_index, coords.astype(np.int32).reshape(-1, 3), num_points)


def points_to_voxels(
    points: np.ndarray, cfg: VoxelConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """spconv's generator output: voxels [V, max_points, F] (zero padded), coords, num_points."""
    pts = _as_points(points)
    a = assign(pts, cfg)
    voxels = np.zeros(a.point_index.shape + (pts.shape[1],), dtype=np.float32)
    real = a.point_index >= 0
    voxels[real] = pts[a.point_index[real]]
    return voxels, a.coords, a.num_points


def _sum_slots(values: np.ndarray) -> np.ndarray:
    """Sum over axis 1 in slot order from +0.0: ``((0 + v0) + v1) + ...`` in float32."""
    total = np.zeros((values.shape[0],) + values.shape[2:], dtype=np.float32)
    for k in range(values.shape[1]):
        total = total + values[:, k]
    return total


def decorate_pillars(
    voxels: np.ndarray,
    coords: np.ndarray,
    num_points: np.ndarray,
    cfg: VoxelConfig,
    decoration: PillarDecoration = PillarDecoration(),
) -> np.ndarray:
    """PillarVFE's point decoration of zero-padded voxels: features [V, max_points, C]."""
    g = grid_of(cfg)
    n = num_points.astype(np.float32)[:, None]
    mean = _sum_slots(voxels[:, :, :3]) / n
    cell_xyz = coords[:, ::-1].astype(np.float32)
    center = cell_xyz * g.voxel + g.center_offset  # two float32 roundings, no FMA
    # Decorate the real points only (most slots are padding) and scatter them into zeros.
    real = np.arange(voxels.shape[1])[None, :] < num_points[:, None]
    pillar = np.nonzero(real)[0]
    pts = voxels[real]
    xyz = pts[:, :3]
    parts = [pts if decoration.use_absolute_xyz else pts[:, 3:], xyz - mean[pillar], xyz - center[pillar]]
    if decoration.with_distance:
        x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        parts.append(np.sqrt((x * x + y * y) + z * z)[:, None])
    decorated = np.concatenate(parts, axis=-1).astype(np.float32, copy=False)
    features = np.zeros(voxels.shape[:2] + decorated.shape[1:], np.float32)
    features[real] = decorated
    return features


def mean_vfe(voxels: np.ndarray, num_points: np.ndarray) -> np.ndarray:
    """MeanVFE: per-voxel mean of the real points' features, [V, F]."""
    n = np.maximum(num_points, 1).astype(np.float32)[:, None]
    return _sum_slots(voxels) / n


def pillarize(
    points: np.ndarray,
    cfg: VoxelConfig,
    decoration: PillarDecoration = PillarDecoration(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PointPillars input: features [P, max_points, C], coords [P, 3] (z, y, x), num_points."""
    voxels, coords, num_points = points_to_voxels(points, cfg)
    return decorate_pillars(voxels, coords, num_points, cfg, decoration), coords, num_points


def voxelize_mean(
    points: np.ndarray, cfg: VoxelConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse-backbone input: mean features [V, F], coords [V, 3] (z, y, x), num_points."""
    voxels, coords, num_points = points_to_voxels(points, cfg)
    return mean_vfe(voxels, num_points), coords, num_points
