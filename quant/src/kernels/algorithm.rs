//! Which algorithm computes a layer, chosen once when its weights are packed.

use super::cpu::Isa;
use super::gemm::{self, Epilogue, Operands, PackedB, Rows};
use super::shape::ConvShape;
use super::winograd::{self, Ring, WinogradB, WinogradFamily};

/// How a convolution is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvAlgorithm {
    /// One GEMM over the implicit im2col matrix: every shape.
    Im2col,
    /// Winograd F(2×2, 3×3): 3×3 convolutions with stride 1 and padding 1; 2.25× fewer
    /// multiplies, outputs computed in 2×2 tiles aligned to the map's origin.
    Winograd,
}

impl ConvAlgorithm {
    /// Every algorithm, the general one first.
    pub const ALL: [ConvAlgorithm; 2] = [Self::Im2col, Self::Winograd];

    /// The fastest algorithm for an fp32 layer of the shape.
    pub fn best_for(shape: &ConvShape) -> Self {
        if Self::Winograd.supports(shape) {
            Self::Winograd
        } else {
            Self::Im2col
        }
    }

    /// The fastest algorithm for an int8 layer of the shape on kernel path `isa`. On the
    /// VNNI and AMX paths im2col's `vpdpbusd` / `tdpbusd` (four products per lane, u8 rows
    /// read as they are) beats Winograd's `vpdpwssd` on widened transforms at every
    /// backbone shape, and skips single empty cells instead of 2×2 tiles.
    pub fn best_int8_for(shape: &ConvShape, isa: Isa) -> Self {
        if isa >= Isa::Avx512Vnni {
            Self::Im2col
        } else {
            Self::best_for(shape)
        }
    }

    /// Whether the algorithm computes layers of this shape.
    pub fn supports(self, shape: &ConvShape) -> bool {
        match self {
            Self::Im2col => true,
            Self::Winograd => winograd::applies(shape),
        }
    }

    /// Side of the output blocks computed together: an output whose block holds a
    /// computed output depends on the block's whole input patch.
    pub fn output_tile(self) -> usize {
        match self {
            Self::Im2col => 1,
            Self::Winograd => 2,
        }
    }

    /// The name printed by reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Im2col => "im2col",
            Self::Winograd => "winograd-f2x2-3x3",
        }
    }
}

/// Weights packed for one algorithm.
#[derive(Debug, Clone)]
pub(crate) enum Packed<A> {
    Im2col(PackedB<A>),
    Winograd(WinogradB<A>),
}

impl<A: Copy + Default> Packed<A> {
    /// Packs caller weights for `algorithm` (which must support the shape): `widen` to the
    /// exact transform type, `narrow` to the packed operand.
    pub(crate) fn pack<W: Copy, T: Ring>(
        algorithm: ConvAlgorithm,
        shape: &ConvShape,
        weights: &[W],
        kstep: usize,
        widen: impl Fn(W) -> T,
        narrow: impl Fn(T) -> A,
    ) -> Self {
        match algorithm {
            ConvAlgorithm::Im2col => {
                Self::Im2col(PackedB::pack(shape, weights, kstep, kstep, |w| {
                    narrow(widen(w))
                }))
            }
            ConvAlgorithm::Winograd => {
                Self::Winograd(WinogradB::pack(shape, weights, kstep, widen, narrow))
            }
        }
    }

    pub(crate) fn algorithm(&self) -> ConvAlgorithm {
        match self {
            Self::Im2col(_) => ConvAlgorithm::Im2col,
            Self::Winograd(_) => ConvAlgorithm::Winograd,
        }
    }

    /// Runs the layer (see [`gemm::run`] for the contract).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run<F: WinogradFamily<B = A>, In: Sync, O: Send, E: Epilogue<F::Acc, O>>(
        &self,
        isa: Isa,
        shape: &ConvShape,
        input: &[In],
        ops: &impl Operands<In, F::A>,
        epilogue: &E,
        rows: Rows<'_>,
        output: &mut [O],
    ) {
        match self {
            Self::Im2col(b) => {
                gemm::run::<F, _, _, _>(isa, shape, b, input, ops, None, epilogue, rows, output)
            }
            Self::Winograd(b) => {
                winograd::run::<F, _, _, _>(isa, shape, b, input, ops, epilogue, rows, output)
            }
        }
    }
}
