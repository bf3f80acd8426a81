//! Which objects count, per class and difficulty: the KITTI benchmark's rules for ground
//! truth (2D box height, occlusion, truncation, similar classes) and detections (2D box
//! height only), plus the `DontCare` regions.

use lidarq_data::ObjectLabel;

use super::{Class, Difficulty};

/// A ground-truth object that must be found.
pub(crate) const VALID: i8 = 0;
/// An object that may be matched without reward or penalty (a similar class, too hard for
/// the difficulty; for detections: too small in the image).
pub(crate) const IGNORED: i8 = 1;
/// An object of another class: invisible to this evaluation.
pub(crate) const OTHER: i8 = -1;

/// Minimum 2D box height (px) per difficulty: ground truth must be strictly taller,
/// detections at least this tall.
const MIN_HEIGHT: [f64; 3] = [40.0, 25.0, 25.0];
/// Maximum occlusion level per difficulty.
const MAX_OCCLUSION: [i32; 3] = [0, 1, 2];
/// Maximum truncation per difficulty.
const MAX_TRUNCATION: [f64; 3] = [0.15, 0.3, 0.5];

/// A label with the numbers the filters compare as the reference sees them: it parses the
/// text files as f64, we hold f32, and a boundary value such as a truncation of `0.15` or a
/// 40.00 px box must compare as its decimal text does.
pub(crate) struct Decimal<'a> {
    pub label: &'a ObjectLabel,
    /// `[left, top, right, bottom]` as written.
    pub bbox: [f64; 4],
    pub truncated: f64,
}

impl<'a> Decimal<'a> {
    pub fn of(label: &'a ObjectLabel) -> Self {
        Self {
            label,
            bbox: label.bbox.map(as_written),
            truncated: as_written(label.truncated),
        }
    }
}

