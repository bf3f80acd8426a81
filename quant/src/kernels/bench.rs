//! The layers that `lidarq kernels --bench` and the criterion bench time: the PointPillars
//! backbone's 3×3 convolutions, on fixed synthetic data (throughput does not depend on the
//! values), as int8 (u8 in, requantize + ReLU to i8) and fp32 (ReLU) kernels.

use super::{ConvAlgorithm, ConvShape, OutputStage, PackedConvF32, PackedConvI8};
use crate::error::Result;
use crate::{QuantizedMultiplier, Requantizer};

/// The KITTI PointPillars backbone's 3×3 convolutions: (channels, height, width).
pub const BACKBONE_3X3: [(usize, usize, usize); 3] =
    [(64, 248, 216), (128, 124, 108), (256, 62, 54)];

/// One layer's weights and input in both precisions.
pub struct LayerData {
    pub shape: ConvShape,
    pub input_u8: Vec<u8>,
    pub input_f32: Vec<f32>,
    weights_i8: Vec<i8>,
    weights_f32: Vec<f32>,
    requantizer: Requantizer,
}

impl LayerData {
    /// Data for a 3×3, stride-1, padding-1 convolution of `channels` → `channels`.
    pub fn new(channels: usize, h: usize, w: usize) -> Result<Self> {
        let shape = ConvShape::conv(h, w, channels, channels, 3, 1, 1);
        let weights_i8: Vec<i8> = (0..shape.weights_len())
            .map(|i| (i * 37 % 255) as i8)
            .collect();
        let input_u8: Vec<u8> = (0..shape.input_len())
            .map(|i| (i * 13 % 256) as u8)
            .collect();
        let multiplier = QuantizedMultiplier::from_real(1e-4)?;
        Ok(Self {
            shape,
            weights_f32: weights_i8.iter().map(|&v| f32::from(v) * 1e-3).collect(),
            input_f32: input_u8.iter().map(|&v| f32::from(v) * 1e-2).collect(),
            requantizer: Requantizer::new(
                vec![multiplier; channels],
                vec![100; channels],
                -128,
                -128,
                127,
            )?,
            weights_i8,
            input_u8,
        })
    }

    /// The int8 and fp32 kernels of the layer by `algorithm`.
    pub fn kernels(&self, algorithm: ConvAlgorithm) -> Result<(PackedConvI8, PackedConvF32)> {
        let stage = OutputStage::Requantize(self.requantizer.clone());
        Ok((
            PackedConvI8::with_algorithm(self.shape, &self.weights_i8, 3, stage, algorithm)?,
            PackedConvF32::with_algorithm(self.shape, &self.weights_f32, None, true, algorithm)?,
        ))
    }
}
