//! Labelled road users: their classes, KITTI-like size distributions and the shapes
//! (made of a few primitives) the ray caster sees. Shapes are built in the object's own
//! frame: x along the heading, z up from the bottom of its box, centered in x and y.

use std::f32::consts::TAU;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::geometry::{Primitive, V3, Yaw};
use super::material::{self, Material};

/// The classes the generator labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectClass {
    /// Passenger car.
    Car,
    /// Van, minibus.
    Van,
    /// Truck.
    Truck,
    /// Pedestrian.
    Pedestrian,
    /// Bicycle with its rider.
    Cyclist,
}

impl ObjectClass {
    /// Every class, in the order statistics are printed.
    pub const ALL: [ObjectClass; 5] = [
        Self::Car,
        Self::Van,
        Self::Truck,
        Self::Pedestrian,
        Self::Cyclist,
    ];

    /// The KITTI label name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Car => "Car",
            Self::Van => "Van",
            Self::Truck => "Truck",
            Self::Pedestrian => "Pedestrian",
            Self::Cyclist => "Cyclist",
        }
    }
}

/// One solid piece of a shape and its surface.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Part {
    pub prim: Primitive,
    pub material: Material,
}

/// A sampled instance: its box size (length, width, height) and its parts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape {
    pub class: ObjectClass,
    pub size: [f32; 3],
    pub parts: Vec<Part>,
}

/// A normal sample clipped to ±2.5 σ (Box–Muller).
pub(crate) fn gauss(rng: &mut ChaCha8Rng, mean: f32, sd: f32) -> f32 {
    let u1: f32 = rng.random_range(1e-7..1.0);
    let u2: f32 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos();
    mean + sd * z.clamp(-2.5, 2.5)
}

fn cuboid(x0: f32, x1: f32, y_half: f32, z0: f32, z1: f32, material: Material) -> Part {
    let prim = Primitive::Box {
        center: V3::new(0.5 * (x0 + x1), 0.0, 0.5 * (z0 + z1)),
        half: V3::new(0.5 * (x1 - x0), y_half, 0.5 * (z1 - z0)),
        yaw: Yaw::new(0.0),
    };
    Part { prim, material }
}

fn blob(center: V3, radii: V3, material: Material) -> Part {
    Part {
        prim: Primitive::Ellipsoid {
            center,
            radii,
            yaw: Yaw::new(0.0),
        },
        material,
    }
}

fn post(x: f32, y: f32, z0: f32, z1: f32, radius: f32, material: Material) -> Part {
    Part {
        prim: Primitive::Cylinder {
            cx: x,
            cy: y,
            z0,
            z1,
            radius,
        },
        material,
    }
}

/// A wheel: a thin disc across the body's y axis, standing on the ground.
fn wheel(x: f32, y: f32, radius: f32, thickness: f32) -> Part {
    blob(
        V3::new(x, y, radius),
        V3::new(radius, thickness, radius),
        material::TIRE,
    )
}

fn wheels(w: f32, radius: f32, xs: &[f32]) -> impl Iterator<Item = Part> + '_ {
    let y = 0.5 * w - 0.12;
    xs.iter()
        .flat_map(move |&x| [wheel(x, y, radius, 0.11), wheel(x, -y, radius, 0.11)])
}

/// Number plates: bright retro-reflective patches front and back.
fn plates(l: f32, z: f32) -> [Part; 2] {
    let plate = |x: f32| {
        cuboid(
            x - 0.01,
            x + 0.01,
            0.26,
            z - 0.06,
            z + 0.06,
            material::PLATE,
        )
    };
    [plate(0.5 * l - 0.01), plate(-0.5 * l + 0.01)]
}

impl Shape {
    /// Samples a size and builds the shape of `class`.
    pub fn sample(class: ObjectClass, rng: &mut ChaCha8Rng) -> Shape {
        match class {
            ObjectClass::Car => car(rng),
            ObjectClass::Van => van(rng),
            ObjectClass::Truck => truck(rng),
            ObjectClass::Pedestrian => pedestrian(rng),
            ObjectClass::Cyclist => cyclist(rng),
        }
    }
}

fn paint(rng: &mut ChaCha8Rng) -> Material {
    material::paint(rng.random())
}