/// The f64 of the shortest decimal that reads back as `x`: the value a label file written
/// with up to 7 significant digits holds, which the reference parses as f64.
pub(crate) fn as_written(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// Role of a ground-truth object. Note the reference's asymmetry, kept here: a ground truth
/// of exactly the minimum height is too small (`<=`), a detection of that height is not (`<`).
pub(crate) fn gt_role(gt: &Decimal<'_>, class: Class, difficulty: Difficulty) -> i8 {
    let d = difficulty as usize;
    let height = gt.bbox[3] - gt.bbox[1];
    let too_hard = gt.label.occluded > MAX_OCCLUSION[d]
        || gt.truncated > MAX_TRUNCATION[d]
        || height <= MIN_HEIGHT[d];
    let gt = gt.label;
    if gt.kind.eq_ignore_ascii_case(class.name()) {
        if too_hard { IGNORED } else { VALID }
    } else if class
        .similar()
        .is_some_and(|s| gt.kind.eq_ignore_ascii_case(s))
    {
        IGNORED
    } else {
        OTHER
    }
}

/// Role of a detection. A detection smaller than the minimum height is ignored whatever its
/// class — the reference does so too, so a small detection of another class can absorb a
/// ground truth of this class (neither true positive nor miss).
pub(crate) fn dt_role(dt: &Decimal<'_>, class: Class, difficulty: Difficulty) -> i8 {
    let height = (dt.bbox[3] - dt.bbox[1]).abs();
    if height < MIN_HEIGHT[difficulty as usize] {
        IGNORED
    } else if dt.label.kind.eq_ignore_ascii_case(class.name()) {
        VALID
    } else {
        OTHER
    }
}

/// Whether a ground-truth record marks a `DontCare` region (the name is matched exactly, as
/// in the reference).
pub(crate) fn is_dontcare(gt: &ObjectLabel) -> bool {
    gt.kind == "DontCare"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kitti::Difficulty::{Easy, Hard, Moderate};

    fn gt(kind: &str, height: f32, occluded: i32, truncated: f32) -> ObjectLabel {
        ObjectLabel {
            kind: kind.into(),
            truncated,
            occluded,
            alpha: 0.0,
            bbox: [100.0, 200.0, 150.0, 200.0 + height],
            hwl: [1.5, 1.6, 4.0],
            location: [0.0, 1.7, 10.0],
            rotation_y: 0.0,
            score: None,
        }
    }

    fn roles(o: &ObjectLabel) -> [i8; 3] {
        [Easy, Moderate, Hard].map(|d| gt_role(&Decimal::of(o), Class::Car, d))
    }

    #[test]
    fn height_boundaries_are_exclusive_for_ground_truth() {
        assert_eq!(roles(&gt("Car", 40.0, 0, 0.0)), [IGNORED, VALID, VALID]);
        assert_eq!(roles(&gt("Car", 40.5, 0, 0.0)), [VALID, VALID, VALID]);
        assert_eq!(roles(&gt("Car", 25.0, 0, 0.0)), [IGNORED, IGNORED, IGNORED]);
        assert_eq!(roles(&gt("Car", 25.5, 0, 0.0)), [IGNORED, VALID, VALID]);
    }

    #[test]
    fn height_boundaries_are_inclusive_for_detections() {
        let d = |h| {
            [Easy, Moderate, Hard]
                .map(|diff| dt_role(&Decimal::of(&gt("Car", h, 3, 1.0)), Class::Car, diff))
        };
        assert_eq!(d(40.0), [VALID, VALID, VALID]);
        assert_eq!(d(39.5), [IGNORED, VALID, VALID]);
        assert_eq!(d(25.0), [IGNORED, VALID, VALID]);
        assert_eq!(d(24.5), [IGNORED, IGNORED, IGNORED]);
        // Small detections of another class are ignored, large ones are invisible.
        assert_eq!(
            dt_role(&Decimal::of(&gt("Van", 20.0, 0, 0.0)), Class::Car, Hard),
            IGNORED
        );
        assert_eq!(
            dt_role(&Decimal::of(&gt("Van", 50.0, 0, 0.0)), Class::Car, Hard),
            OTHER
        );
    }

    #[test]
    fn boundaries_compare_as_written() {
        // 0.15f32 is 0.15000000596 as f64: it must still pass the easy limit of 0.15.
        assert_eq!(as_written(0.15), 0.15);
        // Edges 100.05 and 140.05: parsed as f64 the height is 40.000000000000014, tall
        // enough for easy; the f32 edges give exactly 40.0, which is not.
        let mut o = gt("Car", 0.0, 0, 0.0);
        o.bbox[1] = 100.05;
        o.bbox[3] = 140.05;
        assert_eq!(o.bbox[3] as f64 - o.bbox[1] as f64, 40.0);
        assert_eq!(gt_role(&Decimal::of(&o), Class::Car, Easy), VALID);
    }

    #[test]
    fn occlusion_boundaries() {
        assert_eq!(roles(&gt("Car", 50.0, 0, 0.0)), [VALID, VALID, VALID]);
        assert_eq!(roles(&gt("Car", 50.0, 1, 0.0)), [IGNORED, VALID, VALID]);
        assert_eq!(roles(&gt("Car", 50.0, 2, 0.0)), [IGNORED, IGNORED, VALID]);
        assert_eq!(roles(&gt("Car", 50.0, 3, 0.0)), [IGNORED, IGNORED, IGNORED]);
    }

    #[test]
    fn truncation_boundaries_are_inclusive() {
        assert_eq!(roles(&gt("Car", 50.0, 0, 0.15)), [VALID, VALID, VALID]);
        assert_eq!(roles(&gt("Car", 50.0, 0, 0.16)), [IGNORED, VALID, VALID]);
        assert_eq!(roles(&gt("Car", 50.0, 0, 0.3)), [IGNORED, VALID, VALID]);
        assert_eq!(roles(&gt("Car", 50.0, 0, 0.31)), [IGNORED, IGNORED, VALID]);
        assert_eq!(roles(&gt("Car", 50.0, 0, 0.5)), [IGNORED, IGNORED, VALID]);
        assert_eq!(
            roles(&gt("Car", 50.0, 0, 0.51)),
            [IGNORED, IGNORED, IGNORED]
        );
    }

    #[test]
    fn similar_and_other_classes() {
        assert_eq!(roles(&gt("Van", 50.0, 0, 0.0)), [IGNORED; 3]);
        assert_eq!(roles(&gt("Truck", 50.0, 0, 0.0)), [OTHER; 3]);
        assert_eq!(roles(&gt("DontCare", 50.0, -1, -1.0)), [OTHER; 3]);
        assert_eq!(
            gt_role(
                &Decimal::of(&gt("Person_sitting", 50.0, 0, 0.0)),
                Class::Pedestrian,
                Easy
            ),
            IGNORED
        );
        assert_eq!(
            gt_role(
                &Decimal::of(&gt("Person_sitting", 50.0, 0, 0.0)),
                Class::Cyclist,
                Easy
            ),
            OTHER
        );
        assert_eq!(
            gt_role(&Decimal::of(&gt("car", 50.0, 0, 0.0)), Class::Car, Easy),
            VALID
        );
        assert!(is_dontcare(&gt("DontCare", 50.0, -1, -1.0)));
        assert!(!is_dontcare(&gt("dontcare", 50.0, -1, -1.0)));
    }
}
