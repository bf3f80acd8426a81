//! int8 convolution, transposed convolution and linear layers: u8 or i8 activations
//! (asymmetric, per-tensor zero point) × i8 weights (symmetric, per output channel) → i32,
//! with a fused requantize (+ReLU clamp) to int8/uint8 or dequantize to f32.

use super::algorithm::{ConvAlgorithm, Packed};
use super::amx;
use super::conv_f32::{check_algorithm, check_len, check_rows, checked_isa};
use super::cpu::{self, Isa};
use super::epilogue::{QuantOut, RequantLanes};
use super::gemm::{self, Family, InPlace, NR, Operands, PackedB, Rows};
use super::micro::{I16, MAX_DEPTH_I8, U8};
use super::shape::ConvShape;
use crate::error::{QuantError, Result};
use crate::requant::{Dequantizer, Requantizer};
use rayon::prelude::*;

/// A quantized activation element: `u8` or `i8`.
pub trait QuantIn: Copy + Sync + 'static {
    /// Smallest representable value (as i32).
    const MIN: i32;
    /// Largest representable value (as i32).
    const MAX: i32;
    #[doc(hidden)]
    fn widen(self) -> i16;
    /// `self − MIN` as u8 (i8 values flip their sign bit).
    #[doc(hidden)]
    fn offset(self) -> u8;
    /// The values themselves when they already are u8.
    #[doc(hidden)]
    fn as_u8(values: &[Self]) -> Option<&[u8]>;
}

impl QuantIn for u8 {
    const MIN: i32 = 0;
    const MAX: i32 = 255;
    fn widen(self) -> i16 {
        i16::from(self)
    }
    fn offset(self) -> u8 {
        self
    }
    fn as_u8(values: &[u8]) -> Option<&[u8]> {
        Some(values)
    }
}

impl QuantIn for i8 {
    const MIN: i32 = -128;
    const MAX: i32 = 127;
    fn widen(self) -> i16 {
        i16::from(self)
    }
    fn offset(self) -> u8 {
        self as u8 ^ 0x80
    }
    fn as_u8(_: &[i8]) -> Option<&[u8]> {
        None
    }
}

/// What happens to the i32 accumulators.
#[derive(Debug, Clone)]
pub enum OutputStage {
    /// Bias, fixed-point rescale, zero point and clamp (a fused ReLU is
    /// `clamp_min = zero point`): int8 or uint8 output.
    Requantize(Requantizer),
    /// Bias and one f32 scale per channel: f32 output (layers whose output stays float).
    Dequantize(Dequantizer),
}

/// int8 weights packed once (widened to i16 pairs) with their output stage.
#[derive(Debug, Clone)]
pub struct PackedConvI8 {
    shape: ConvShape,
    packed: Packed<i16>,
    /// The im2col weights again for `vpdpbusd`, where this CPU has AVX-512 VNNI.
    quads: Option<Box<Quads>>,
    input_zero_point: i32,
    stage: Stage,
    isa: Isa,
}

/// An im2col layer as raw u8 activations × i8 weights, four products per `vpdpbusd` lane
/// (twice `vpdpwssd`'s two, and no widening: u8 rows are read in place, i8 ones copied).
/// The kernel sums `x·w` where the layer means `(x − zp)·w`, so each GEMM column's
/// accumulators start at `−zp·Σ_k w` instead of zero, and padding taps read `zp`: with
/// wrapping sums these are the same integers (mod 2³²) as the other paths'. i8 activations
/// are flipped to u8 (`x + 128`), their zero point with them.
#[derive(Debug, Clone)]
struct Quads {
    packed: PackedB<i8>,
    /// `Σ_k w` of each packed column.
    column_sums: Vec<i32>,
}

impl Quads {
    fn pack(shape: &ConvShape, weights: &[i8]) -> Self {
        let packed = PackedB::pack(shape, weights, U8::KSTEP, amx::TILE_DEPTH, |w| w);
        let n_pad = packed.n_pad(shape.groups());
        let column_sums = (0..n_pad)
            .map(|n| {
                let (panel, j) = (n / NR, n % NR);
                packed
                    .panel(panel, 0, packed.k_pad())
                    .chunks_exact(NR * U8::KSTEP)
                    .flat_map(|step| &step[j * U8::KSTEP..(j + 1) * U8::KSTEP])
                    .map(|&w| i32::from(w))
                    .sum()
            })
            .collect();
        Self {
            packed,
            column_sums,
        }
    }
}

