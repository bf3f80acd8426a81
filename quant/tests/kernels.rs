//! Kernels against naive references: every available ISA path, random shapes (odd channel
//! counts, tails, strides, transposed convolutions), extreme values, thread counts.

use lidarq_quant::kernels::{
    AttentionScratch, ConvAlgorithm, ConvShape, Isa, OutputStage, PackedConvF32, PackedConvI8,
    QuantIn, Quantizer, attend, cpu, quantize_i8,
};
use lidarq_quant::{Dequantizer, QuantParams, QuantizedMultiplier, Requantizer};
use proptest::prelude::*;

/// splitmix64: test data from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    /// Mostly uniform, but a third of the values at the ends of the range.
    fn extreme(&mut self, lo: i64, hi: i64) -> i64 {
        match self.next() % 6 {
            0 => lo,
            1 => hi,
            _ => self.range(lo, hi),
        }
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// Calls `f(out_index, in_index, weight_index)` for every term of the layer, in the
/// documented layouts (NHWC activations, OIHW / IOHW weights).
fn for_each_term(s: &ConvShape, mut f: impl FnMut(usize, usize, usize)) {
    let (k, st) = (s.kernel, s.stride);
    for oy in 0..s.out_h() {
        for ox in 0..s.out_w() {
            for oc in 0..s.out_c {
                let o = (oy * s.out_w() + ox) * s.out_c + oc;
                if s.transposed {
                    let (iy, ix, dy, dx) = (oy / st, ox / st, oy % st, ox % st);
                    for ic in 0..s.in_c {
                        f(
                            o,
                            (iy * s.in_w + ix) * s.in_c + ic,
                            ((ic * s.out_c + oc) * k + dy) * k + dx,
                        );
                    }
                    continue;
                }
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = (oy * st + ky) as isize - s.pad as isize;
                        let ix = (ox * st + kx) as isize - s.pad as isize;
                        if iy < 0 || ix < 0 || iy >= s.in_h as isize || ix >= s.in_w as isize {
                            continue;
                        }
                        for ic in 0..s.in_c {
                            let i = (iy as usize * s.in_w + ix as usize) * s.in_c + ic;
                            f(o, i, ((oc * s.in_c + ic) * k + ky) * k + kx);
                        }
                    }
                }
            }
        }
    }
}

/// Exact int8 accumulators `Σ (x − zp) · w`.
fn naive_i8<I: QuantIn + Into<i32>>(s: &ConvShape, x: &[I], w: &[i8], zp: i32) -> Vec<i32> {
    let mut acc = vec![0i64; s.output_len()];
    for_each_term(s, |o, i, wi| {
        acc[o] += i64::from(x[i].into() - zp) * i64::from(w[wi])
    });
    acc.into_iter().map(|a| i32::try_from(a).unwrap()).collect()
}

/// Exact (f64) fp32 convolution and the sum of |terms| (for an error bound).
fn naive_f32(s: &ConvShape, x: &[f32], w: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let mut acc = vec![0f64; s.output_len()];
    let mut mag = vec![0f64; s.output_len()];
    for_each_term(s, |o, i, wi| {
        let t = f64::from(x[i]) * f64::from(w[wi]);
        acc[o] += t;
        mag[o] += t.abs();
    });
    (acc, mag)
}

/// The shapes PointPillars uses, at small sizes: 3×3 s1/s2 p1, 1×1 s1/s2, transposed
/// convolutions with kernel = stride 1, 2, 4, and linear layers.
fn shape_strategy() -> impl Strategy<Value = ConvShape> {
    (1usize..9, 1usize..9, 1usize..21, 1usize..41, 0usize..7).prop_map(|(h, w, ic, oc, kind)| {
        match kind {
            0 => ConvShape::conv(h, w, ic, oc, 3, 1, 1),
            1 => ConvShape::conv(h, w, ic, oc, 3, 2, 1),
            2 => ConvShape::conv(h, w, ic, oc, 1, 1, 0),
            3 => ConvShape::conv(h, w, ic, oc, 1, 2, 0),
            4 => ConvShape::deconv(h, w, ic, oc, [1, 2, 4][h % 3]),
            5 => ConvShape::linear(h * w, ic, oc),
            _ => ConvShape::conv(h, w, ic, oc, 3, 1 + h % 2, 2 % (1 + w % 3)),
        }
    })
}

/// Random per-channel requantization covering multipliers, power-of-two shifts, extreme
/// biases (so `acc + bias` reaches the whole i32 range and wraps), ReLU clamps and
/// int8/uint8 output ranges.
fn requantizer(rng: &mut Rng, channels: usize, unsigned: bool) -> Requantizer {
    let (lo, hi) = if unsigned { (0, 255) } else { (-128, 127) };
    let zp = rng.range(lo, hi) as i32;
    let clamp_min = if rng.next().is_multiple_of(2) {
        zp
    } else {
        lo as i32
    };
    let big_bias = rng.next().is_multiple_of(4);
    let bias: Vec<i32> = (0..channels)
        .map(|_| {
            if big_bias {
                rng.extreme(i32::MIN.into(), i32::MAX.into()) as i32
            } else {
                rng.range(-5000, 5000) as i32
            }
        })
        .collect();
    if rng.next().is_multiple_of(4) {
        let exps = (0..channels).map(|_| rng.extreme(-31, 31) as i32).collect();
        return Requantizer::power_of_two(exps, bias, zp, clamp_min, hi as i32).unwrap();
    }
    let mults = (0..channels)
        .map(|_| match rng.next() % 5 {
            0 => QuantizedMultiplier {
                multiplier: rng.extreme(1 << 30, i32::MAX.into()) as i32,
                shift: rng.extreme(-31, 30) as i32,
            },
            1 => QuantizedMultiplier::ZERO,
            _ => {
                QuantizedMultiplier::from_real(2f64.powf(rng.range(-160, 0) as f64 / 10.0)).unwrap()
            }
        })
        .collect();
    Requantizer::new(mults, bias, zp, clamp_min, hi as i32).unwrap()
}

