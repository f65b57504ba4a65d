//! A trainer's whole state, to go on later exactly as it would have gone on: what a
//! checkpoint holds of the trainer (see [`super::Trainer::snapshot`]).

use crate::error::{Error, Result};
use crate::shape::{Inputs, LstmOutput};
use crate::tensor::Tensor;

/// Everything a trainer's next step depends on besides its options and its batch.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerSnapshot {
    /// Steps taken (Adam's bias corrections and the dropout masks follow it).
    pub step: u64,
    /// The parameters, flat in [`super::ParamLayout`] order.
    pub params: Vec<f32>,
    /// SGD's momentum buffer or Adam's first moment, flat like `params` (empty before the
    /// first step and for SGD without momentum).
    pub moment1: Vec<f32>,
    /// Adam's second moment (empty for SGD).
    pub moment2: Vec<f32>,
    /// With [`super::TrainOptions::carry_state`]: the state the next step starts from
    /// (`h_n` `[D*L, B, H_out]`, `c_n` `[D*L, B, H]`), none for zeros.
    pub carried: Option<(Tensor, Tensor)>,
}

impl TrainerSnapshot {
    /// Checks that the snapshot fits a trainer of `params` parameters.
    pub fn check(&self, params: usize) -> Result<()> {
        for (what, len) in [
            ("parameters", self.params.len()),
            ("first moments", self.moment1.len()),
            ("second moments", self.moment2.len()),
        ] {
            let fits = len == params || (len == 0 && what != "parameters");
            if !fits {
                return Err(Error::Input(format!(
                    "the snapshot holds {len} {what}, this model has {params} parameters"
                )));
            }
        }
        Ok(())
    }
}

/// A forward-only model (no dropout) at a trainer's current weights: what validation runs.
pub trait Inference {
    /// The forward pass, shapes as in [`Inputs`]; the output is the head's when the model
    /// has one. Float inputs: a model with an embedding is given its rows looked up.
    fn forward_with(&mut self, inputs: &Inputs<'_>) -> Result<LstmOutput>;
}

impl Inference for crate::cpu::FastCpuLstm {
    fn forward_with(&mut self, inputs: &Inputs<'_>) -> Result<LstmOutput> {
        crate::cpu::FastCpuLstm::forward_with(self, inputs)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Inference for crate::gpu::GpuLstm {
    fn forward_with(&mut self, inputs: &Inputs<'_>) -> Result<LstmOutput> {
        crate::gpu::GpuLstm::forward_with(self, inputs)
    }
}
