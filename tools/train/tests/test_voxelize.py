"""Tests of the numpy voxelizer reference (tools/train/voxelize.py).

The vectorised assignment is checked against a literal, point-by-point statement of
spconv's first-come rule, the geometry and decoration against hand-computed values, and --
when spconv happens to be installed (it is not a requirement) -- against spconv itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import voxelize as vx  # noqa: E402

F32 = np.float32


def cloud(rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def sequential_assign(points: np.ndarray, cfg: vx.VoxelConfig):
    """spconv's rule one point at a time: the oracle of the vectorised ``assign``."""
    g = vx.grid_of(cfg)
    nx, ny, nz = g.dims
    table: dict[tuple[int, int, int], int] = {}
    coords, members = [], []
    for i, p in enumerate(points):
        x, y = p[0], p[1]
        if not (g.min[0] <= x <= g.max_xy[0] and g.min[1] <= y <= g.max_xy[1]):
            continue
        cell = []
        for a, n in enumerate((nx, ny, nz)):
            q = (p[a] - g.min[a]) / g.voxel[a]  # float32 scalars stay float32
            if not (q >= 0 and q < n):
                break
            cell.append(int(np.floor(q)))
        else:
            key = (cell[2], cell[1], cell[0])
            if key not in table:
                if len(coords) == cfg.max_voxels:
                    continue
                table[key] = len(coords)
                coords.append(key)
                members.append([])
            kept = members[table[key]]
            if len(kept) < cfg.max_points_per_voxel:
                kept.append(i)
    return coords, members


def random_cloud(rng: np.random.Generator, n: int, lo, hi) -> np.ndarray:
    pts = rng.uniform(lo, hi, size=(n, 4)).astype(np.float32)
    pts[:, 3] = rng.uniform(0, 1, size=n)
    return pts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_assign_is_the_sequential_rule(seed):
    rng = np.random.default_rng(seed)
    # Clustered points so both limits bind; some outside the range.
    pts = random_cloud(rng, 3000, [-1, -40.5, -3.5, 0], [3, -37.5, 1.5, 1])
    cfg = vx.VoxelConfig((0.0, -39.68, -3.0, 69.12, 39.68, 1.0), (0.16, 0.16, 4.0), 8, 120)
    coords, members = sequential_assign(pts, cfg)
    a = vx.assign(pts, cfg)
    assert len(coords) == cfg.max_voxels
    assert a.coords.tolist() == [list(c) for c in coords]
    assert a.num_points.tolist() == [len(m) for m in members]
    assert max(a.num_points) == cfg.max_points_per_voxel
    for v, m in enumerate(members):
        assert a.point_index[v, : len(m)].tolist() == m
        assert np.all(a.point_index[v, len(m) :] == -1)


def test_sequential_rule_matches_in_voxel_mode():
    rng = np.random.default_rng(5)
    pts = random_cloud(rng, 2000, [0, -1, -3, 0], [1, 1, -2, 1])
    cfg = vx.VoxelConfig.kitti_second("train")
    cfg = vx.VoxelConfig(cfg.point_cloud_range, cfg.voxel_size, 5, 300)
    coords, members = sequential_assign(pts, cfg)
    a = vx.assign(pts, cfg)
    assert a.coords.tolist() == [list(c) for c in coords]
    assert a.num_points.tolist() == [len(m) for m in members]


def test_kitti_grid():
    g = vx.grid_of(vx.VoxelConfig.kitti_pointpillars("train"))
    assert g.dims == (432, 496, 1)
    assert g.center_offset.tolist() == [F32(0.08), F32(-39.6), F32(-1.0)]
    assert vx.grid_of(vx.VoxelConfig.kitti_second()).dims == (1408, 1600, 40)
    # NumPy 2 adds voxel/2 + f32(min) in float32; the presets give the same offsets.
    for cfg in (vx.VoxelConfig.kitti_pointpillars(), vx.VoxelConfig.kitti_second()):
        g = vx.grid_of(cfg)
        f32_sum = [F32(F32(cfg.voxel_size[a] / 2) + g.min[a]) for a in range(3)]
        assert g.center_offset.tolist() == f32_sum


def test_range_boundaries():
    cfg = vx.VoxelConfig.kitti_pointpillars()
    pts = cloud(
        [
            [0.0, 0.0, -3.0, 0.1],  # range minimum in x and z: cell 0
            [69.12, 0.0, 0.0, 0.2],  # x == x_max: q = 432.00003, cell 432 = n, dropped
            [np.nextafter(F32(69.12), F32(0)), 0.0, 0.0, 0.3],  # just below: cell 431
            [10.0, 39.68, 0.0, 0.4],  # y == y_max: dropped
            [10.0, -39.68, 0.0, 0.5],  # y == y_min: cell 0
            [10.0, 0.0, 1.0, 0.6],  # z == z_max: dropped
            [-1e-7, 0.0, 0.0, 0.7],  # x just below x_min: dropped
            [10.0, -39.52, 0.0, 0.8],  # one voxel above y_min, floors to cell 0 in f32
            [0.16, 0.0, 0.0, 0.9],  # x on a voxel boundary: cell 1
            [np.nan, 0.0, 0.0, 1.0],
            [np.inf, 0.0, 0.0, 1.0],
        ]
    )
    _, coords, num_points = vx.points_to_voxels(pts, cfg)
    assert coords.tolist() == [[0, 248, 0], [0, 248, 431], [0, 0, 62], [0, 248, 1]]
    assert num_points.tolist() == [1, 1, 2, 1]