/// The magnitude Winograd's roundings act on, per output: `¼·Σ_ic Σ_ξ |Aᵀ|·|U_ξ|·|V_ξ|·|A|`
/// with `|U| = |G'||g||G'|ᵀ` and `|V| = |Bᵀ||d||B|` (d the 4×4 patch of the output's tile).
fn winograd_magnitude(s: &ConvShape, x: &[f32], w: &[f32]) -> Vec<f64> {
    const BT: [[f64; 4]; 4] = [
        [1., 0., 1., 0.],
        [0., 1., 1., 0.],
        [0., 1., 1., 0.],
        [0., 1., 0., 1.],
    ];
    const G: [[f64; 3]; 4] = [[2., 0., 0.], [1., 1., 1.], [1., 1., 1.], [0., 0., 2.]];
    const AT: [[f64; 4]; 2] = [[1., 1., 1., 0.], [0., 1., 1., 1.]];
    let mut mag = vec![0f64; s.output_len()];
    for oy in 0..s.out_h() {
        for ox in 0..s.out_w() {
            let (ty, tx) = (oy / 2 * 2, ox / 2 * 2);
            for ic in 0..s.in_c {
                let d = |a: usize, b: usize| {
                    let (iy, ix) = ((ty + a) as isize - 1, (tx + b) as isize - 1);
                    if iy < 0 || ix < 0 || iy >= s.in_h as isize || ix >= s.in_w as isize {
                        0.0
                    } else {
                        f64::from(x[(iy as usize * s.in_w + ix as usize) * s.in_c + ic]).abs()
                    }
                };
                let v = |i: usize, j: usize| sandwich(&BT, &d, i, j);
                for oc in 0..s.out_c {
                    let g = |a: usize, b: usize| {
                        f64::from(w[((oc * s.in_c + ic) * 3 + a) * 3 + b]).abs()
                    };
                    let mut total = 0.0;
                    for (i, &ay) in AT[oy % 2].iter().enumerate() {
                        for (j, &ax) in AT[ox % 2].iter().enumerate() {
                            total += ay * ax * sandwich(&G, &g, i, j) * v(i, j);
                        }
                    }
                    mag[(oy * s.out_w() + ox) * s.out_c + oc] += total / 4.0;
                }
            }
        }
    }
    mag
}

/// `(L·M·Lᵀ)[i][j]` for a matrix `L` and `M` given by its entries.
fn sandwich<const N: usize, const K: usize>(
    l: &[[f64; K]; N],
    m: &impl Fn(usize, usize) -> f64,
    i: usize,
    j: usize,
) -> f64 {
    let mut t = 0.0;
    for (a, &p) in l[i].iter().enumerate() {
        for (b, &q) in l[j].iter().enumerate() {
            t += p * m(a, b) * q;
        }
    }
    t
}

/// Every ISA this CPU has, built and checked; the list proves which paths ran.
fn each_isa<T>(mut build: impl FnMut(Isa) -> T) -> Vec<(Isa, T)> {
    Isa::available()
        .into_iter()
        .map(|isa| (isa, build(isa)))
        .collect()
}

/// The algorithms that compute `shape`: im2col always, Winograd for 3×3 stride 1 pad 1.
fn algorithms(shape: &ConvShape) -> Vec<ConvAlgorithm> {
    ConvAlgorithm::ALL
        .into_iter()
        .filter(|a| a.supports(shape))
        .collect()
}

fn check_int8<I: QuantIn + Into<i32> + FromI64>(
    shape: ConvShape,
    seed: u64,
    unsigned_out: bool,
) -> Vec<Isa> {
    let mut rng = Rng(seed);
    let x: Vec<I> = (0..shape.input_len())
        .map(|_| I::from_i64(rng.extreme(I::MIN.into(), I::MAX.into())))
        .collect();
    let w: Vec<i8> = (0..shape.weights_len())
        .map(|_| rng.extreme(-128, 127) as i8)
        .collect();
    let zp = rng.extreme(I::MIN.into(), I::MAX.into()) as i32;
    let acc = naive_i8(&shape, &x, &w, zp);
    let rq = requantizer(&mut rng, shape.out_c, unsigned_out);
    let want_q: Vec<i32> = acc
        .iter()
        .enumerate()
        .map(|(o, &a)| rq.requantize_i32(o % shape.out_c, a))
        .collect();
    let scales: Vec<f32> = (0..shape.out_c).map(|_| rng.f32().abs() * 1e-3).collect();
    let bias: Vec<i32> = (0..shape.out_c)
        .map(|_| rng.range(-100_000, 100_000) as i32)
        .collect();
    let dq = Dequantizer::new(scales, bias).unwrap();
    let want_f: Vec<f32> = acc
        .iter()
        .enumerate()
        .map(|(o, &a)| dq.dequantize(o % shape.out_c, a))
        .collect();

    let mut ran = Vec::new();
    for algorithm in algorithms(&shape) {
        ran.extend(each_isa(|isa| {
            let stage = OutputStage::Requantize(rq.clone());
            let conv = PackedConvI8::with_algorithm(shape, &w, zp, stage, algorithm)
                .unwrap()
                .with_isa(isa)
                .unwrap();
            assert_eq!((conv.isa(), conv.algorithm()), (isa, algorithm));
            if unsigned_out {
                let mut out = vec![0u8; shape.output_len()];
                conv.run(&x, &mut out).unwrap();
                let got: Vec<i32> = out.iter().map(|&v| v.into()).collect();
                assert_eq!(got, want_q, "{isa} {algorithm:?} {shape:?} u8 out");
            } else {
                let mut out = vec![0i8; shape.output_len()];
                conv.run(&x, &mut out).unwrap();
                let got: Vec<i32> = out.iter().map(|&v| v.into()).collect();
                assert_eq!(got, want_q, "{isa} {algorithm:?} {shape:?} i8 out");
            }
            let stage = OutputStage::Dequantize(dq.clone());
            let conv = PackedConvI8::with_algorithm(shape, &w, zp, stage, algorithm)
                .unwrap()
                .with_isa(isa)
                .unwrap();
            let mut out = vec![0f32; shape.output_len()];
            conv.run(&x, &mut out).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&out),
                bits(&want_f),
                "{isa} {algorithm:?} {shape:?} dequantized"
            );
        }));
    }
    ran.into_iter().map(|(isa, ())| isa).collect()
}

