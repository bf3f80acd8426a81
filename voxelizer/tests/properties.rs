//! Properties of the voxelizer: boundary semantics, the first-come rule against a naive
//! model, empty clouds, one full pillar, NaN points, and thread-count invariance.

use std::collections::HashMap;

use lidarq_data::PointCloud;
use lidarq_voxelizer::{PillarBatch, PillarDecoration, Split, VoxelBatch, VoxelConfig, Voxelizer};
use proptest::prelude::*;

fn kitti() -> VoxelConfig {
    VoxelConfig::kitti_pointpillars(Split::Test)
}

fn cloud_of(points: &[[f32; 4]]) -> PointCloud {
    let mut cloud = PointCloud::with_capacity(points.len());
    for p in points {
        cloud.push(p[0], p[1], p[2], p[3]);
    }
    cloud
}

fn pillarize(cfg: VoxelConfig, cloud: &PointCloud, decoration: PillarDecoration) -> PillarBatch {
    let mut batch = PillarBatch::new();
    Voxelizer::new(cfg)
        .unwrap()
        .pillarize(cloud, decoration, &mut batch)
        .unwrap();
    batch
}

/// The first-come rule stated point by point, with a hash map and f64-free arithmetic:
/// per voxel (z, y, x) and its kept point indices, in order of first appearance.
fn naive_assignment(cfg: &VoxelConfig, cloud: &PointCloud) -> Vec<([i32; 3], Vec<usize>)> {
    let r = cfg.point_cloud_range.map(|v| v as f32);
    let s = cfg.voxel_size.map(|v| v as f32);
    let dims: Vec<f32> = (0..3).map(|a| ((r[a + 3] - r[a]) / s[a]).round()).collect();
    let mut index = HashMap::new();
    let mut voxels: Vec<([i32; 3], Vec<usize>)> = Vec::new();
    for i in 0..cloud.len() {
        let p = [cloud.x[i], cloud.y[i], cloud.z[i]];
        if !(p[0] >= r[0] && p[0] <= r[3] && p[1] >= r[1] && p[1] <= r[4]) {
            continue;
        }
        let c: Vec<f32> = (0..3).map(|a| ((p[a] - r[a]) / s[a]).floor()).collect();
        if (0..3).any(|a| !(c[a] >= 0.0 && c[a] < dims[a])) {
            continue;
        }
        let key = [c[2] as i32, c[1] as i32, c[0] as i32];
        let v = match index.get(&key) {
            Some(&v) => v,
            None if voxels.len() == cfg.max_voxels => continue,
            None => {
                index.insert(key, voxels.len());
                voxels.push((key, Vec::new()));
                voxels.len() - 1
            }
        };
        if voxels[v].1.len() < cfg.max_points_per_voxel {
            voxels[v].1.push(i);
        }
    }
    voxels
}

#[test]
fn range_limits_follow_spconv() {
    let just_below_x_max = step_ulps(69.12, -1);
    let cloud = cloud_of(&[
        [0.0, 0.0, -3.0, 0.1],             // range minimum in x and z: cell 0
        [69.12, 0.0, 0.0, 0.2],            // x == x_max: q = 432.00003, dropped
        [just_below_x_max, 0.0, 0.0, 0.3], // cell 431
        [10.0, 39.68, 0.0, 0.4],           // y == y_max: dropped
        [10.0, -39.68, 0.0, 0.5],          // y == y_min: cell 0
        [10.0, 0.0, 1.0, 0.6],             // z == z_max: dropped
        [-1e-7, 0.0, 0.0, 0.7],            // just below x_min: dropped
        [10.0, -39.52, 0.0, 0.8],          // one voxel above y_min, floors to cell 0 in f32
        [0.16, 0.0, 0.0, 0.9],             // on a voxel edge: cell 1
        [f32::NAN, 0.0, 0.0, 1.0],
        [f32::INFINITY, 0.0, 0.0, 1.0],
        [5.0, 0.0, f32::NEG_INFINITY, 1.0],
    ]);
    let batch = pillarize(kitti(), &cloud, PillarDecoration::KITTI);
    assert_eq!(
        batch.coords(),
        [[0, 248, 0], [0, 248, 431], [0, 0, 62], [0, 248, 1]]
    );
    assert_eq!(batch.num_points(), [1, 1, 2, 1]);
}