#[derive(Debug, Clone)]
enum Stage {
    Requantize(RequantLanes),
    Dequantize(Dequantizer),
}

/// An output element of [`PackedConvI8::run`]: `i8`/`u8` (needs
/// [`OutputStage::Requantize`]) or `f32` (needs [`OutputStage::Dequantize`]).
pub trait ConvOutI8: sealed::RunInto + Copy + Send + Sync + 'static {}

impl<O: QuantOut> ConvOutI8 for O {}
impl ConvOutI8 for f32 {}

mod sealed {
    use super::*;

    /// Picks the epilogue matching the output type (crate-internal).
    pub trait RunInto: Sized {
        fn run<I: QuantIn>(
            conv: &PackedConvI8,
            shape: &ConvShape,
            rows: Option<&[u32]>,
            input: &[I],
            output: &mut [Self],
        ) -> Result<()>;
        /// Whether `stage` writes this output type.
        fn accepts(conv: &PackedConvI8) -> bool;
        /// The error for a stage that does not.
        fn mismatch() -> QuantError;
        /// The stage on one row of accumulators (nothing if it does not accept the type).
        fn apply(conv: &PackedConvI8, acc: &[i32], out: &mut [Self]);
    }

    impl<O: QuantOut> RunInto for O {
        fn run<I: QuantIn>(
            conv: &PackedConvI8,
            shape: &ConvShape,
            rows: Option<&[u32]>,
            input: &[I],
            output: &mut [O],
        ) -> Result<()> {
            match &conv.stage {
                Stage::Requantize(r) => {
                    conv.gemm(shape, rows, input, r, output);
                    Ok(())
                }
                Stage::Dequantize(_) => Err(Self::mismatch()),
            }
        }
        fn accepts(conv: &PackedConvI8) -> bool {
            matches!(conv.stage, Stage::Requantize(_))
        }
        fn mismatch() -> QuantError {
            stage_mismatch("an integer output needs a requantizing stage")
        }
        fn apply(conv: &PackedConvI8, acc: &[i32], out: &mut [O]) {
            if let Stage::Requantize(r) = &conv.stage {
                gemm::Epilogue::row(r, conv.isa, acc, out);
            }
        }
    }

    impl RunInto for f32 {
        fn run<I: QuantIn>(
            conv: &PackedConvI8,
            shape: &ConvShape,
            rows: Option<&[u32]>,
            input: &[I],
            output: &mut [f32],
        ) -> Result<()> {
            match &conv.stage {
                Stage::Dequantize(d) => {
                    conv.gemm(shape, rows, input, d, output);
                    Ok(())
                }
                Stage::Requantize(_) => Err(Self::mismatch()),
            }
        }
        fn accepts(conv: &PackedConvI8) -> bool {
            matches!(conv.stage, Stage::Dequantize(_))
        }
        fn mismatch() -> QuantError {
            stage_mismatch("an f32 output needs a dequantizing stage")
        }
        fn apply(conv: &PackedConvI8, acc: &[i32], out: &mut [f32]) {
            if let Stage::Dequantize(d) = &conv.stage {
                gemm::Epilogue::row(d, conv.isa, acc, out);
            }
        }
    }
}

fn stage_mismatch(reason: &str) -> QuantError {
    QuantError::Kernel {
        op: "PackedConvI8",
        reason: reason.to_string(),
    }
}

