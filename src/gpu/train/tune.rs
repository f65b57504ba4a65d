//! Measuring the kernel choices of a training step: the recurrent kernel, gemv for few rows,
//! the backward step's tiles and the weight-gradient products' split of K, in that order,
//! each candidate's gradients checked against the CPU reference in f64 and whole steps timed
//! (see `forward/tune.rs`, which does the forward pass's and holds the shared harness).

use super::trainer::GpuTrainer;
use crate::check::GPU_GRADIENTS_VS_F64;
use crate::cpu::CpuLstm;
use crate::error::Result;
use crate::gpu::device::GpuContext;
use crate::gpu::forward::tune::{
    ran_the_candidate, random_input, random_tensor, shape_and_class, time_runs, tune_families,
    CHECK_STEPS, TUNE_SEED,
};
use crate::gpu::wisdom::search::{Budget, Trial, TuneReport};
use crate::gpu::wisdom::{Choice, Family};
use crate::loss::{Loss, Target};
use crate::shape::{Dims, Inputs};
use crate::train::{OptimizerConfig, OptimizerKind, TrainOptions};
use crate::{LstmConfig, LstmWeights};

/// Every parameter's gradient, in `named_tensors` order, as f64.
fn flat_gradients(grads: &LstmWeights) -> Vec<f64> {
    grads
        .named_tensors()
        .into_iter()
        .flat_map(|(_, t)| t.data().iter().map(|&v| v as f64))
        .collect()
}

/// Tunes a training step of a model like `config` (MSE on the LSTM's output, SGD) at `dims`
/// on `ctx`. The choices go into the context's wisdom under the `train` class of the shape;
/// [`GpuContext::save_wisdom`] writes them to the file.
pub fn tune_training(
    ctx: &GpuContext,
    config: &LstmConfig,
    dims: Dims,
    budget: Budget,
) -> Result<TuneReport> {
    let config = config.clone().batch_first(false);
    let weights = LstmWeights::init(&config, TUNE_SEED)?;
    let check_dims = Dims {
        seq_len: dims.seq_len.min(CHECK_STEPS),
        ..dims
    };
    let width = config.num_directions() * config.output_size();
    let target_of = |d: Dims, seed: u64| -> Result<Target> {
        let values = random_tensor(&[d.seq_len, d.batch, width], seed)?;
        Ok(Target::Values(values))
    };
    let (x_check, x) = (
        random_input(&config, check_dims, TUNE_SEED + 1)?,
        random_input(&config, dims, TUNE_SEED + 2)?,
    );
    let (target_check, target) = (
        target_of(check_dims, TUNE_SEED + 3)?,
        target_of(dims, TUNE_SEED + 4)?,
    );
    let (_, _, want) = CpuLstm::<f64>::new(&weights).loss_gradients(
        &Inputs::new(&x_check.map(f64::from)),
        Loss::Mse,
        &target_check,
    )?;
    let reference = flat_gradients(&want.to_weights(&weights)?);
    let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Sgd, 1e-3));
    let mut run = |candidate: Choice, runs: usize| -> Result<Trial> {
        let mut trainer = GpuTrainer::new(ctx, &weights, options)?;
        let got = trainer.gradients(&Inputs::new(&x_check), &target_check)?;
        ran_the_candidate(candidate, trainer.kernel()?)?;
        let output = flat_gradients(&got.grads);
        let times_ms = time_runs(runs, &mut || Ok(trainer.step_timed(&x, &target)?.1))?;
        Ok(Trial {
            output: output.into_iter().map(|v| v as f32).collect(),
            times_ms,
        })
    };
    tune_families(
        ctx,
        shape_and_class(&config, dims.batch, true),
        &[
            Family::Recurrence,
            Family::Gemv,
            Family::Backward,
            Family::KSplit,
        ],
        budget,
        (&reference, GPU_GRADIENTS_VS_F64),
        &mut run,
    )
}
