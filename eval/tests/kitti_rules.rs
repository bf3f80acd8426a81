//! One fixture per KITTI evaluation rule, with values derived by hand.
//!
//! Most fixtures use 41 ground truths: with fewer, the reference's threshold sampling caps
//! AP (see `few_ground_truths_cap_ap_by_sampling`), which would hide the rule under test.

use lidarq_data::ObjectLabel;
use lidarq_eval::kitti::{
    Class, Difficulty, Evaluation, Frame, Metric, PointRange, RecallPoints, evaluate,
    evaluate_by_points,
};

const R: [RecallPoints; 2] = [RecallPoints::R11, RecallPoints::R40];

/// A fully visible object `i` of a frame: 50 px tall, 2D boxes and 3D boxes side by side
/// without overlap, turned by `ry`.
fn object(kind: &str, i: usize, ry: f32) -> ObjectLabel {
    let x0 = 60.0 * i as f32;
    ObjectLabel {
        kind: kind.into(),
        truncated: 0.0,
        occluded: 0,
        alpha: ry - 0.1,
        bbox: [x0, 100.0, x0 + 50.0, 150.0],
        hwl: [1.5, 1.6, 4.0],
        location: [8.0 * i as f32, 1.7, 20.0],
        rotation_y: ry,
        score: None,
    }
}

fn scored(mut o: ObjectLabel, score: f32) -> ObjectLabel {
    o.score = Some(score);
    o
}

fn frame(gt: Vec<ObjectLabel>, dt: Vec<ObjectLabel>) -> Frame {
    Frame {
        gt,
        dt,
        ..Frame::default()
    }
}

/// `n` frames with one car each, detected exactly with score 0.5.
fn detected_cars(n: usize) -> Vec<Frame> {
    (0..n)
        .map(|k| {
            let car = object("Car", 0, k as f32 * 0.37 - 3.0);
            frame(vec![car.clone()], vec![scored(car, 0.5)])
        })
        .collect()
}

fn ap(
    e: &Evaluation,
    metric: Metric,
    class: Class,
    difficulty: Difficulty,
    points: RecallPoints,
) -> f64 {
    e.curve(metric, class, difficulty)
        .and_then(|c| c.ap(points))
        .unwrap()
}

fn assert_ap(e: &Evaluation, metrics: &[Metric], expected: f64) {
    for &m in metrics {
        for d in Difficulty::ALL {
            for p in R {
                let got = ap(e, m, Class::Car, d, p);
                assert!(
                    (got - expected).abs() < 1e-9,
                    "{m:?} {d:?} {p:?}: {got} != {expected}"
                );
            }
        }
    }
}

#[test]
fn perfect_predictions_score_100_everywhere() {
    // Ground truth as predictions, every class, turned boxes (the reference's rotated IoU can
    // lose a corner of identical turned boxes; exact clipping does not), with a Van and a
    // DontCare region copied into the predictions too.
    let frames: Vec<Frame> = (0..45)
        .map(|k| {
            let ry = k as f32 * 0.29 - 3.1;
            let mut gt = vec![
                object("Car", 0, ry),
                object("Pedestrian", 1, -ry),
                object("Cyclist", 2, ry + 0.5),
            ];
            gt.push(object("Van", 3, ry));
            let mut dc = object("DontCare", 4, -10.0);
            dc.hwl = [-1.0; 3];
            dc.location = [-1000.0; 3];
            gt.push(dc);
            let dt = gt.iter().map(|o| scored(o.clone(), 1.0)).collect();
            frame(gt, dt)
        })
        .collect();
    let e = evaluate(&frames);
    assert!(e.with_aos);
    for m in Metric::ALL {
        for c in Class::ALL {
            for d in Difficulty::ALL {
                let curve = e.curve(m, c, d).unwrap();
                assert_eq!(curve.num_gt, 45);
                for p in R {
                    assert_eq!(curve.ap(p), Some(100.0), "{m:?} {c:?} {d:?} {p:?}");
                }
            }
        }
        let image = e
            .curve(Metric::Image, Class::Car, Difficulty::Easy)
            .unwrap();
        assert_eq!(image.aos_ap(RecallPoints::R40), Some(100.0));
    }
}

#[test]
fn one_false_positive_above_the_first_true_positive() {
    // 41 true positives at 0.5 and one false positive at 0.99: at the k-th threshold the
    // precision is (k + 1) / (k + 2), increasing, so every interpolated sample is 41/42.
    let mut frames = detected_cars(41);
    frames[0].dt.push(scored(object("Car", 5, 0.0), 0.99));
    let e = evaluate(&frames);
    assert_ap(&e, &Metric::ALL, 41.0 / 42.0 * 100.0);
}

