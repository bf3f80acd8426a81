//! fp32 convolution, transposed convolution and linear layers with fused bias + ReLU.

use super::algorithm::{ConvAlgorithm, Packed};
use super::cpu::{self, Isa};
use super::epilogue::BiasRelu;
use super::gemm::{Family, InPlace, Rows};
use super::micro::F32;
use super::shape::ConvShape;
use crate::error::{QuantError, Result};

/// fp32 weights packed once for the micro-kernel, with their bias and activation.
#[derive(Debug, Clone)]
pub struct PackedConvF32 {
    shape: ConvShape,
    packed: Packed<f32>,
    epilogue: BiasRelu,
    isa: Isa,
}

impl PackedConvF32 {
    /// Packs `weights` (OIHW `[out_c][in_c][k][k]` for a convolution, PyTorch's IOHW
    /// `[in_c][out_c][k][k]` for a transposed one) with an optional per-output-channel
    /// `bias` and a fused ReLU. Uses [`cpu::selected`]'s path and
    /// [`ConvAlgorithm::best_for`] the shape.
    pub fn new(
        shape: ConvShape,
        weights: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
    ) -> Result<Self> {
        Self::with_algorithm(shape, weights, bias, relu, ConvAlgorithm::best_for(&shape))
    }

    /// As [`Self::new`] with an explicit algorithm (an error if it cannot compute the shape).
    pub fn with_algorithm(
        shape: ConvShape,
        weights: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        algorithm: ConvAlgorithm,
    ) -> Result<Self> {
        shape.validate(usize::MAX)?;
        check_algorithm(algorithm, &shape, algorithm.supports(&shape))?;
        check_len("weights", weights.len(), shape.weights_len())?;
        let bias = match bias {
            Some(b) => {
                check_len("bias", b.len(), shape.out_c)?;
                b.to_vec()
            }
            None => vec![0.0; shape.out_c],
        };
        Ok(Self {
            packed: Packed::pack(algorithm, &shape, weights, F32::KSTEP, |w| w, |w| w),
            shape,
            epilogue: BiasRelu { bias, relu },
            isa: cpu::selected(),
        })
    }

    /// The same layer on an explicit kernel path (an error if this CPU lacks it).
    pub fn with_isa(mut self, isa: Isa) -> Result<Self> {
        self.isa = checked_isa(isa, "PackedConvF32")?;
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

    /// `output = relu?(conv(input) + bias)` on NHWC buffers of the construction shape.
    pub fn run(&self, input: &[f32], output: &mut [f32]) -> Result<()> {
        self.run_at(self.shape.in_h, self.shape.in_w, input, output)
    }

    /// As [`Self::run`] on an input of `in_h`×`in_w` pixels (e.g. a linear layer over a
    /// varying number of rows).
    pub fn run_at(
        &self,
        in_h: usize,
        in_w: usize,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<()> {
        let shape = self.shape.with_input(in_h, in_w);
        shape.check_buffers(input.len(), output.len())?;
        self.gemm(&shape, Rows::All(shape.gemm_rows()), input, output);
        Ok(())
    }

    /// As [`Self::run`], computing only the output pixels listed in `rows` (strictly
    /// ascending `y·out_w + x`; for a transposed convolution, input pixels, each writing its
    /// `stride`×`stride` block) and leaving every other output value untouched. Values are
    /// identical to a full run's.
    pub fn run_rows(&self, input: &[f32], rows: &[u32], output: &mut [f32]) -> Result<()> {
        self.shape.check_buffers(input.len(), output.len())?;
        check_rows(&self.shape, rows)?;
        self.gemm(&self.shape, Rows::Listed(rows), input, output);
        Ok(())
    }

    fn gemm(&self, shape: &ConvShape, rows: Rows<'_>, input: &[f32], output: &mut [f32]) {
        self.packed.run::<F32, _, _, _>(
            self.isa,
            shape,
            input,
            &InPlace,
            &self.epilogue,
            rows,
            output,
        );
    }
}

/// Checks a sparse row list: strictly ascending and inside the layer.
pub(crate) fn check_rows(shape: &ConvShape, rows: &[u32]) -> Result<()> {
    let limit = shape.gemm_rows();
    for (i, w) in rows.windows(2).enumerate() {
        if w[1] <= w[0] {
            return Err(QuantError::Kernel {
                op: "run_rows",
                reason: format!(
                    "rows must be strictly ascending: rows[{}] = {} follows {}",
                    i + 1,
                    w[1],
                    w[0]
                ),
            });
        }
    }
    match rows.last() {
        Some(&last) if last as usize >= limit => Err(QuantError::Kernel {
            op: "run_rows",
            reason: format!("row {last} is past the layer's {limit} rows"),
        }),
        _ => Ok(()),
    }
}

pub(crate) fn check_len(what: &'static str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(QuantError::Length {
            what,
            got,
            expected,
        })
    }
}

/// An error unless `algorithm` can compute `shape` (`supported`).
pub(crate) fn check_algorithm(
    algorithm: ConvAlgorithm,
    shape: &ConvShape,
    supported: bool,
) -> Result<()> {
    if supported {
        Ok(())
    } else {
        Err(QuantError::Kernel {
            op: "with_algorithm",
            reason: format!("{} cannot compute {shape:?}", algorithm.name()),
        })
    }
}

pub(crate) fn checked_isa(isa: Isa, op: &'static str) -> Result<Isa> {
    if isa.is_available() {
        Ok(isa)
    } else {
        Err(QuantError::Kernel {
            op,
            reason: format!("the {isa} path needs CPU features this machine lacks"),
        })
    }
}