/// Body + cabin with glass sides and a painted roof; sizes around KITTI's Car means
/// (h 1.53 ± 0.14, w 1.63 ± 0.10, l 3.88 ± 0.43).
fn car(rng: &mut ChaCha8Rng) -> Shape {
    let l = gauss(rng, 3.88, 0.43);
    let w = gauss(rng, 1.63, 0.10);
    let h = gauss(rng, 1.53, 0.14);
    let body = paint(rng);
    let r = (0.21 * h).clamp(0.28, 0.36);
    let axle = 0.5 * l - r - 0.22;
    let belt = 0.58 * h;
    let cabin_len = gauss(rng, 0.50, 0.04) * l;
    let cabin_back = -0.5 * l + gauss(rng, 0.22, 0.04) * l;
    let mut parts: Vec<Part> = wheels(w, r, &[axle, -axle]).collect();
    parts.extend([
        cuboid(-0.5 * l, 0.5 * l, 0.5 * w, 0.17 * h, belt, body),
        cuboid(
            cabin_back,
            cabin_back + cabin_len,
            0.43 * w,
            belt,
            0.94 * h,
            material::GLASS,
        ),
        cuboid(
            cabin_back + 0.05 * l,
            cabin_back + cabin_len - 0.05 * l,
            0.42 * w,
            0.94 * h,
            h,
            body,
        ),
    ]);
    parts.extend(plates(l, 0.3 * h));
    Shape {
        class: ObjectClass::Car,
        size: [l, w, h],
        parts,
    }
}

/// A short hood and a tall box body (KITTI Van: h 2.21 ± 0.32, w 1.90 ± 0.14, l 5.08 ± 0.56).
fn van(rng: &mut ChaCha8Rng) -> Shape {
    let l = gauss(rng, 5.08, 0.56);
    let w = gauss(rng, 1.90, 0.14);
    let h = gauss(rng, 2.21, 0.32);
    let body = paint(rng);
    let r = 0.34;
    let axle = 0.5 * l - r - 0.35;
    let nose = 0.5 * l - 0.2 * l;
    let mut parts: Vec<Part> = wheels(w, r, &[axle, -axle]).collect();
    parts.extend([
        cuboid(nose, 0.5 * l, 0.5 * w, 0.15 * h, 0.45 * h, body),
        cuboid(-0.5 * l, nose, 0.5 * w, 0.15 * h, h, body),
        cuboid(
            nose,
            nose + 0.12 * l,
            0.45 * w,
            0.45 * h,
            0.85 * h,
            material::GLASS,
        ),
    ]);
    parts.extend(plates(l, 0.25 * h));
    Shape {
        class: ObjectClass::Van,
        size: [l, w, h],
        parts,
    }
}

/// A cab in front of a cargo box on a chassis (KITTI Truck: h 3.25 ± 0.45, w 2.59 ± 0.23,
/// l 10.1 ± 2.6).
fn truck(rng: &mut ChaCha8Rng) -> Shape {
    let l = gauss(rng, 10.1, 2.6).max(6.0);
    let w = gauss(rng, 2.59, 0.23);
    let h = gauss(rng, 3.25, 0.45).max(2.6);
    let r = 0.5;
    let cab = 2.2;
    let front = 0.5 * l;
    let mut parts: Vec<Part> =
        wheels(w, r, &[front - 1.2, -0.5 * l + 1.4, -0.5 * l + 2.5]).collect();
    parts.extend([
        cuboid(front - cab, front, 0.5 * w, 0.4, 0.78 * h, paint(rng)),
        cuboid(
            front - 0.9,
            front - 0.05,
            0.47 * w,
            0.78 * h * 0.6,
            0.74 * h,
            material::GLASS,
        ),
        cuboid(-0.5 * l, front - cab - 0.3, 0.5 * w, 1.05, h, paint(rng)),
        cuboid(
            -0.5 * l + 0.5,
            front - 0.5,
            0.35 * w,
            0.5,
            1.05,
            material::TIRE,
        ),
    ]);
    Shape {
        class: ObjectClass::Truck,
        size: [l, w, h],
        parts,
    }
}

/// Legs (mid-stride), torso, arms, head (KITTI Pedestrian: h 1.76 ± 0.11, w 0.66 ± 0.14,
/// l 0.84 ± 0.23).
fn pedestrian(rng: &mut ChaCha8Rng) -> Shape {
    let h = gauss(rng, 1.76, 0.11);
    let w = gauss(rng, 0.66, 0.10).max(0.45);
    let l = gauss(rng, 0.84, 0.20).max(0.45);
    let cloth = material::Material {
        reflectivity: rng.random_range(0.1..0.5),
        ..material::CLOTH
    };
    let stride = rng.random_range(0.0..(0.5 * l - 0.09));
    let hip = 0.48 * h;
    let head = 0.105 * h / 1.76;
    let torso = V3::new(0.13, (0.5 * w - 0.1).clamp(0.15, 0.21), 0.17 * h);
    let torso_z = hip + torso.z;
    let arm_y = (torso.y + 0.05).min(0.5 * w - 0.05);
    let swing = 0.5 * stride;
    let parts = vec![
        post(stride, 0.1, 0.0, hip + 0.05, 0.075, cloth),
        post(-stride, -0.1, 0.0, hip + 0.05, 0.075, cloth),
        blob(V3::new(0.0, 0.0, torso_z), torso, cloth),
        blob(
            V3::new(-swing, arm_y, torso_z - 0.05 * h),
            V3::new(0.05, 0.045, 0.16 * h),
            cloth,
        ),
        blob(
            V3::new(swing, -arm_y, torso_z - 0.05 * h),
            V3::new(0.05, 0.045, 0.16 * h),
            cloth,
        ),
        blob(
            V3::new(0.02, 0.0, h - head),
            V3::new(head, head * 0.9, head),
            material::SKIN,
        ),
    ];
    Shape {
        class: ObjectClass::Pedestrian,
        size: [l, w, h],
        parts,
    }
}

