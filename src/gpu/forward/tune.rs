//! Measuring kernel choices on the device: each family's candidates ([`candidates`]) are
//! pinned on the context one at a time, run on a short input checked against the CPU
//! reference in f64, then timed (timestamp queries; wall clock where the device has none),
//! and the fastest correct one is kept in the context's wisdom ([`search::tune`] decides).
//! Families are measured in order, each with the earlier ones' choices in place.
//!
//! The weights are random ones of the model's configuration: which kernel is fastest
//! depends on the shapes, not on the values.

use std::time::Instant;

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::model::GpuLstm;
use crate::check::Tolerance;
use crate::cpu::CpuLstm;
use crate::error::{Error, Result};
use crate::gpu::device::GpuContext;
use crate::gpu::kernels::RecurrentShape;
use crate::gpu::wisdom::search::{self, Budget, FamilyReport, Trial, Trials, TuneReport};
use crate::gpu::wisdom::{candidates, Choice, Entry, Family, ShapeClass};
use crate::shape::{Dims, Inputs, LstmOutput};
use crate::tensor::Tensor;
use crate::{LstmConfig, LstmWeights};

/// Steps of the input each candidate's output is checked on (at most T): enough for every
/// kernel's staging and chunk boundaries to matter little, few enough for the f64 reference
/// to stay cheap at large H.
pub(crate) const CHECK_STEPS: usize = 8;

/// What [`crate::gpu::Tuning::Measure`] spends on a new shape before its first run.
pub const MEASURE_BUDGET: Budget = Budget {
    seconds: 5.0,
    runs: 3,
};

/// The seed of the tuner's random weights and inputs.
pub(crate) const TUNE_SEED: u64 = 0x7475_6e65;

/// The recurrent shape and class of `config` at batch `batch`.
pub(crate) fn shape_and_class(
    config: &LstmConfig,
    batch: usize,
    training: bool,
) -> (RecurrentShape, ShapeClass) {
    let shape = RecurrentShape {
        hidden: config.hidden_size,
        hidden_out: config.output_size(),
        batch,
    };
    (
        shape,
        ShapeClass::of(shape, config.num_directions(), training),
    )
}

/// A random `[T, B, I]` input (`[B, T, I]` when `batch_first`) in [-1, 1).
pub(crate) fn random_input(config: &LstmConfig, dims: Dims, seed: u64) -> Result<Tensor> {
    let (t, b, i) = (dims.seq_len, dims.batch, config.input_size);
    let shape = if config.batch_first {
        [b, t, i]
    } else {
        [t, b, i]
    };
    random_tensor(&shape, seed)
}

/// A tensor of `shape` with values in [-1, 1) from `seed`.
pub(crate) fn random_tensor(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = StdRng::seed_from_u64(seed);
    Tensor::try_from_fn("the tuner's random input", shape.to_vec(), |_| {
        rng.random_range(-1.0..1.0)
    })
}

/// Output, h_n and c_n one after the other, as f64.
pub(crate) fn flat_output<T: Copy + Into<f64>>(out: &LstmOutput<T>) -> Vec<f64> {
    [&out.output, &out.h_n, &out.c_n]
        .iter()
        .flat_map(|t| t.data().iter().map(|&v| v.into()))
        .collect()
}

/// Lifts the pins of a class's families when the tuning ends, however it ends.
struct Pins<'a> {
    ctx: &'a GpuContext,
    class: ShapeClass,
}

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        for family in Family::ALL {
            self.ctx.pin_choice(family, self.class, None);
        }
    }
}

/// What one candidate's run needs: run it (pinned) `runs` times after a warmup and return
/// its checked output and times.
pub(crate) type RunCandidate<'r> = dyn FnMut(Choice, usize) -> Result<Trial> + 'r;