#[test]
fn empty_cloud_gives_an_empty_batch() {
    let mut voxelizer = Voxelizer::new(kitti()).unwrap();
    let mut batch = PillarBatch::new();
    voxelizer
        .pillarize(&PointCloud::default(), PillarDecoration::KITTI, &mut batch)
        .unwrap();
    assert!(batch.is_empty());
    assert!(batch.features().is_empty() && batch.coords().is_empty());
    assert_eq!(batch.grid_size(), [432, 496, 1]);
    let mut voxels = VoxelBatch::new();
    voxelizer
        .voxelize_mean(&PointCloud::default(), &mut voxels)
        .unwrap();
    assert!(voxels.is_empty() && voxels.features().is_empty());
}

#[test]
fn hand_computed_pillar_features() {
    let cloud = cloud_of(&[[1.0, 2.0, -1.0, 0.5], [1.05, 2.05, 0.0, 0.25]]);
    let decoration = PillarDecoration {
        use_absolute_xyz: true,
        with_distance: true,
    };
    let batch = pillarize(kitti(), &cloud, decoration);
    assert_eq!(batch.coords(), [[0, 260, 6]]);
    let mean = [(1.0f32 + 1.05) / 2.0, (2.0f32 + 2.05) / 2.0, -0.5];
    let center = [6.0f32 * 0.16 + 0.08, 260.0f32 * 0.16 + -39.6, -1.0];
    let p = [1.05f32, 2.05, 0.0];
    let row = &batch.pillar(0)[11..22];
    let mut want = vec![p[0], p[1], p[2], 0.25];
    want.extend((0..3).map(|a| p[a] - mean[a]));
    want.extend((0..3).map(|a| p[a] - center[a]));
    want.push((p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt());
    assert_eq!(row, want.as_slice());
    assert!(batch.pillar(0)[22..].iter().all(|v| v.to_bits() == 0));
}

#[test]
fn mean_voxels_by_hand() {
    let cloud = cloud_of(&[
        [1.01, 1.01, 0.01, 0.2],
        [1.02, 1.02, 0.02, 0.4],
        [1.03, 1.03, 0.03, 0.9],
    ]);
    let mut batch = VoxelBatch::new();
    Voxelizer::new(VoxelConfig::kitti_second(Split::Test))
        .unwrap()
        .voxelize_mean(&cloud, &mut batch)
        .unwrap();
    assert_eq!(batch.coords(), [[30, 820, 20]]);
    assert_eq!(batch.num_points(), [3]);
    let mean = |c: [f32; 3]| (c[0] + c[1] + c[2]) / 3.0;
    assert_eq!(
        batch.features(),
        [
            mean([1.01, 1.02, 1.03]),
            mean([1.01, 1.02, 1.03]),
            mean([0.01, 0.02, 0.03]),
            mean([0.2, 0.4, 0.9])
        ]
    );
}

fn point_in(lo: [f32; 3], hi: [f32; 3]) -> impl Strategy<Value = [f32; 4]> {
    (lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2], 0.0f32..1.0).prop_map(|(x, y, z, i)| [x, y, z, i])
}

/// A point exactly on a voxel edge of the KITTI grid (decimal multiple of 0.16 or its f32
/// neighbours), or on a range limit.
fn edge_point() -> impl Strategy<Value = [f32; 4]> {
    let edge = |lo: f64, size: f64, cells: u32| {
        (0..=cells, -1i32..=1)
            .prop_map(move |(k, ulp)| step_ulps((lo + f64::from(k) * size) as f32, ulp))
    };
    (
        edge(0.0, 0.16, 432),
        edge(-39.68, 0.16, 496),
        prop_oneof![Just(-3.0f32), Just(1.0f32), -3.0f32..1.0],
    )
        .prop_map(|(x, y, z)| [x, y, z, 0.5])
}

