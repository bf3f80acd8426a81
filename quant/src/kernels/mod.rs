//! CPU kernels: int8 and fp32 convolution, transposed convolution (kernel = stride) and
//! linear layers, with fused epilogues, on the best instruction set chosen at run time
//! (scalar, AVX2 + FMA, AVX-512 VNNI and AMX-INT8 for the int8 GEMM).
//!
//! # Layout
//! Activations are NHWC with batch 1: `[h][w][c]`, channels innermost. Weights are given in
//! PyTorch order — OIHW `[out_c][in_c][k][k]` for a convolution, IOHW `[in_c][out_c][k][k]`
//! for a transposed convolution — and packed once at construction. A linear layer is a 1×1
//! convolution of an `rows`×1 image ([`ConvShape::linear`]), weights `[out_c][in_c]`.
//!
//! # API
//! ```text
//! ConvShape::conv(in_h, in_w, in_c, out_c, kernel, stride, pad)   // 3×3 s1/s2 p1, 1×1, …
//! ConvShape::deconv(in_h, in_w, in_c, out_c, stride)              // kernel = stride
//! ConvShape::linear(rows, in_c, out_c)
//!
//! PackedConvF32::new(shape, weights: &[f32], bias: Option<&[f32]>, relu: bool) -> Result<Self>
//! PackedConvF32::run(&self, input: &[f32], output: &mut [f32]) -> Result<()>
//!
//! PackedConvI8::new(shape, weights: &[i8], input_zero_point: i32, stage: OutputStage) -> Result<Self>
//!     OutputStage::Requantize(Requantizer)   → run writes i8 or u8
//!     OutputStage::Dequantize(Dequantizer)   → run writes f32
//! PackedConvI8::run::<I: u8|i8, O: i8|u8|f32>(&self, input: &[I], output: &mut [O]) -> Result<()>
//!
//! run_at(in_h, in_w, input, output)   // same layer, another input size
//! run_rows(input, rows: &[u32], output) // only the listed output pixels (ascending; input
//!                                       // pixels for a transposed conv), rest untouched
//! PackedConvI8::run_max_groups(input, offsets: &[usize], output) // linear layer, then the
//!                                       // max over row groups, rescaling one row per group
//!                                       // (exact where max_commutes::<I>())
//! with_isa(isa) -> Result<Self>       // force a path (tests, benchmarks)
//! algorithm()                         // ConvAlgorithm::Im2col or ::Winograd, chosen by
//!                                     // best_for (fp32) / best_int8_for (int8) at new();
//!                                     // with_algorithm(…, algorithm) picks one
//! cpu::selected(), cpu::describe()    // the path chosen and why
//!
//! Quantizer::new(&[QuantParams])      // per tensor (one) or per channel of rows
//! quantize_i8(isa, &quantizer, x: &[f32], out: &mut [i8]) // QuantParams::quantize, vectorized
//!
//! attend(isa, qkv, channels, heads, out, &mut AttentionScratch) // softmax attention of
//!                                       // one window's tokens, q | k | v rows
//! ```
//! Output buffers are the caller's; after a thread's first call at a given size nothing is
//! allocated (an int8 Winograd call that rayon runs on a thread inside another one's wait
//! allocates its widened input). Work is split over rayon's pool by output rows; every
//! output value is computed by one task in a fixed order, so results are bit-identical
//! whatever the thread count.
//!
//! # Numeric guarantees
//! * int8: the i32 accumulator is the exact `Σ (x − zp_x) · w` (activations are widened to
//!   i16 with the zero point subtracted, products summed in pairs by `vpmaddwd`, or by
//!   `vpdpwssd` on the AVX-512 VNNI path, which sums in another order; im2col on the VNNI
//!   path sums raw u8 quads with `vpdpbusd` (on the AMX path `tdpbusd` tiles) from
//!   accumulators that start at `−zp·Σw`, the same integer mod 2³²; the depth limit [`MAX_DEPTH_I8`] rules out overflow; Winograd
//!   computes 4× the accumulator in wrapping i32, so it runs only up to a quarter of that
//!   depth), and the epilogue is the
//!   scalar [`Requantizer`](crate::Requantizer) / [`Dequantizer`](crate::Dequantizer) bit for bit.
//!   Every path therefore produces identical bytes.
//! * fp32: each GEMM sum is accumulated in increasing `k` with one fused multiply-add per
//!   term on every path (scalar uses `f32::mul_add`), and Winograd's transforms are plain
//!   additions in a fixed order, so AVX2 and scalar agree bit for bit. Versus an exact sum,
//!   im2col's error is that of sequential f32 FMA; Winograd's also carries the roundings
//!   of the transformed inputs and filters, bounded by their magnitudes (tests).
//! * quantize: exact float steps (trunc, compare, clamp), identical to `QuantParams::quantize`.
//! * attention: every product and sum is rounded on its own in a fixed order (no FMA), so
//!   the AVX2 build of the portable loops gives the same bits.

mod algorithm;
mod amx;
mod attention;
pub mod bench;
mod conv_f32;
mod conv_i8;
pub mod cpu;
mod epilogue;
mod gemm;
mod micro;
pub mod peak;
mod quantize;
mod shape;
mod winograd;

pub use algorithm::ConvAlgorithm;
pub use attention::{AttentionScratch, attend};
pub use conv_f32::PackedConvF32;
pub use conv_i8::{ConvOutI8, OutputStage, PackedConvI8, QuantIn};
pub use cpu::Isa;
pub use epilogue::QuantOut;
pub use micro::MAX_DEPTH_I8;
pub use quantize::{Quantizer, quantize_i8};
pub use shape::ConvShape;