def test_pillar_decoration_by_hand():
    cfg = vx.VoxelConfig.kitti_pointpillars()
    pts = cloud([[1.0, 2.0, -1.0, 0.5], [1.05, 2.05, 0.0, 0.25], [50.0, 0.0, 0.0, 0.0]])
    deco = vx.PillarDecoration(use_absolute_xyz=True, with_distance=True)
    features, coords, num_points = vx.pillarize(pts, cfg, deco)
    assert features.shape == (2, 32, 11) and features.dtype == np.float32
    assert coords.tolist() == [[0, 260, 6], [0, 248, 312]]
    assert num_points.tolist() == [2, 1]
    mean = [F32(F32(1.0) + F32(1.05)) / F32(2), F32(F32(2.0) + F32(2.05)) / F32(2), F32(-0.5)]
    center = [F32(F32(6) * F32(0.16)) + F32(0.08), F32(F32(260) * F32(0.16)) + F32(-39.6), F32(-1)]
    p = [F32(1.05), F32(2.05), F32(0.0)]
    expect = p + [F32(0.25)] + [p[a] - mean[a] for a in range(3)]
    expect += [p[a] - center[a] for a in range(3)]
    expect += [np.sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2])]
    assert features[0, 1].tolist() == [float(v) for v in expect]
    assert np.all(features[0, 2:] == 0) and np.all(features[1, 1:] == 0)
    assert not np.any(np.signbit(features[0, 2:]))

    no_xyz = vx.pillarize(pts, cfg, vx.PillarDecoration(use_absolute_xyz=False))[0]
    assert no_xyz.shape == (2, 32, 7)
    assert no_xyz[0, 1].tolist() == [float(v) for v in expect[3:10]]


def test_point_limit_keeps_first_points():
    cfg = vx.VoxelConfig.kitti_pointpillars()
    pts = cloud([[5.0, 5.0, 0.0, i / 40] for i in range(40)])
    voxels, _, num_points = vx.points_to_voxels(pts, cfg)
    assert num_points.tolist() == [32]
    assert voxels[0, :, 3].tolist() == [float(F32(i / 40)) for i in range(32)]


def test_mean_vfe_by_hand():
    cfg = vx.VoxelConfig.kitti_second()
    pts = cloud([[1.01, 1.01, 0.01, 0.2], [1.02, 1.02, 0.02, 0.4], [1.03, 1.03, 0.03, 0.9]])
    features, coords, num_points = vx.voxelize_mean(pts, cfg)
    assert num_points.tolist() == [3]
    assert coords.tolist() == [[30, 820, 20]]
    col = lambda c: F32(F32(F32(pts[0, c]) + pts[1, c]) + pts[2, c]) / F32(3)  # noqa: E731
    assert features[0].tolist() == [float(col(c)) for c in range(4)]


def test_empty_cloud():
    cfg = vx.VoxelConfig.kitti_pointpillars()
    features, coords, num_points = vx.pillarize(np.zeros((0, 4), np.float32), cfg)
    assert features.shape == (0, 32, 10) and coords.shape == (0, 3) and num_points.shape == (0,)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        vx.assign(np.zeros((3, 4), np.float64), vx.VoxelConfig.kitti_pointpillars())
    with pytest.raises(ValueError):
        vx.grid_of(vx.VoxelConfig((0, 0, 0, 1, 1, 1), (0.0, 1, 1), 1, 1))


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_spconv_when_installed(seed):
    spconv_utils = pytest.importorskip("spconv.utils")
    tv = pytest.importorskip("cumm.tensorview")
    rng = np.random.default_rng(seed)
    pts = np.concatenate(
        [
            random_cloud(rng, 4000, [-2, -42, -4, 0], [72, 42, 2, 1]),
            random_cloud(rng, 2000, [10, 0, -2, 0], [11, 1, 0, 1]),
        ]
    )
    for cfg in (
        vx.VoxelConfig.kitti_pointpillars("train"),
        vx.VoxelConfig((0.0, -39.68, -3.0, 69.12, 39.68, 1.0), (0.16, 0.16, 4.0), 16, 500),
        vx.VoxelConfig((0.0, -40.0, -3.0, 70.4, 40.0, 1.0), (0.05, 0.05, 0.1), 5, 1500),
    ):
        gen = spconv_utils.Point2VoxelCPU3d(
            vsize_xyz=list(cfg.voxel_size),
            coors_range_xyz=list(cfg.point_cloud_range),
            num_point_features=4,
            max_num_points_per_voxel=cfg.max_points_per_voxel,
            max_num_voxels=cfg.max_voxels,
        )
        # OpenPCDet masks x/y to the range before spconv sees the points.
        g = vx.grid_of(cfg)
        x, y = pts[:, 0], pts[:, 1]
        mask = (x >= g.min[0]) & (x <= g.max_xy[0]) & (y >= g.min[1]) & (y <= g.max_xy[1])
        # tv.from_numpy does not own the array: keep it alive while spconv reads it.
        masked = np.ascontiguousarray(pts[mask])
        out = gen.point_to_voxel(tv.from_numpy(masked))
        voxels, coords, num_points = (t.numpy() for t in out)
        ours = vx.points_to_voxels(pts, cfg)
        np.testing.assert_array_equal(ours[1], coords)
        np.testing.assert_array_equal(ours[2], num_points)
        np.testing.assert_array_equal(ours[0], voxels)