#[test]
fn a_false_positive_below_every_true_positive_costs_nothing() {
    let mut frames = detected_cars(41);
    frames[3].dt.push(scored(object("Car", 5, 0.0), 0.1));
    assert_ap(&evaluate(&frames), &Metric::ALL, 100.0);
}

#[test]
fn shifted_box_crosses_the_car_threshold() {
    // Length 4 m along camera x (ry = 0), shifted by s along it: IoU = (4 - s) / (4 + s) in
    // BEV and 3D (same height). 0.7 is crossed at s = 1.2 / 1.7 = 0.7059.
    let run = |s: f32| {
        let frames: Vec<Frame> = (0..41)
            .map(|_| {
                let car = object("Car", 0, 0.0);
                let mut det = scored(car.clone(), 0.5);
                det.location[0] += s;
                frame(vec![car], vec![det])
            })
            .collect();
        evaluate(&frames)
    };
    let inside = run(0.69); // IoU 0.7058
    assert_ap(&inside, &Metric::ALL, 100.0);
    let outside = run(0.72); // IoU 0.6949
    assert_ap(&outside, &[Metric::Bev, Metric::Box3d], 0.0);
    assert_ap(&outside, &[Metric::Image], 100.0);
}

#[test]
fn difficulty_boundaries() {
    // Per frame, cars of 2D height 40, 40.5, 25, 25.5 (visible, untruncated), then 50 px
    // cars occluded 1 and 2, and truncated 0.3 and 0.5, all detected exactly.
    let frames: Vec<Frame> = (0..41)
        .map(|_| {
            let mut gt = Vec::new();
            for (i, h) in [40.0, 40.5, 25.0, 25.5].into_iter().enumerate() {
                let mut o = object("Car", i, 0.0);
                o.bbox[3] = o.bbox[1] + h;
                gt.push(o);
            }
            for (i, occ) in [(4, 1), (5, 2)] {
                let mut o = object("Car", i, 0.0);
                o.occluded = occ;
                gt.push(o);
            }
            for (i, t) in [(6, 0.3), (7, 0.5), (8, 0.15)] {
                let mut o = object("Car", i, 0.0);
                o.truncated = t;
                gt.push(o);
            }
            let dt = gt.iter().map(|o| scored(o.clone(), 0.5)).collect();
            frame(gt, dt)
        })
        .collect();
    let e = evaluate(&frames);
    // easy: 40.5 px and truncation 0.15; moderate adds 40 px, 25.5 px, occlusion 1 and
    // truncation 0.3; hard adds occlusion 2 and truncation 0.5. 25 px is never valid.
    for (d, per_frame) in [
        (Difficulty::Easy, 2),
        (Difficulty::Moderate, 6),
        (Difficulty::Hard, 8),
    ] {
        assert_eq!(
            e.curve(Metric::Box3d, Class::Car, d).unwrap().num_gt,
            41 * per_frame,
            "{d:?}"
        );
    }
    // The detections of ignored cars are neither true nor false positives.
    assert_ap(&e, &Metric::ALL, 100.0);
}

#[test]
fn small_detections_are_ignored_not_false() {
    // A 24 px false detection is ignored at every difficulty; at 30 px it is ignored at easy
    // only and costs precision at moderate and hard.
    for (h, easy, harder) in [(24.0, 100.0, 100.0), (30.0, 100.0, 41.0 / 42.0 * 100.0)] {
        let mut frames = detected_cars(41);
        let mut fp = scored(object("Car", 5, 0.0), 0.99);
        fp.bbox[3] = fp.bbox[1] + h;
        frames[0].dt.push(fp);
        let e = evaluate(&frames);
        let easy_ap = ap(
            &e,
            Metric::Box3d,
            Class::Car,
            Difficulty::Easy,
            RecallPoints::R40,
        );
        let hard_ap = ap(
            &e,
            Metric::Box3d,
            Class::Car,
            Difficulty::Hard,
            RecallPoints::R40,
        );
        assert!((easy_ap - easy).abs() < 1e-9, "{h}: {easy_ap}");
        assert!((hard_ap - harder).abs() < 1e-9, "{h}: {hard_ap}");
    }
}

#[test]
fn dontcare_regions_excuse_detections_in_the_image_metric_only() {
    let run = |det_box: [f32; 4]| {
        let mut frames = detected_cars(41);
        let mut dc = object("DontCare", 6, -10.0);
        dc.bbox = [600.0, 100.0, 700.0, 200.0];
        frames[0].gt.push(dc);
        let mut fp = scored(object("Car", 8, 0.0), 0.99);
        fp.bbox = det_box;
        frames[0].dt.push(fp);
        evaluate(&frames)
    };
    // Inside the region: 2D ignores it; BEV and 3D count it (the Python reference applies
    // DontCare to the image metric only).
    let inside = run([610.0, 110.0, 690.0, 190.0]);
    assert_ap(&inside, &[Metric::Image], 100.0);
    assert_ap(&inside, &[Metric::Bev, Metric::Box3d], 41.0 / 42.0 * 100.0);
    // Half inside (coverage 0.5 < 0.7): a false positive in 2D too.
    let half = run([650.0, 110.0, 750.0, 190.0]);
    assert_ap(&half, &Metric::ALL, 41.0 / 42.0 * 100.0);
}