trait FromI64 {
    fn from_i64(v: i64) -> Self;
}
impl FromI64 for u8 {
    fn from_i64(v: i64) -> Self {
        v as u8
    }
}
impl FromI64 for i8 {
    fn from_i64(v: i64) -> Self {
        v as i8
    }
}

fn check_f32(shape: ConvShape, seed: u64, relu: bool) -> Vec<Isa> {
    let mut rng = Rng(seed);
    let x: Vec<f32> = (0..shape.input_len()).map(|_| rng.f32() * 4.0).collect();
    let w: Vec<f32> = (0..shape.weights_len()).map(|_| rng.f32()).collect();
    let bias: Vec<f32> = (0..shape.out_c).map(|_| rng.f32()).collect();
    let (exact, mag) = naive_f32(&shape, &x, &w);
    let depth = (shape.in_c * shape.kernel * shape.kernel) as f64;
    // Winograd's transforms add roundings of their own, bounded by the transformed
    // magnitudes.
    let mut ran = Vec::new();
    for algorithm in algorithms(&shape) {
        let mag = match algorithm {
            ConvAlgorithm::Winograd => winograd_magnitude(&shape, &x, &w),
            ConvAlgorithm::Im2col => mag.clone(),
        };
        let outputs = each_isa(|isa| {
            let conv = PackedConvF32::with_algorithm(shape, &w, Some(&bias), relu, algorithm)
                .unwrap()
                .with_isa(isa)
                .unwrap();
            assert_eq!(conv.algorithm(), algorithm);
            let mut out = vec![f32::NAN; shape.output_len()];
            conv.run(&x, &mut out).unwrap();
            for (o, &got) in out.iter().enumerate() {
                let want = exact[o] + f64::from(bias[o % shape.out_c]);
                let want = if relu { want.max(0.0) } else { want };
                let tol = (depth + 2.0) * f64::from(f32::EPSILON) * (mag[o] + want.abs()) + 1e-30;
                assert!(
                    (f64::from(got) - want).abs() <= tol,
                    "{isa} {algorithm:?} {shape:?} out {o}: {got} vs {want}"
                );
            }
            out.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
        });
        for (isa, bits) in &outputs[1..] {
            assert_eq!(
                bits, &outputs[0].1,
                "{isa} {algorithm:?} differs from scalar on {shape:?}"
            );
        }
        ran.extend(outputs.into_iter().map(|(isa, _)| isa));
    }
    ran
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn int8_u8_in_every_path_equals_reference(shape in shape_strategy(), seed: u64, unsigned_out: bool) {
        check_int8::<u8>(shape, seed, unsigned_out);
    }

    #[test]
    fn int8_i8_in_every_path_equals_reference(shape in shape_strategy(), seed: u64, unsigned_out: bool) {
        check_int8::<i8>(shape, seed, unsigned_out);
    }

    #[test]
    fn fp32_every_path_matches_exact_and_scalar(shape in shape_strategy(), seed: u64, relu: bool) {
        check_f32(shape, seed, relu);
    }
}

/// Depths above one micro-panel's `KC` and channel counts spanning several panels,
/// plus the i16-saturation trap: every activation 255 with zero point 0 against weights of
/// ±127/−128, where a `vpmaddubsw` pair sum (2·255·127) would saturate.
#[test]
fn deep_layers_and_saturation_extremes() {
    for (shape, seed) in [
        (ConvShape::conv(5, 7, 67, 35, 3, 1, 1), 1),
        (ConvShape::conv(6, 5, 130, 18, 3, 2, 1), 2),
        (ConvShape::deconv(3, 4, 300, 17, 2), 3),
        // Rows read in place (u8, in_c a multiple of 4) across two depth blocks.
        (ConvShape::conv(4, 5, 520, 24, 1, 1, 0), 4),
    ] {
        check_int8::<u8>(shape, seed, false);
        check_f32(shape, seed, true);
    }
    // A small centre weight whose Winograd output carries the rounding of its filter's
    // larger weights: outside the direct terms' bound, inside the transformed one.
    check_f32(
        ConvShape::conv(1, 1, 1, 1, 3, 1, 1),
        4_759_992_286_751_917_461,
        false,
    );
    let shape = ConvShape::conv(4, 4, 64, 16, 3, 1, 1);
    let x = vec![255u8; shape.input_len()];
    for wv in [127i8, -128, -127] {
        let w = vec![wv; shape.weights_len()];
        let want = naive_i8(&shape, &x, &w, 0);
        let dq = Dequantizer::new(vec![1.0; 16], vec![0; 16]).unwrap();
        for isa in Isa::available() {
            let conv = PackedConvI8::new(shape, &w, 0, OutputStage::Dequantize(dq.clone()))
                .unwrap()
                .with_isa(isa)
                .unwrap();
            let mut out = vec![0f32; shape.output_len()];
            conv.run(&x, &mut out).unwrap();
            let got: Vec<i32> = out.iter().map(|&f| f as i32).collect();
            assert_eq!(got, want, "{isa} weights {wv}");
            // The centre pixel sees all 9 taps: 9·64·255·wv (exact in f32 below 2^24).
            assert_eq!(got[5 * 16], 9 * 64 * 255 * i32::from(wv));
        }
    }
}