impl PackedConvI8 {
    /// Packs `weights` (OIHW `[out_c][in_c][k][k]` for a convolution, PyTorch's IOHW
    /// `[in_c][out_c][k][k]` for a transposed one; symmetric, zero point 0) for inputs with
    /// zero point `input_zero_point`. The stage holds one entry per output channel.
    /// `kernel²·in_c` may not exceed [`MAX_DEPTH_I8`]. Uses [`cpu::selected`]'s path and
    /// [`ConvAlgorithm::best_int8_for`] the shape and path (Winograd only where its
    /// accumulators, four times the direct ones, fit).
    pub fn new(
        shape: ConvShape,
        weights: &[i8],
        input_zero_point: i32,
        stage: OutputStage,
    ) -> Result<Self> {
        let algorithm = Some(ConvAlgorithm::best_int8_for(&shape, cpu::selected()))
            .filter(|&a| computes_exactly(a, &shape))
            .unwrap_or(ConvAlgorithm::Im2col);
        Self::with_algorithm(shape, weights, input_zero_point, stage, algorithm)
    }

    /// As [`Self::new`] with an explicit algorithm (an error if it cannot compute the shape
    /// exactly).
    pub fn with_algorithm(
        shape: ConvShape,
        weights: &[i8],
        input_zero_point: i32,
        stage: OutputStage,
        algorithm: ConvAlgorithm,
    ) -> Result<Self> {
        shape.validate(MAX_DEPTH_I8)?;
        check_algorithm(algorithm, &shape, computes_exactly(algorithm, &shape))?;
        check_len("weights", weights.len(), shape.weights_len())?;
        if !(-128..=255).contains(&input_zero_point) {
            return Err(QuantError::ZeroPoint {
                zero_point: input_zero_point,
                min: -128,
                max: 255,
            });
        }
        let stage = match stage {
            OutputStage::Requantize(r) => {
                check_len("requantizer channels", r.channels(), shape.out_c)?;
                Stage::Requantize(RequantLanes::new(r)?)
            }
            OutputStage::Dequantize(d) => {
                check_len("dequantizer channels", d.channels(), shape.out_c)?;
                Stage::Dequantize(d)
            }
        };
        let quads = (algorithm == ConvAlgorithm::Im2col && Isa::Avx512Vnni.is_available())
            .then(|| Box::new(Quads::pack(&shape, weights)));
        Ok(Self {
            packed: Packed::pack(algorithm, &shape, weights, I16::KSTEP, i32::from, |v| {
                v as i16
            }),
            quads,
            shape,
            input_zero_point,
            stage,
            isa: cpu::selected(),
        })
    }

    /// The same layer on an explicit kernel path (an error if this CPU lacks it).
    pub fn with_isa(mut self, isa: Isa) -> Result<Self> {
        self.isa = checked_isa(isa, "PackedConvI8")?;
        Ok(self)
    }

    /// The kernel path `run` takes.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The algorithm the weights were packed for.
    pub fn algorithm(&self) -> ConvAlgorithm {
        self.packed.algorithm()
    }

    /// The geometry given at construction.
    pub fn shape(&self) -> &ConvShape {
        &self.shape
    }

    /// Runs the layer on NHWC buffers of the construction shape.
    pub fn run<I: QuantIn, O: ConvOutI8>(&self, input: &[I], output: &mut [O]) -> Result<()> {
        self.run_at(self.shape.in_h, self.shape.in_w, input, output)
    }

    /// As [`Self::run`] on an input of `in_h`×`in_w` pixels.
    pub fn run_at<I: QuantIn, O: ConvOutI8>(
        &self,
        in_h: usize,
        in_w: usize,
        input: &[I],
        output: &mut [O],
    ) -> Result<()> {
        let shape = self.shape.with_input(in_h, in_w);
        shape.check_buffers(input.len(), output.len())?;
        self.check_zero_point::<I>()?;
        <O as sealed::RunInto>::run(self, &shape, None, input, output)
    }

    /// As [`Self::run`], computing only the output pixels listed in `rows` (strictly
    /// ascending `y·out_w + x`; for a transposed convolution, input pixels, each writing its
    /// `stride`×`stride` block) and leaving every other output value untouched. Values are
    /// identical to a full run's.
    pub fn run_rows<I: QuantIn, O: ConvOutI8>(
        &self,
        input: &[I],
        rows: &[u32],
        output: &mut [O],
    ) -> Result<()> {
        self.shape.check_buffers(input.len(), output.len())?;
        self.check_zero_point::<I>()?;
        check_rows(&self.shape, rows)?;
        <O as sealed::RunInto>::run(self, &self.shape, Some(rows), input, output)
    }