/// A bicycle (two wheels, frame, handlebar) and a leaning rider (KITTI Cyclist: h 1.74 ±
/// 0.09, w 0.60 ± 0.13, l 1.76 ± 0.18).
fn cyclist(rng: &mut ChaCha8Rng) -> Shape {
    let l = gauss(rng, 1.76, 0.18);
    let w = gauss(rng, 0.60, 0.10).max(0.45);
    let h = gauss(rng, 1.74, 0.09);
    let s = h / 1.74;
    let r = 0.34;
    let axle = 0.5 * l - r;
    let cloth = material::Material {
        reflectivity: rng.random_range(0.1..0.5),
        ..material::CLOTH
    };
    let bar = (0.5 * w - 0.02).min(0.28);
    let parts = vec![
        blob(V3::new(axle, 0.0, r), V3::new(r, 0.025, r), material::TIRE),
        blob(V3::new(-axle, 0.0, r), V3::new(r, 0.025, r), material::TIRE),
        cuboid(
            -axle + 0.1,
            axle - 0.1,
            0.03,
            0.45,
            0.6,
            material::BIKE_FRAME,
        ),
        cuboid(
            axle - 0.16,
            axle - 0.1,
            bar,
            0.92 * s,
            0.98 * s,
            material::BIKE_FRAME,
        ),
        post(0.0, 0.12, 0.3, 0.9 * s, 0.07, cloth),
        post(0.05, -0.12, 0.25, 0.85 * s, 0.07, cloth),
        blob(
            V3::new(0.05, 0.0, 1.2 * s),
            V3::new(0.24, (0.5 * w - 0.06).min(0.2), 0.3 * s),
            cloth,
        ),
        blob(
            V3::new(0.2, 0.0, h - 0.11 * s),
            V3::new(0.11, 0.1, 0.11 * s),
            material::SKIN,
        ),
    ];
    Shape {
        class: ObjectClass::Cyclist,
        size: [l, w, h],
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Every part of every shape lies inside its label box: points on an object are points
    /// in its box.
    #[test]
    fn parts_stay_inside_the_box() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for class in ObjectClass::ALL {
            for _ in 0..200 {
                let shape = Shape::sample(class, &mut rng);
                let [l, w, h] = shape.size;
                for part in &shape.parts {
                    let b = part.prim.bounds();
                    let (hx, hy) = match part.prim {
                        Primitive::Box { half, .. } => (half.x, half.y),
                        Primitive::Cylinder { radius, .. } => (radius, radius),
                        Primitive::Ellipsoid { radii, .. } => (radii.x, radii.y),
                    };
                    let tol = 1e-4;
                    assert!(b.cx.abs() + hx <= 0.5 * l + tol, "{class:?} x {b:?} l {l}");
                    assert!(b.cy.abs() + hy <= 0.5 * w + tol, "{class:?} y {b:?} w {w}");
                    assert!(b.z0 >= -tol && b.z1 <= h + tol, "{class:?} z {b:?} h {h}");
                }
            }
        }
    }

    #[test]
    fn sizes_follow_kitti_means() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 2000;
        let mut mean = |class| {
            let mut acc = [0.0f32; 3];
            for _ in 0..n {
                let s = Shape::sample(class, &mut rng).size;
                (0..3).for_each(|i| acc[i] += s[i] / n as f32);
            }
            acc
        };
        let car = mean(ObjectClass::Car);
        assert!(
            (car[0] - 3.88).abs() < 0.05
                && (car[1] - 1.63).abs() < 0.02
                && (car[2] - 1.53).abs() < 0.02
        );
        let ped = mean(ObjectClass::Pedestrian);
        assert!((ped[2] - 1.76).abs() < 0.02);
    }
}