/// `v` moved by `ulps` (−1, 0 or 1) representable f32 steps; `v` is finite.
fn step_ulps(v: f32, ulps: i32) -> f32 {
    if ulps == 0 {
        return v;
    }
    if v == 0.0 {
        return f32::from_bits(1).copysign(ulps as f32);
    }
    let away_from_zero = (v > 0.0) == (ulps > 0);
    let bits = v.to_bits();
    f32::from_bits(if away_from_zero { bits + 1 } else { bits - 1 })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Edge points are assigned exactly as the naive first-come model assigns them.
    #[test]
    fn edge_points_follow_the_naive_model(points in prop::collection::vec(edge_point(), 0..300)) {
        let cloud = cloud_of(&points);
        let batch = pillarize(kitti(), &cloud, PillarDecoration::KITTI);
        let naive = naive_assignment(&kitti(), &cloud);
        let coords: Vec<[i32; 3]> = naive.iter().map(|v| v.0).collect();
        let counts: Vec<u32> = naive.iter().map(|v| v.1.len() as u32).collect();
        prop_assert_eq!(batch.coords(), coords.as_slice());
        prop_assert_eq!(batch.num_points(), counts.as_slice());
    }

    /// With small limits that bind, the kept points are the naive model's, in its order.
    #[test]
    fn limits_keep_the_first_points(
        points in prop::collection::vec(point_in([-0.5, -1.0, -3.5], [1.5, 1.0, 1.5]), 0..400),
        max_points in 1usize..6,
        max_voxels in 1usize..40,
    ) {
        let mut cfg = kitti();
        cfg.max_points_per_voxel = max_points;
        cfg.max_voxels = max_voxels;
        let cloud = cloud_of(&points);
        let batch = pillarize(cfg.clone(), &cloud, PillarDecoration::KITTI);
        let naive = naive_assignment(&cfg, &cloud);
        prop_assert_eq!(batch.len(), naive.len());
        for (p, (coord, kept)) in naive.iter().enumerate() {
            prop_assert_eq!(batch.coords()[p], *coord);
            prop_assert_eq!(batch.num_points()[p] as usize, kept.len());
            for (slot, &i) in kept.iter().enumerate() {
                let row = &batch.pillar(p)[slot * 10..slot * 10 + 4];
                prop_assert_eq!(row, &[cloud.x[i], cloud.y[i], cloud.z[i], cloud.intensity[i]]);
            }
        }
    }

    /// All points in one pillar: one pillar holding the first 32, whose cluster offsets
    /// sum to about zero and whose centre offsets stay within half a pillar.
    #[test]
    fn one_pillar_holds_the_first_points(
        points in prop::collection::vec(point_in([16.01, 0.01, -2.9], [16.15, 0.15, 0.9]), 1..80),
    ) {
        let cloud = cloud_of(&points);
        let batch = pillarize(kitti(), &cloud, PillarDecoration::KITTI);
        prop_assert_eq!(batch.coords(), &[[0, 248, 100]]);
        let n = points.len().min(32);
        prop_assert_eq!(batch.num_points(), &[n as u32]);
        let block = batch.pillar(0);
        let mut cluster_sum = [0.0f64; 3];
        for (slot, row) in block.chunks_exact(10).take(n).enumerate() {
            prop_assert_eq!(&row[..4], &points[slot][..]);
            for a in 0..3 {
                cluster_sum[a] += f64::from(row[4 + a]);
            }
            prop_assert!(row[7].abs() <= 0.08 + 1e-5 && row[8].abs() <= 0.08 + 1e-5);
            prop_assert!(row[9].abs() <= 2.0 + 1e-5);
        }
        // Σ(x − x̄) is 0 up to the f32 rounding of the running sum: n additions of
        // magnitude ≤ Σ|x|, each within one epsilon.
        for (a, s) in cluster_sum.into_iter().enumerate() {
            let magnitude: f64 = points[..n].iter().map(|p| f64::from(p[a].abs())).sum();
            let tolerance = n as f64 * magnitude * f64::from(f32::EPSILON);
            prop_assert!(s.abs() <= tolerance, "axis {}: offsets sum to {} > {}", a, s, tolerance);
        }
        prop_assert!(block[n * 10..].iter().all(|v| v.to_bits() == 0));
    }

    /// NaN points (normally dropped upstream) change nothing: the batch equals the one of
    /// the cloud without them.
    #[test]
    fn nan_points_are_dropped(
        points in prop::collection::vec(point_in([-1.0, -3.0, -3.5], [6.0, 3.0, 1.5]), 0..200),
        nan_at in prop::collection::vec((0usize..200, 0usize..3), 1..20),
    ) {
        let mut with_nan = points.clone();
        for &(at, axis) in &nan_at {
            let mut p = [1.0, 1.0, -1.0, 0.5];
            p[axis] = f32::NAN;
            with_nan.insert(at.min(with_nan.len()), p);
        }
        let deco = PillarDecoration { use_absolute_xyz: true, with_distance: true };
        let clean = pillarize(kitti(), &cloud_of(&points), deco);
        let dirty = pillarize(kitti(), &cloud_of(&with_nan), deco);
        prop_assert_eq!(clean.coords(), dirty.coords());
        prop_assert_eq!(clean.num_points(), dirty.num_points());
        prop_assert_eq!(bits(clean.features()), bits(dirty.features()));
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// A seeded 60k-point cloud spread over the whole range (and beyond it).
fn wide_cloud() -> PointCloud {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
    let mut cloud = PointCloud::with_capacity(60_000);
    for _ in 0..60_000 {
        let [x, y, z, i]: [f32; 4] = rng.random();
        cloud.push(75.0 * x - 3.0, 84.0 * y - 42.0, 5.0 * z - 3.5, i);
    }
    cloud
}

#[test]
fn output_is_identical_for_every_thread_count() {
    let cloud = wide_cloud();
    let deco = PillarDecoration {
        use_absolute_xyz: true,
        with_distance: true,
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut pillars = PillarBatch::new();
            let mut train = Voxelizer::new(VoxelConfig::kitti_pointpillars(Split::Train)).unwrap();
            train.pillarize(&cloud, deco, &mut pillars).unwrap();
            let mut voxels = VoxelBatch::new();
            let mut second = Voxelizer::new(VoxelConfig::kitti_second(Split::Train)).unwrap();
            second.voxelize_mean(&cloud, &mut voxels).unwrap();
            (pillars, voxels)
        })
    };
    let (pillars, voxels) = run(1);
    assert_eq!(pillars.len(), 16000, "the train pillar limit binds");
    assert_eq!(voxels.len(), 16000, "the train voxel limit binds");
    for threads in [2, 3, 4] {
        let (p, v) = run(threads);
        assert_eq!(p.coords(), pillars.coords());
        assert_eq!(p.num_points(), pillars.num_points());
        assert_eq!(
            bits(p.features()),
            bits(pillars.features()),
            "{threads} threads"
        );
        assert_eq!(v.coords(), voxels.coords());
        assert_eq!(
            bits(v.features()),
            bits(voxels.features()),
            "{threads} threads"
        );
    }
}

