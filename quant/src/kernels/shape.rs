//! Convolution geometry: the shape of one layer and how it lowers to a GEMM.
//!
//! A convolution with kernel `k`, stride `s`, padding `p` is a GEMM with one row per output
//! pixel, `K = k·k·in_c` (taps in `(ky, kx)` order, channels innermost, matching NHWC input)
//! and `N = out_c`. A transposed convolution with kernel = stride `s` touches each output
//! pixel from exactly one input pixel, so it is `s·s` GEMMs ("groups") sharing one row per
//! input pixel, `K = in_c`, `N = out_c` each; group `g = dy·s + dx` writes output pixel
//! `(iy·s + dy, ix·s + dx)`.

use crate::error::{QuantError, Result};

/// Geometry of a convolution, transposed convolution or linear layer over NHWC tensors
/// (batch 1: `[in_h][in_w][in_c]` in, `[out_h][out_w][out_c]` out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_c: usize,
    /// Square kernel side.
    pub kernel: usize,
    pub stride: usize,
    /// Zero padding on every side (convolution only).
    pub pad: usize,
    /// Transposed convolution with `kernel == stride` and no padding.
    pub transposed: bool,
}

impl ConvShape {
    /// A convolution (`kernel`×`kernel`, `stride`, `pad`).
    pub fn conv(
        in_h: usize,
        in_w: usize,
        in_c: usize,
        out_c: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        Self {
            in_h,
            in_w,
            in_c,
            out_c,
            kernel,
            stride,
            pad,
            transposed: false,
        }
    }

    /// A transposed convolution with kernel = stride (each input pixel becomes a
    /// `stride`×`stride` output block).
    pub fn deconv(in_h: usize, in_w: usize, in_c: usize, out_c: usize, stride: usize) -> Self {
        Self {
            in_h,
            in_w,
            in_c,
            out_c,
            kernel: stride,
            stride,
            pad: 0,
            transposed: true,
        }
    }

    /// A linear layer over `rows` vectors of `in_c` values: a 1×1 convolution of a
    /// `rows`×1 image.
    pub fn linear(rows: usize, in_c: usize, out_c: usize) -> Self {
        Self::conv(rows, 1, in_c, out_c, 1, 1, 0)
    }

    /// The same layer on an input of another size.
    pub fn with_input(self, in_h: usize, in_w: usize) -> Self {
        Self { in_h, in_w, ..self }
    }

    /// Output height.
    pub fn out_h(&self) -> usize {
        out_extent(self.in_h, self)
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        out_extent(self.in_w, self)
    }

    /// Number of input values (`in_h·in_w·in_c`).
    pub fn input_len(&self) -> usize {
        self.in_h * self.in_w * self.in_c
    }

    /// Number of output values (`out_h·out_w·out_c`).
    pub fn output_len(&self) -> usize {
        self.out_h() * self.out_w() * self.out_c
    }

    /// Number of weights (`out_c·in_c·kernel²`).
    pub fn weights_len(&self) -> usize {
        self.out_c * self.in_c * self.kernel * self.kernel
    }

    /// Multiply-accumulates of one run (padding taps included, as is the convention).
    pub fn macs(&self) -> u64 {
        let per_out = (self.in_c
            * if self.transposed {
                1
            } else {
                self.kernel * self.kernel
            }) as u64;
        self.output_len() as u64 * per_out
    }

    /// GEMM rows: output pixels, or input pixels for a transposed convolution.
    pub(crate) fn gemm_rows(&self) -> usize {
        if self.transposed {
            self.in_h * self.in_w
        } else {
            self.out_h() * self.out_w()
        }
    }

    /// GEMM depth `K`.
    pub(crate) fn gemm_k(&self) -> usize {
        if self.transposed {
            self.in_c
        } else {
            self.kernel * self.kernel * self.in_c
        }
    }

    /// Number of GEMMs sharing the rows (`stride²` for a transposed convolution, else 1).
    pub(crate) fn groups(&self) -> usize {
        if self.transposed {
            self.stride * self.stride
        } else {
            1
        }
    }

    /// Index into the caller's weights of tap `k` (GEMM depth), output channel `n`, group
    /// `g`: OIHW `[out_c][in_c][kh][kw]` for a convolution, PyTorch's IOHW
    /// `[in_c][out_c][kh][kw]` for a transposed one.
    pub(crate) fn weight_index(&self, g: usize, k: usize, n: usize) -> usize {
        let kk = self.kernel;
        if self.transposed {
            ((k * self.out_c + n) * kk + g / kk) * kk + g % kk
        } else {
            let (tap, ic) = (k / self.in_c, k % self.in_c);
            ((n * self.in_c + ic) * kk + tap / kk) * kk + tap % kk
        }
    }

    /// Checks the geometry, `what` naming the layer in errors.
    pub(crate) fn validate(&self, max_k: usize) -> Result<()> {
        let bad = |name: &'static str, value: usize, reason: &'static str| {
            Err(QuantError::Parameter {
                name,
                value: value as f64,
                reason,
            })
        };
        if self.in_c == 0 {
            return bad("in_c", 0, "a layer needs at least one input channel");
        }
        if self.out_c == 0 {
            return bad("out_c", 0, "a layer needs at least one output channel");
        }
        if self.kernel == 0 || self.stride == 0 {
            return bad("kernel/stride", 0, "kernel and stride must be positive");
        }
        if self.transposed && (self.kernel != self.stride || self.pad != 0) {
            return bad(
                "kernel",
                self.kernel,
                "a transposed convolution needs kernel == stride and no padding",
            );
        }
        if !self.transposed && self.pad >= self.kernel {
            return bad("pad", self.pad, "padding must be smaller than the kernel");
        }
        if self.gemm_k() > max_k {
            return bad(
                "kernel·kernel·in_c",
                self.gemm_k(),
                "too deep for exact i32 accumulation",
            );
        }
        Ok(())
    }

    /// Checks the input and output buffer lengths.
    pub(crate) fn check_buffers(&self, input: usize, output: usize) -> Result<()> {
        if input != self.input_len() {
            return Err(QuantError::Length {
                what: "conv input",
                got: input,
                expected: self.input_len(),
            });
        }
        if output != self.output_len() {
            return Err(QuantError::Length {
                what: "conv output",
                got: output,
                expected: self.output_len(),
            });
        }
        Ok(())
    }
}

fn out_extent(input: usize, s: &ConvShape) -> usize {
    if s.transposed {
        input * s.stride
    } else if input + 2 * s.pad < s.kernel {
        0
    } else {
        (input + 2 * s.pad - s.kernel) / s.stride + 1
    }
}