/// int8 Winograd at the deepest layer it takes (4·9·in_c·255·128 < 2³¹: in_c ≤ 1827), all
/// activations 255 against weights −128 / 127: 4× the centre accumulator is within a few
/// units of i32's limit, and the centre output must be exact.
#[test]
fn int8_winograd_at_its_depth_limit_is_exact() {
    let deepest = ConvShape::conv(3, 3, 1827, 2, 3, 1, 1);
    let x = vec![255u8; deepest.input_len()];
    let w: Vec<i8> = (0..deepest.weights_len())
        .map(|i| {
            if i < deepest.weights_len() / 2 {
                -128
            } else {
                127
            }
        })
        .collect();
    let want = naive_i8(&deepest, &x, &w, 0);
    let centre: Vec<i32> = [-128, 127].iter().map(|&v| 9 * 1827 * 255 * v).collect();
    assert_eq!(&want[8..10], centre.as_slice());
    // The bias cancels the centre accumulators: the dequantized centre is exactly 0.
    let bias: Vec<i32> = centre.iter().map(|&c| -c).collect();
    let dq = Dequantizer::new(vec![1.0; 2], bias).unwrap();
    for isa in Isa::available() {
        let stage = OutputStage::Dequantize(dq.clone());
        let conv = PackedConvI8::with_algorithm(deepest, &w, 0, stage, ConvAlgorithm::Winograd)
            .unwrap()
            .with_isa(isa)
            .unwrap();
        let mut out = vec![f32::NAN; deepest.output_len()];
        conv.run(&x, &mut out).unwrap();
        let expect: Vec<f32> = want
            .iter()
            .enumerate()
            .map(|(o, &a)| dq.dequantize(o % 2, a))
            .collect();
        assert_eq!(&out[8..10], &[0.0, 0.0], "{isa}");
        assert_eq!(out, expect, "{isa}");
    }
    let past = ConvShape::conv(3, 3, 1828, 2, 3, 1, 1);
    let w = vec![1i8; past.weights_len()];
    let stage = OutputStage::Dequantize(dq);
    assert!(
        PackedConvI8::with_algorithm(past, &w, 0, stage.clone(), ConvAlgorithm::Winograd).is_err()
    );
    let q = PackedConvI8::new(past, &w, 0, stage).unwrap();
    assert_eq!(q.algorithm(), ConvAlgorithm::Im2col);
}

/// A hand-computed case: 2×2 input, 1 channel, 3×3 kernel of ones, padding 1.
#[test]
fn hand_computed_conv_and_deconv() {
    let shape = ConvShape::conv(2, 2, 1, 1, 3, 1, 1);
    let conv = PackedConvF32::new(shape, &[1.0; 9], Some(&[0.5]), false).unwrap();
    let mut out = [0f32; 4];
    conv.run(&[1.0, 2.0, 3.0, 4.0], &mut out).unwrap();
    assert_eq!(out, [10.5; 4]);
    // Transposed, stride 2, 1 → 2 channels: out[2y+dy][2x+dx][c] = x[y][x] · w[0][c][dy][dx].
    let shape = ConvShape::deconv(1, 1, 1, 2, 2);
    let w = [1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0];
    let conv = PackedConvF32::new(shape, &w, None, true).unwrap();
    let mut out = [9f32; 8];
    conv.run(&[2.0], &mut out).unwrap();
    assert_eq!(out, [2.0, 0.0, 4.0, 0.0, 6.0, 0.0, 8.0, 0.0]);
}

/// fp32 Winograd on an input that is one vector everywhere: every 2×2 block whose 4×4
/// patch avoids the padding gives the same bits in all four pixels (the empty-cell
/// skipping fills such cells with one constant).
#[test]
fn winograd_constant_input_gives_one_value_per_channel() {
    let shape = ConvShape::conv(12, 14, 19, 23, 3, 1, 1);
    let mut rng = Rng(5);
    let vector: Vec<f32> = (0..shape.in_c).map(|_| rng.f32() * 3.0).collect();
    let x: Vec<f32> = vector
        .iter()
        .copied()
        .cycle()
        .take(shape.input_len())
        .collect();
    let w: Vec<f32> = (0..shape.weights_len()).map(|_| rng.f32()).collect();
    let bias: Vec<f32> = (0..shape.out_c).map(|_| rng.f32()).collect();
    for isa in Isa::available() {
        let conv = PackedConvF32::new(shape, &w, Some(&bias), false)
            .unwrap()
            .with_isa(isa)
            .unwrap();
        assert_eq!(conv.algorithm(), ConvAlgorithm::Winograd);
        let mut out = vec![0f32; shape.output_len()];
        conv.run(&x, &mut out).unwrap();
        let pixel =
            |y: usize, x: usize| &out[(y * shape.out_w() + x) * shape.out_c..][..shape.out_c];
        let first = pixel(2, 2).to_vec();
        // Blocks 1..=4 (rows 2..10) and 1..=5 (columns 2..12) read no padding.
        for y in 2..10 {
            for x in 2..12 {
                assert_eq!(pixel(y, x), first.as_slice(), "{isa} pixel ({y}, {x})");
            }
        }
        let direct =
            PackedConvF32::with_algorithm(shape, &w, Some(&bias), false, ConvAlgorithm::Im2col)
                .unwrap();
        let mut want = vec![0f32; shape.output_len()];
        direct.run(&x, &mut want).unwrap();
        let centre = &want[(2 * shape.out_w() + 2) * shape.out_c..][..shape.out_c];
        for (a, b) in first.iter().zip(centre) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{isa}: {a} vs {b}"
            );
        }
    }
}

