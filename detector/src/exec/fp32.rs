//! The fp32 executor: the general [`Executor`] with every layer in fp32, behind the
//! original f32-only API.

use super::executor::{Activation, ExecSetup, Executor};
use super::pillars::PillarInput;
use crate::error::Result;
use crate::graph::Graph;
use crate::post::HeadView;

/// Runs a [`Graph`] in fp32.
pub struct Fp32Executor(Executor);

impl Fp32Executor {
    /// Packs the weights of `graph` and plans its buffers.
    pub fn new(graph: &Graph) -> Result<Self> {
        Executor::new(graph, &ExecSetup::fp32(graph)).map(Self)
    }

    /// Runs one frame; the returned head maps borrow the executor's buffers.
    pub fn run(&mut self, input: &PillarInput) -> Result<HeadView<'_>> {
        self.0.run(input)
    }

    /// As [`Self::run`], calling `observer(layer name, output)` after every layer (stage
    /// timing, calibration statistics).
    pub fn run_observed(
        &mut self,
        input: &PillarInput,
        observer: &mut dyn FnMut(&str, &[f32]),
    ) -> Result<HeadView<'_>> {
        self.0.run_observed(input, &mut |name, out| {
            if let Activation::F32(v) = out {
                observer(name, v);
            }
        })
    }
}