#[test]
fn similar_classes_are_ignored() {
    // A Car detection on a Van, and a Pedestrian detection on a Person_sitting: neither a
    // false positive nor a ground truth to find.
    let mut frames = detected_cars(41);
    frames[0].gt.push(object("Van", 5, 0.0));
    frames[0].dt.push(scored(object("Car", 5, 0.0), 0.99));
    frames[1].gt.push(object("Person_sitting", 6, 0.0));
    frames[1]
        .dt
        .push(scored(object("Pedestrian", 6, 0.0), 0.99));
    let e = evaluate(&frames);
    assert_ap(&e, &Metric::ALL, 100.0);
    assert_eq!(
        e.curve(Metric::Box3d, Class::Pedestrian, Difficulty::Easy)
            .unwrap()
            .num_gt,
        0
    );
    // A Truck is another class: a Car detection on it is a false positive.
    let mut frames = detected_cars(41);
    frames[0].gt.push(object("Truck", 5, 0.0));
    frames[0].dt.push(scored(object("Car", 5, 0.0), 0.99));
    assert_ap(&evaluate(&frames), &Metric::ALL, 41.0 / 42.0 * 100.0);
}

#[test]
fn few_ground_truths_cap_ap_by_sampling() {
    // n thresholds fill precision samples 0..n only: R40 averages samples 1..=40, R11
    // samples 0, 4, ..., 40. A perfect detector on 10 objects gets 9/40 and 3/11.
    let e = evaluate(&detected_cars(10));
    for m in Metric::ALL {
        assert_eq!(
            ap(&e, m, Class::Car, Difficulty::Easy, RecallPoints::R40),
            9.0 / 40.0 * 100.0
        );
        assert_eq!(
            ap(&e, m, Class::Car, Difficulty::Easy, RecallPoints::R11),
            3.0 / 11.0 * 100.0
        );
    }
    // 3 objects: R11 9.09, R40 5.00 — the numbers reported for the reference on a few
    // ground-truth frames used as predictions.
    let e = evaluate(&detected_cars(3));
    assert_eq!(
        ap(
            &e,
            Metric::Bev,
            Class::Car,
            Difficulty::Easy,
            RecallPoints::R40
        ),
        5.0
    );
    assert_eq!(
        ap(
            &e,
            Metric::Bev,
            Class::Car,
            Difficulty::Easy,
            RecallPoints::R11
        ),
        1.0 / 11.0 * 100.0
    );
    // No ground truth at all: no AP rather than the reference's 0.
    assert_eq!(
        e.curve(Metric::Bev, Class::Cyclist, Difficulty::Easy)
            .unwrap()
            .ap(RecallPoints::R40),
        None
    );
}

#[test]
fn breakdown_by_lidar_points() {
    // 41 cars each with 5, 30 and 100 points; the 5-point cars are missed, and one
    // false positive holding 20 points scores above everything.
    let frames: Vec<Frame> = (0..41)
        .map(|k| {
            let gt = vec![
                object("Car", 0, 0.0),
                object("Car", 1, 0.0),
                object("Car", 2, 0.0),
            ];
            let mut dt = vec![scored(gt[1].clone(), 0.5), scored(gt[2].clone(), 0.5)];
            let mut dt_points = vec![30, 100];
            if k == 0 {
                dt.push(scored(object("Car", 5, 0.0), 0.99));
                dt_points.push(20);
            }
            Frame {
                gt,
                dt,
                gt_points: Some(vec![5, 30, 100]),
                dt_points: Some(dt_points),
                ..Frame::default()
            }
        })
        .collect();
    let e = evaluate_by_points(&frames, &PointRange::DEFAULT).unwrap();
    let at = |r: usize| {
        e.find(
            Metric::Box3d,
            Class::Car,
            Difficulty::Hard,
            Some(PointRange::DEFAULT[r]),
        )
        .and_then(|c| c.ap(RecallPoints::R40))
        .unwrap()
    };
    assert_eq!(at(0), 0.0);
    assert!((at(1) - 41.0 / 42.0 * 100.0).abs() < 1e-9);
    assert_eq!(at(2), 100.0);
    assert!(evaluate_by_points(&detected_cars(2), &PointRange::DEFAULT).is_err());
}