/// Random u8 activations and i8 weights, and the same values as f32.
fn layer_data(shape: &ConvShape, rng: &mut Rng) -> (Vec<u8>, Vec<i8>, Vec<f32>, Vec<f32>) {
    let x: Vec<u8> = (0..shape.input_len())
        .map(|_| rng.range(0, 255) as u8)
        .collect();
    let w: Vec<i8> = (0..shape.weights_len())
        .map(|_| rng.range(-127, 127) as i8)
        .collect();
    let xf = x.iter().map(|&v| f32::from(v) / 255.0).collect();
    let wf = w.iter().map(|&v| f32::from(v) / 127.0).collect();
    (x, w, xf, wf)
}

/// The same bytes with 1, 2 and 3 threads (tasks split differently across threads).
#[test]
fn deterministic_across_thread_counts() {
    let shape = ConvShape::conv(31, 23, 24, 40, 3, 1, 1);
    let mut rng = Rng(7);
    let (x, w, xf, wf) = layer_data(&shape, &mut rng);
    let rq = requantizer(&mut rng, shape.out_c, false);
    let q = PackedConvI8::new(shape, &w, 3, OutputStage::Requantize(rq)).unwrap();
    let f = PackedConvF32::new(shape, &wf, None, true).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut oq = vec![0i8; shape.output_len()];
            let mut of = vec![0f32; shape.output_len()];
            q.run(&x, &mut oq).unwrap();
            f.run(&xf, &mut of).unwrap();
            (oq, of.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        })
    };
    let one = run(1);
    assert_eq!(run(2), one);
    assert_eq!(run(3), one);
}

/// Coverage guard: the property tests must have exercised every SIMD path the CPU has
/// (AVX2 + FMA; AVX-512 F/BW + VNNI on top; AMX-INT8 on top of that), and the default
/// selection must be the best of them unless `LIDARQ_ISA` lowers it. The features are read
/// here (CPUID and the OS-enabled state in XCR0), not from `cpu`.
#[test]
fn every_simd_path_the_cpu_has_is_exercised() {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma");
        let vnni = avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vnni");
        let best = match (avx2, vnni, vnni && amx_int8_enabled()) {
            (_, _, true) => Isa::Amx,
            (_, true, false) => Isa::Avx512Vnni,
            (true, false, _) => Isa::Avx2,
            (false, false, _) => return,
        };
        let ran = check_int8::<u8>(ConvShape::conv(3, 5, 9, 19, 3, 1, 1), 11, false);
        for isa in [Isa::Avx2, Isa::Avx512Vnni, Isa::Amx]
            .into_iter()
            .filter(|&i| i <= best)
        {
            assert!(
                ran.contains(&isa),
                "{isa} host but its int8 path did not run: {ran:?}"
            );
        }
        let ran = check_f32(ConvShape::conv(3, 5, 9, 19, 3, 1, 1), 11, false);
        assert!(
            ran.contains(&Isa::Avx2),
            "AVX2 host but the AVX2 fp32 path did not run: {ran:?}"
        );
        if std::env::var_os(cpu::ISA_ENV).is_none() {
            assert_eq!(cpu::selected(), best, "{}", cpu::describe());
        }
    }
}

/// CPUID's AMX-TILE and AMX-INT8 bits, with the tile state enabled by the OS in XCR0 (bits
/// 17 and 18).
#[cfg(target_arch = "x86_64")]
fn amx_int8_enabled() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
    if __cpuid(0).eax < 7 || !std::arch::is_x86_feature_detected!("xsave") {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    // SAFETY: XSAVE (hence XGETBV) was detected just above.
    let xcr0 = unsafe { _xgetbv(0) };
    edx & (3 << 24) == 3 << 24 && xcr0 & (3 << 17) == 3 << 17
}

#[test]
fn selection_can_only_be_lowered() {
    let avx2 = cpu::CpuFeatures {
        avx2: true,
        fma: true,
        f16c: true,
        ..Default::default()
    };
    let none = cpu::CpuFeatures::default();
    let pick = |f, req: Option<&str>| cpu::select(f, req.map(String::from)).isa;
    assert_eq!(pick(avx2, None), Isa::Avx2);
    assert_eq!(pick(avx2, Some("scalar")), Isa::Scalar);
    assert_eq!(pick(avx2, Some("avx512vnni")), Isa::Avx2);
    assert_eq!(pick(avx2, Some("bogus")), Isa::Avx2);
    assert_eq!(pick(none, None), Isa::Scalar);
    assert_eq!(pick(none, Some("avx2")), Isa::Scalar);
    let vnni = cpu::CpuFeatures {
        avx512f: true,
        avx512bw: true,
        avx512vnni: true,
        ..avx2
    };
    assert_eq!(pick(vnni, None), Isa::Avx512Vnni);
    assert_eq!(pick(vnni, Some("avx2")), Isa::Avx2);
    assert_eq!(pick(vnni, Some("scalar")), Isa::Scalar);
    let s = cpu::select(avx2, Some("avx512vnni".into()));
    assert_eq!(s.isa, Isa::Avx2);
    assert!(
        s.reasons.iter().any(|r| r.contains("asks for more")),
        "{:?}",
        s.reasons
    );
    // VNNI without AVX2 + FMA (which every other kernel of that path runs) is not enough.
    let vnni_only = cpu::CpuFeatures {
        avx2: false,
        ..vnni
    };
    assert_eq!(pick(vnni_only, None), Isa::Scalar);
    let amx = cpu::CpuFeatures {
        amx_int8: true,
        ..vnni
    };
    assert_eq!(pick(amx, None), Isa::Amx);
    assert_eq!(pick(amx, Some("avx512vnni")), Isa::Avx512Vnni);
    assert_eq!(pick(amx, Some("AMX")), Isa::Amx);
    assert_eq!(pick(vnni, Some("amx")), Isa::Avx512Vnni);
    // AMX tiles without the VNNI path (whose kernels run every other layer) are not enough.
    let amx_only = cpu::CpuFeatures {
        avx512vnni: false,
        ..amx
    };
    assert_eq!(pick(amx_only, None), Isa::Avx2);
}