    /// A linear layer followed by a max over groups of consecutive rows (a PointPillars
    /// PFN: the max over each pillar's points): `output[g]` (`out_c` values) is the output
    /// stage applied to the element-wise max of the accumulators of input rows
    /// `offsets[g]..offsets[g + 1]`. Only one row per group is rescaled, and the bytes are
    /// those of [`Self::run`] followed by the max over each group's output rows, because
    /// the stage is non-decreasing in the accumulator — which [`Self::max_commutes`] checks.
    pub fn run_max_groups<I: QuantIn, O: ConvOutI8>(
        &self,
        input: &[I],
        offsets: &[usize],
        output: &mut [O],
    ) -> Result<()> {
        let bad = |reason: String| QuantError::Kernel {
            op: "PackedConvI8::run_max_groups",
            reason,
        };
        let (in_c, out_c) = (self.shape.in_c, self.shape.out_c);
        if !self.max_commutes::<I>() {
            return Err(bad(
                "only a linear layer whose accumulator + bias cannot wrap commutes with the \
                 max"
                .into(),
            ));
        }
        self.check_zero_point::<I>()?;
        if !O::accepts(self) {
            return Err(O::mismatch());
        }
        if offsets.first() != Some(&0) || offsets.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad(
                "row groups must start at row 0, be non-empty and ascending".into(),
            ));
        }
        let groups = offsets.len() - 1;
        check_len("input", input.len(), offsets[groups] * in_c)?;
        check_len("output", output.len(), groups * out_c)?;
        output
            .par_chunks_mut(GROUPS_PER_TASK * out_c)
            .enumerate()
            .for_each(|(task, out)| {
                let g0 = task * GROUPS_PER_TASK;
                let bounds = &offsets[g0..=(g0 + GROUPS_PER_TASK).min(groups)];
                let (first, last) = (bounds[0], bounds[bounds.len() - 1]);
                let mut acc = MAXED.take();
                acc.resize((last - first) * out_c, 0);
                let shape = self.shape.with_input(last - first, 1);
                self.gemm(
                    &shape,
                    None,
                    &input[first * in_c..last * in_c],
                    &Raw,
                    &mut acc,
                );
                for (w, out) in bounds.windows(2).zip(out.chunks_exact_mut(out_c)) {
                    let (head, rest) =
                        acc[(w[0] - first) * out_c..(w[1] - first) * out_c].split_at_mut(out_c);
                    for row in rest.chunks_exact(out_c) {
                        for (m, &v) in head.iter_mut().zip(row) {
                            *m = (*m).max(v);
                        }
                    }
                    O::apply(self, head, out);
                }
                MAXED.set(acc);
            });
        Ok(())
    }

    /// Whether [`Self::run_max_groups`] is exact for inputs of type `I`: a linear layer
    /// whose `accumulator + bias` cannot wrap, so that its stage is non-decreasing in the
    /// accumulator.
    pub fn max_commutes<I: QuantIn>(&self) -> bool {
        let s = &self.shape;
        let linear = s.kernel == 1 && s.stride == 1 && s.pad == 0 && !s.transposed;
        let spread =
            i64::from((I::MAX - self.input_zero_point).max(self.input_zero_point - I::MIN));
        let bound = s.gemm_k() as i64 * spread * 128;
        // Both stages are non-decreasing once `acc + bias` does not wrap: requantizing
        // multipliers and dequantizing scales are non-negative by construction.
        let bias = match &self.stage {
            Stage::Requantize(r) => r.reference.bias(),
            Stage::Dequantize(d) => d.bias(),
        };
        linear
            && bias
                .iter()
                .all(|&b| bound + i64::from(b).abs() <= i64::from(i32::MAX))
    }

    fn check_zero_point<I: QuantIn>(&self) -> Result<()> {
        if (I::MIN..=I::MAX).contains(&self.input_zero_point) {
            Ok(())
        } else {
            Err(QuantError::ZeroPoint {
                zero_point: self.input_zero_point,
                min: I::MIN,
                max: I::MAX,
            })
        }
    }

    fn gemm<I: QuantIn, O: Send, E: gemm::Epilogue<i32, O>>(
        &self,
        shape: &ConvShape,
        rows: Option<&[u32]>,
        input: &[I],
        epilogue: &E,
        output: &mut [O],
    ) {
        let rows = rows.map_or(Rows::All(shape.gemm_rows()), Rows::Listed);
        if let (Isa::Avx512Vnni | Isa::Amx, Some(quads)) = (self.isa, &self.quads) {
            let zero_point = self.input_zero_point - I::MIN;
            let init: Vec<i32> = quads
                .column_sums
                .iter()
                .map(|&s| s.wrapping_mul(-zero_point))
                .collect();
            let ops = Offset {
                padding: zero_point as u8,
            };
            gemm::run::<U8, _, _, _>(
                self.isa,
                shape,
                &quads.packed,
                input,
                &ops,
                Some(&init),
                epilogue,
                rows,
                output,
            );
            return;
        }
        let ops = Widen {
            zero_point: self.input_zero_point as i16,
        };
        if self.algorithm() == ConvAlgorithm::Im2col {
            self.packed
                .run::<I16, _, _, _>(self.isa, shape, input, &ops, epilogue, rows, output);
            return;
        }
        // Winograd patches overlap (each input is read by four tiles): widen the input once
        // and read it in place. The buffer is taken out of the thread-local, not borrowed:
        // rayon may run another layer's call on this thread while this one waits.
        let mut wide = WIDENED.take();
        wide.resize(input.len(), 0);
        wide.par_chunks_mut(WIDEN_CHUNK)
            .zip(input.par_chunks(WIDEN_CHUNK))
            .for_each(|(d, s)| ops.convert(s, d));
        self.packed
            .run::<I16, _, _, _>(self.isa, shape, &wide, &InPlace, epilogue, rows, output);
        WIDENED.set(wide);
    }
}