#[test]
fn reused_buffers_give_fresh_results() {
    let big = wide_cloud();
    let small = cloud_of(&[[5.0, 5.0, 0.0, 0.5], [5.01, 5.01, -1.0, 0.25]]);
    let mut voxelizer = Voxelizer::new(kitti()).unwrap();
    let mut batch = PillarBatch::new();
    voxelizer
        .pillarize(&big, PillarDecoration::KITTI, &mut batch)
        .unwrap();
    voxelizer
        .pillarize(&small, PillarDecoration::KITTI, &mut batch)
        .unwrap();
    assert_eq!(batch, pillarize(kitti(), &small, PillarDecoration::KITTI));
}

fn decoration() -> impl Strategy<Value = PillarDecoration> {
    (any::<bool>(), any::<bool>()).prop_map(|(use_absolute_xyz, with_distance)| PillarDecoration {
        use_absolute_xyz,
        with_distance,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A batch reused across frames of different sizes, pillar counts and layouts holds
    /// exactly what a fresh batch would (stale slots of earlier frames are cleared).
    #[test]
    fn reused_batches_equal_fresh_ones(
        frames in prop::collection::vec(
            (prop::collection::vec(point_in([0.0, -0.5, -3.0], [1.0, 0.5, 1.0]), 0..300), decoration()),
            1..5,
        ),
    ) {
        let mut voxelizer = Voxelizer::new(kitti()).unwrap();
        let mut batch = PillarBatch::new();
        for (points, deco) in &frames {
            let cloud = cloud_of(points);
            voxelizer.pillarize(&cloud, *deco, &mut batch).unwrap();
            let fresh = pillarize(kitti(), &cloud, *deco);
            prop_assert_eq!(batch.coords(), fresh.coords());
            prop_assert_eq!(batch.num_points(), fresh.num_points());
            prop_assert_eq!(bits(batch.features()), bits(fresh.features()));
        }
    }
}