#[test]
fn bad_inputs_are_errors() {
    let shape = ConvShape::conv(4, 4, 3, 5, 3, 1, 1);
    assert!(PackedConvF32::new(shape, &[0.0; 10], None, false).is_err());
    assert!(
        PackedConvF32::new(ConvShape { stride: 0, ..shape }, &[0.0; 135], None, false).is_err()
    );
    assert!(
        PackedConvF32::new(
            ConvShape {
                pad: 1,
                ..ConvShape::deconv(2, 2, 3, 5, 2)
            },
            &[0.0; 60],
            None,
            false
        )
        .is_err()
    );
    let conv = PackedConvF32::new(shape, &[0.0; 135], None, false).unwrap();
    assert!(conv.run(&[0.0; 47], &mut [0.0; 80]).is_err());
    assert!(conv.run(&[0.0; 48], &mut [0.0; 79]).is_err());
    let rq =
        Requantizer::new(vec![QuantizedMultiplier::ZERO; 5], vec![0; 5], 0, -128, 127).unwrap();
    let q = PackedConvI8::new(shape, &[0; 135], 200, OutputStage::Requantize(rq.clone())).unwrap();
    // Zero point 200 suits u8 input but not i8 input.
    assert!(q.run(&[0u8; 48], &mut [0i8; 80]).is_ok());
    assert!(q.run(&[0i8; 48], &mut [0i8; 80]).is_err());
    // A requantizing layer cannot write f32.
    assert!(q.run(&[0u8; 48], &mut [0f32; 80]).is_err());
    let s2 = ConvShape::conv(4, 4, 3, 5, 3, 2, 1);
    assert!(
        PackedConvF32::with_algorithm(s2, &[0.0; 135], None, false, ConvAlgorithm::Winograd)
            .is_err()
    );
    // Winograd's int8 accumulators are 4× the direct ones: past a quarter of the depth
    // limit the default is im2col, and asking for Winograd is an error.
    let wide = ConvShape::conv(2, 2, 2_000, 1, 3, 1, 1);
    let rq1 = Requantizer::new(vec![QuantizedMultiplier::ZERO], vec![0], 0, -128, 127).unwrap();
    let stage = OutputStage::Requantize(rq1.clone());
    let q = PackedConvI8::new(wide, &vec![0; 18_000], 0, stage.clone()).unwrap();
    assert_eq!(q.algorithm(), ConvAlgorithm::Im2col);
    let winograd = ConvAlgorithm::Winograd;
    assert!(PackedConvI8::with_algorithm(wide, &vec![0; 18_000], 0, stage, winograd).is_err());
    let deep = ConvShape::conv(1, 1, 10_000, 1, 3, 1, 1);
    assert!(PackedConvI8::new(deep, &vec![0; 90_000], 0, OutputStage::Requantize(rq1)).is_err());
}