/// Row groups per rayon task of [`PackedConvI8::run_max_groups`]: their accumulators
/// (a few hundred rows) stay in L2.
const GROUPS_PER_TASK: usize = 32;

/// Values per rayon task when widening a Winograd layer's input.
const WIDEN_CHUNK: usize = 1 << 15;

thread_local! {
    /// The calling thread's widened Winograd input, kept between calls.
    static WIDENED: std::cell::RefCell<Vec<i16>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The calling thread's accumulators of [`PackedConvI8::run_max_groups`] (taken, like
    /// `WIDENED`).
    static MAXED: std::cell::RefCell<Vec<i32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes the accumulators themselves.
struct Raw;

impl gemm::Epilogue<i32, i32> for Raw {
    fn row(&self, _: Isa, acc: &[i32], out: &mut [i32]) {
        out.copy_from_slice(acc);
    }
}

/// int8 inputs widened to i16 with the zero point subtracted while packing, so padding
/// taps (zeros) are exact.
struct Widen {
    zero_point: i16,
}

impl<I: QuantIn> Operands<I, i16> for Widen {
    fn convert(&self, src: &[I], dst: &mut [i16]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s.widen() - self.zero_point;
        }
    }
    fn view<'a>(&self, _: &'a [I]) -> Option<&'a [i16]> {
        None
    }
}

/// int8 inputs as u8 operands, offset by `−MIN` and read in place when they already are u8;
/// padding taps hold the offset zero point.
struct Offset {
    padding: u8,
}

impl<I: QuantIn> Operands<I, u8> for Offset {
    fn convert(&self, src: &[I], dst: &mut [u8]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s.offset();
        }
    }
    fn view<'a>(&self, src: &'a [I]) -> Option<&'a [u8]> {
        I::as_u8(src)
    }
    fn padding(&self) -> u8 {
        self.padding
    }
}

/// Whether `algorithm` computes `shape` with exact i32 accumulators: Winograd's are 4× the
/// direct ones, so it takes a quarter of the depth limit.
fn computes_exactly(algorithm: ConvAlgorithm, shape: &ConvShape) -> bool {
    algorithm.supports(shape)
        && (algorithm != ConvAlgorithm::Winograd || 4 * shape.gemm_k() <= MAX_DEPTH_I8)
}