/// Measures `families` for `shape` (of `class`) in order, within `budget` (split evenly among
/// them), keeping each family's winner in the context's wisdom (not yet saved to its file).
pub(crate) fn tune_families(
    ctx: &GpuContext,
    (shape, class): (RecurrentShape, ShapeClass),
    families: &[Family],
    budget: Budget,
    (reference, tolerance): (&[f64], Tolerance),
    run: &mut RunCandidate<'_>,
) -> Result<TuneReport> {
    let started = Instant::now();
    ctx.mark_measured(class);
    let _pins = Pins { ctx, class };
    let caps = ctx.caps();
    let share = Budget {
        seconds: budget.seconds / families.len().max(1) as f64,
        runs: budget.runs,
    };
    let mut reports = Vec::new();
    for &family in families {
        let list = candidates(family, shape, &caps)?;
        let table = list[0];
        let mut trials = Pinned {
            ctx,
            class,
            family,
            run: &mut *run,
            started: Instant::now(),
        };
        let outcome = search::tune(&list, reference, tolerance, share, &mut trials);
        let table_ms = outcome.table_ms;
        let chosen = outcome.best.map_or((table, None), |(c, ms)| (c, Some(ms)));
        // the later families are measured with this one's choice in place
        ctx.pin_choice(family, class, Some(chosen.0));
        if let Some(tuned_ms) = chosen.1 {
            let entry = Entry {
                choice: chosen.0,
                table,
                table_ms,
                tuned_ms,
            };
            ctx.record_choice(family, class, entry)?;
        }
        reports.push(FamilyReport {
            family,
            table: (table, table_ms),
            chosen,
            verdicts: outcome.verdicts,
        });
    }
    Ok(TuneReport {
        class,
        families: reports,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// [`Trials`] that pin each candidate on the context before running it.
struct Pinned<'a, 'r> {
    ctx: &'a GpuContext,
    class: ShapeClass,
    family: Family,
    run: &'a mut RunCandidate<'r>,
    started: Instant,
}

impl Trials for Pinned<'_, '_> {
    fn run(&mut self, candidate: Choice, runs: usize) -> Result<Trial> {
        self.ctx
            .pin_choice(self.family, self.class, Some(candidate));
        (self.run)(candidate, runs)
    }

    fn elapsed_s(&mut self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Times `runs` calls of `once` (which returns its GPU milliseconds where the device has
/// timestamps) after one warmup; wall-clock milliseconds where it has none.
pub(crate) fn time_runs(
    runs: usize,
    once: &mut dyn FnMut() -> Result<Option<f64>>,
) -> Result<Vec<f64>> {
    once()?;
    (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            let gpu_ms = once()?;
            Ok(gpu_ms.unwrap_or_else(|| t0.elapsed().as_secs_f64() * 1e3))
        })
        .collect()
}

/// An error when the pass ran another recurrent kernel than the pinned candidate.
pub(crate) fn ran_the_candidate(
    candidate: Choice,
    ran: crate::gpu::kernels::Recurrence,
) -> Result<()> {
    match candidate {
        Choice::Recurrence(v) if v != ran => Err(Error::Internal(format!(
            "the pass ran `{ran}`, not the candidate `{v}`"
        ))),
        _ => Ok(()),
    }
}

/// Tunes the forward pass of a model like `config` at `dims` on `ctx`: the recurrent kernel,
/// then gemv against the gemm for few rows. The choices go into the context's wisdom, used by
/// every model prepared after; [`GpuContext::save_wisdom`] writes them to the file.
pub fn tune_forward(
    ctx: &GpuContext,
    config: &LstmConfig,
    dims: Dims,
    budget: Budget,
) -> Result<TuneReport> {
    let weights = LstmWeights::init(config, TUNE_SEED)?;
    let check_dims = Dims {
        seq_len: dims.seq_len.min(CHECK_STEPS),
        ..dims
    };
    let x_check = random_input(config, check_dims, TUNE_SEED + 1)?;
    let x = random_input(config, dims, TUNE_SEED + 2)?;
    let reference = flat_output(
        &CpuLstm::<f64>::new(&weights).forward_with(&Inputs::new(&x_check.map(f64::from)))?,
    );
    let uploaded = GpuLstm::new(ctx, &weights)?.gpu_weights();
    let mut run = |candidate: Choice, runs: usize| -> Result<Trial> {
        let mut model = GpuLstm::with_weights(ctx, &uploaded);
        let output = flat_output(&model.forward_with(&Inputs::new(&x_check))?);
        ran_the_candidate(candidate, model.kernel()?.0)?;
        let inputs = Inputs::new(&x);
        let times_ms = time_runs(runs, &mut || Ok(model.forward_timed(&inputs)?.1))?;
        Ok(Trial {
            output: output.into_iter().map(|v| v as f32).collect(),
            times_ms,
        })
    };
    tune_families(
        ctx,
        shape_and_class(config, dims.batch, false),
        &[Family::Recurrence, Family::Gemv],
        budget,
        (&reference, crate::check::GPU_VS_F64),
        &mut run,
    )
}

/// Under [`crate::gpu::Tuning::Measure`], measures a class with nothing saved before its first
/// run (`tune` measures it), and saves the wisdom (a failed save keeps the choices in memory,
/// with a warning).
pub(crate) fn measure_if_new(
    ctx: &GpuContext,
    class: ShapeClass,
    tune: impl FnOnce() -> Result<TuneReport>,
) -> Result<()> {
    if !ctx.needs_measuring(class) {
        return Ok(());
    }
    let report = tune()?;
    for f in &report.families {
        log::info!(
            "measured {} {}: {} ({})",
            report.class,
            f.family.name(),
            f.chosen.0,
            f.speedup()
                .map_or("nothing ran right: the table's".into(), |s| format!(
                    "{s:.2}x the table"
                ))
        );
    }
    if let Err(e) = ctx.save_wisdom() {
        log::warn!("the measured choices stay in memory only: {e}");
    }
    Ok(())
}