/// `run_rows` computes exactly the listed rows (same values as a full run) and leaves the
/// rest untouched, for convolutions and transposed convolutions, on every path.
#[test]
fn sparse_rows_equal_dense_rows() {
    let shapes = [
        ConvShape::conv(9, 11, 13, 21, 3, 1, 1),
        ConvShape::conv(9, 11, 14, 21, 3, 1, 1),
        ConvShape::conv(9, 11, 13, 21, 3, 2, 1),
        ConvShape::deconv(5, 7, 13, 10, 2),
    ];
    for (si, shape) in shapes.into_iter().enumerate() {
        let mut rng = Rng(100 + si as u64);
        let (x, w, xf, wf) = layer_data(&shape, &mut rng);
        let rq = requantizer(&mut rng, shape.out_c, false);
        let n_rows = if shape.transposed {
            shape.in_h * shape.in_w
        } else {
            shape.out_h() * shape.out_w()
        };
        // About a third of the rows, including runs longer than a task and isolated ones.
        let rows: Vec<u32> = (0..n_rows as u32)
            .filter(|r| rng.next().is_multiple_of(3) || (40..110).contains(r))
            .collect();
        let per_row = shape.output_len() / n_rows;
        let listed = |o: usize| rows.binary_search(&((o / per_row) as u32)).is_ok();
        let listed_out = |o: usize| {
            if !shape.transposed {
                return listed(o);
            }
            // Output pixel → the input pixel that writes it.
            let (p, s) = (o / shape.out_c, shape.stride);
            let (oy, ox) = (p / shape.out_w(), p % shape.out_w());
            rows.binary_search(&(((oy / s) * shape.in_w + ox / s) as u32))
                .is_ok()
        };
        for (isa, algorithm) in Isa::available()
            .into_iter()
            .flat_map(|isa| algorithms(&shape).into_iter().map(move |a| (isa, a)))
        {
            let stage = OutputStage::Requantize(rq.clone());
            let q = PackedConvI8::with_algorithm(shape, &w, 7, stage, algorithm)
                .unwrap()
                .with_isa(isa)
                .unwrap();
            let mut dense = vec![0i8; shape.output_len()];
            q.run(&x, &mut dense).unwrap();
            let mut sparse = vec![99i8; shape.output_len()];
            q.run_rows(&x, &rows, &mut sparse).unwrap();
            for o in 0..dense.len() {
                let want = if listed_out(o) { dense[o] } else { 99 };
                assert_eq!(
                    sparse[o], want,
                    "{isa} {algorithm:?} {shape:?} int8 output {o}"
                );
            }
            let f = PackedConvF32::with_algorithm(shape, &wf, None, true, algorithm)
                .unwrap()
                .with_isa(isa)
                .unwrap();
            let mut dense = vec![0f32; shape.output_len()];
            f.run(&xf, &mut dense).unwrap();
            let mut sparse = vec![-1f32; shape.output_len()];
            f.run_rows(&xf, &rows, &mut sparse).unwrap();
            for o in 0..dense.len() {
                let want = if listed_out(o) { dense[o] } else { -1.0 };
                assert_eq!(
                    sparse[o].to_bits(),
                    want.to_bits(),
                    "{isa} {algorithm:?} {shape:?} fp32 output {o}"
                );
            }
        }
        let q = PackedConvI8::new(shape, &w, 7, OutputStage::Requantize(rq)).unwrap();
        let mut out = vec![0i8; shape.output_len()];
        assert!(q.run_rows(&x, &[3, 3], &mut out).is_err());
        assert!(q.run_rows(&x, &[5, 2], &mut out).is_err());
        assert!(q.run_rows(&x, &[n_rows as u32], &mut out).is_err());
        assert!(q.run_rows(&x, &[], &mut out).is_ok());
    }
}

/// Softmax attention in f64, the textbook way.
fn naive_attention(qkv: &[f32], channels: usize, heads: usize) -> Vec<f64> {
    let n = qkv.len() / (3 * channels);
    let d = channels / heads;
    let at = |t: usize, part: usize, h: usize, c: usize| {
        f64::from(qkv[t * 3 * channels + part * channels + h * d + c])
    };
    let mut out = vec![0.0; n * channels];
    for h in 0..heads {
        for i in 0..n {
            let logits: Vec<f64> = (0..n)
                .map(|j| {
                    (0..d).map(|c| at(i, 0, h, c) * at(j, 1, h, c)).sum::<f64>() / (d as f64).sqrt()
                })
                .collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let sum: f64 = w.iter().sum();
            for c in 0..d {
                out[i * channels + h * d + c] =
                    (0..n).map(|j| w[j] * at(j, 2, h, c)).sum::<f64>() / sum;
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Token counts around the key block (32) and head sizes around the vector width, with
    /// one scratch reused across calls of different sizes.
    #[test]
    fn attention_every_path_equals_scalar_and_reference(
        tokens in 1usize..80, heads in 1usize..5, head_dim in 1usize..41, seed: u64,
    ) {
        let channels = heads * head_dim;
        let mut rng = Rng(seed);
        let qkv: Vec<f32> = (0..tokens * 3 * channels).map(|_| 3.0 * rng.f32()).collect();
        let expect = naive_attention(&qkv, channels, heads);
        let mut scratch = AttentionScratch::default();
        let mut warm = vec![0.0; 2 * channels];
        attend(Isa::Scalar, &vec![1.0; 6 * channels], channels, heads, &mut warm, &mut scratch);
        let runs = each_isa(|isa| {
            let mut out = vec![f32::NAN; tokens * channels];
            attend(isa, &qkv, channels, heads, &mut out, &mut scratch);
            out
        });
        for (isa, out) in &runs {
            prop_assert_eq!(out, &runs[0].1, "{} differs from scalar", isa);
            for (o, e) in out.iter().zip(&expect) {
                prop_assert!((f64::from(*o) - e).abs() < 1e-5 * (1.0 + e.abs()), "{}: {} vs {}", isa, o, e);
            }
        }
    }

    /// Per-tensor and per-channel parameters (row lengths that are not multiples of the
    /// vector width), values at and around the rounding ties, specials and saturation.
    #[test]
    fn quantize_every_path_equals_the_scalar_rule(channels in 1usize..21, rows in 0usize..40, seed: u64) {
        let mut rng = Rng(seed);
        let params: Vec<QuantParams> = (0..channels)
            .map(|_| {
                let lo = -(rng.range(0, 1000) as f32) / 100.0;
                let hi = rng.range(1, 1000) as f32 / 100.0;
                QuantParams::from_range(lo, hi, lidarq_quant::Scheme::Affine, lidarq_quant::QuantDtype::Int8, rng.next().is_multiple_of(2)).unwrap()
            })
            .collect();
        let x: Vec<f32> = (0..rows * channels)
            .map(|i| {
                let p = &params[i % channels];
                match rng.next() % 8 {
                    0 => (rng.range(-300, 300) as f32 + 0.5) * p.scale,
                    1 => f32::from_bits((((rng.range(-300, 300) as f32 + 0.5) * p.scale).to_bits() as i64 + rng.range(-1, 1)) as u32),
                    2 => [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e30, -1e30][rng.range(0, 6) as usize],
                    _ => 20.0 * rng.f32(),
                }
            })
            .collect();
        let expect: Vec<i8> = x.iter().enumerate().map(|(i, &v)| params[i % channels].quantize(v) as i8).collect();
        let q = Quantizer::new(&params).unwrap();
        for (isa, out) in each_isa(|isa| {
            let mut out = vec![0i8; x.len()];
            quantize_i8(isa, &q, &x, &mut out);
            out
        }) {
            prop_assert_eq!(&out, &expect, "{}", isa);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A linear layer's row-group max (a PFN's max over points) equals the full run followed
    /// by the max of each group's output rows, byte for byte, for requantized (i8/u8) and
    /// dequantized outputs; or is refused when a bias could overflow the accumulator.
    #[test]
    fn row_group_max_equals_run_then_max(
        in_c in 1usize..24, out_c in 1usize..40, sizes in prop::collection::vec(1usize..40, 0..80),
        seed: u64,
    ) {
        let mut rng = Rng(seed);
        let offsets: Vec<usize> = std::iter::once(0)
            .chain(sizes.iter().scan(0, |at, &n| { *at += n; Some(*at) }))
            .collect();
        let rows = *offsets.last().unwrap();
        let shape = ConvShape::linear(rows.max(1), in_c, out_c);
        let x: Vec<u8> = (0..rows * in_c).map(|_| rng.extreme(0, 255) as u8).collect();
        let w: Vec<i8> = (0..shape.weights_len()).map(|_| rng.extreme(-128, 127) as i8).collect();
        let zp = rng.extreme(0, 255) as i32;
        let rq = requantizer(&mut rng, out_c, false);
        let dq = Dequantizer::new(
            (0..out_c).map(|_| rng.range(0, 100) as f32 * 1e-3).collect(),
            (0..out_c).map(|_| rng.range(-5000, 5000) as i32).collect(),
        ).unwrap();
        fn group_max<T: Copy + PartialOrd>(full: &[T], offsets: &[usize], c: usize) -> Vec<T> {
            offsets.windows(2).flat_map(|w| {
                (0..c).map(move |j| {
                    (w[0]..w[1]).map(|r| full[r * c + j]).fold(full[w[0] * c + j], |m, v| if v > m { v } else { m })
                })
            }).collect()
        }
        for isa in Isa::available() {
            let k = PackedConvI8::new(shape, &w, zp, OutputStage::Requantize(rq.clone())).unwrap().with_isa(isa).unwrap();
            let mut got = vec![0i8; sizes.len() * out_c];
            if !k.max_commutes::<u8>() {
                prop_assert!(rq.bias().iter().any(|b| i64::from(*b).abs() > i64::from(i32::MAX) - (in_c * 255 * 128) as i64));
                prop_assert!(k.run_max_groups(&x, &offsets, &mut got).is_err());
                continue;
            }
            let mut full = vec![0i8; rows * out_c];
            k.run_at(rows, 1, &x, &mut full).unwrap();
            k.run_max_groups(&x, &offsets, &mut got).unwrap();
            prop_assert_eq!(&got, &group_max(&full, &offsets, out_c), "{}", isa);

            let k = PackedConvI8::new(shape, &w, zp, OutputStage::Dequantize(dq.clone())).unwrap().with_isa(isa).unwrap();
            let mut full = vec![0f32; rows * out_c];
            let mut got = vec![0f32; sizes.len() * out_c];
            k.run_at(rows, 1, &x, &mut full).unwrap();
            k.run_max_groups(&x, &offsets, &mut got).unwrap();
            prop_assert_eq!(&got, &group_max(&full, &offsets, out_c), "{}", isa);
        }
    }
}

#[test]
fn row_group_max_refuses_what_it_cannot_do_exactly() {
    let rq = Requantizer::new(
        vec![QuantizedMultiplier::from_real(0.01).unwrap(); 2],
        vec![0; 2],
        0,
        -128,
        127,
    )
    .unwrap();
    let w = [1i8; 2 * 3 * 9];
    let conv = PackedConvI8::new(
        ConvShape::conv(4, 4, 3, 2, 3, 1, 1),
        &w,
        0,
        OutputStage::Requantize(rq.clone()),
    )
    .unwrap();
    assert!(!conv.max_commutes::<u8>());
    let linear = PackedConvI8::new(
        ConvShape::linear(4, 3, 2),
        &w[..6],
        0,
        OutputStage::Requantize(rq),
    )
    .unwrap();
    assert!(linear.max_commutes::<u8>());
    let x = [7u8; 12];
    let mut out = [0i8; 4];
    assert!(linear.run_max_groups(&x, &[0, 2, 4], &mut out).is_ok());
    for bad in [&[0, 2, 2, 4][..], &[1, 4], &[0, 3]] {
        let mut out = vec![0i8; 2 * (bad.len() - 1)];
        assert!(linear.run_max_groups(&x, bad, &mut out).is_err(), "{bad:?}");
    }
    let mut wrong_type = [0f32; 4];
    assert!(
        linear
            .run_max_groups(&x, &[0, 2, 4], &mut wrong_type)
            .is_err()
    );
    let huge_bias = Requantizer::new(
        vec![QuantizedMultiplier::from_real(0.01).unwrap(); 2],
        vec![i32::MAX - 100, 0],
        0,
        -128,
        127,
    )
    .unwrap();
    let linear = PackedConvI8::new(
        ConvShape::linear(4, 3, 2),
        &w[..6],
        0,
        OutputStage::Requantize(huge_bias),
    )
    .unwrap();
    assert!(!linear.max_commutes::<u8>());
    assert!(linear.run_max_groups(&x, &[0, 2, 4], &mut out).is_err());
}
