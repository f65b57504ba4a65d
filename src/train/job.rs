//! A training run that lasts: epochs of batches from a [`Batches`] source, the learning rate
//! from an [`LrSchedule`], validation every so many steps with the best weights kept, early
//! stopping, checkpoints, and an exact resume from one. The CLI's `train` is this loop.
//!
//! Everything a step depends on is a function of the run's options and its step number, or
//! is in the [`Checkpoint`]: the batch (shuffled from (seed, epoch)), the dropout masks (from
//! (seed, step)), the optimizer and carried state (the [`TrainerSnapshot`]), the schedule's
//! state and the best evaluation so far. So a run stopped after step k and resumed from its
//! checkpoint ends with bitwise the weights of the same run never stopped, on the same device.

use std::collections::{BTreeMap, VecDeque};

use super::batches::Batches;
use super::metrics::Metrics;
use super::schedule::{LrSchedule, ScheduleState};
use super::validation::{validate, Validation};
use super::{StepLoss, Trainer, TrainerSnapshot};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::weights::LstmWeights;

/// How long a run is and what it does on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobOptions {
    /// Optimizer steps of the whole run (a resumed run counts the steps before it).
    pub steps: u64,
    /// Evaluate every this many steps; none: at the end of each epoch. The last step is
    /// always evaluated (when there is validation data).
    pub eval_every: Option<u64>,
    /// Stop after this many evaluations in a row without a lower validation loss.
    pub early_stop: Option<u64>,
    /// Hand a checkpoint to [`Hooks::checkpoint`] every this many steps (and always at the
    /// end and when interrupted).
    pub checkpoint_every: Option<u64>,
}

/// One step as the log shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepRecord {
    /// The step, from 1.
    pub step: u64,
    /// Its epoch, from 0.
    pub epoch: u64,
    /// The loss it minimised (before its update).
    pub loss: f32,
    /// Cross-entropy: the fraction of its rows classified right.
    pub accuracy: Option<f32>,
    /// The learning rate it used.
    pub lr: f64,
}

/// One evaluation on the validation data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalRecord {
    /// The steps taken before it.
    pub step: u64,
    /// The epoch of its last step, from 0.
    pub epoch: u64,
    /// The score of the weights after `step` steps.
    pub metrics: Metrics,
}

/// Where a run stands: with a [`TrainerSnapshot`], all a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct JobState {
    /// Steps taken.
    pub step: u64,
    /// The learning-rate schedule's state.
    pub schedule: ScheduleState,
    /// Every step's score, in order.
    pub history: Vec<StepRecord>,
    /// Every evaluation, in order.
    pub evals: Vec<EvalRecord>,
    /// The evaluation with the lowest validation loss so far and the weights it scored.
    pub best: Option<(EvalRecord, LstmWeights)>,
    /// Evaluations since the best one.
    pub evals_since_best: u64,
    /// Early stopping ended the run.
    pub stopped_early: bool,
}

/// What a checkpoint file holds: the run's identity (model, data and options as named
/// strings, compared on resume), the trainer's state and the run's.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Named descriptions of what the run must keep to resume (model, data, options).
    pub identity: BTreeMap<String, String>,
    /// The trainer's state.
    pub trainer: TrainerSnapshot,
    /// The run's state.
    pub job: JobState,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every step taken.
    Finished,
    /// Early stopping: `early_stop` evaluations without improvement.
    EarlyStopped,
    /// [`Hooks::interrupted`] said so; the step in flight was finished.
    Interrupted,
    /// This step's loss was not finite; the trainer holds the last good weights.
    Diverged(u64),
}

/// What the caller sees of a run as it goes.
pub trait Hooks {
    /// A step's score came back.
    fn stepped(&mut self, _record: &StepRecord) {}
    /// An evaluation; `best` when it is the best so far.
    fn evaluated(&mut self, _record: &EvalRecord, _best: bool) {}
    /// Whether to make checkpoints at all (they read the trainer's whole state back).
    fn wants_checkpoints(&self) -> bool {
        false
    }
    /// A checkpoint is due: write it.
    fn checkpoint(&mut self, _checkpoint: &Checkpoint) -> Result<()> {
        Ok(())
    }
    /// Checked before each step: stop (after the step in flight) when true.
    fn interrupted(&mut self) -> bool {
        false
    }
}

/// A run: its options, data, schedule and state. See the module docs.
pub struct Job<'a> {
    options: JobOptions,
    schedule: LrSchedule,
    batches: &'a dyn Batches,
    validation: Option<&'a Validation>,
    loss: Loss,
    identity: BTreeMap<String, String>,
    state: JobState,
    /// submitted steps whose scores have not come back: (epoch, lr)
    pending: VecDeque<(u64, f64)>,
}

impl<'a> Job<'a> {
    /// A run from step 0. `identity` names what a checkpoint of it must match to resume
    /// (model, data, options); the data's fingerprint is added as `data`.
    pub fn new(
        options: JobOptions,
        schedule: LrSchedule,
        (batches, validation): (&'a dyn Batches, Option<&'a Validation>),
        loss: Loss,
        mut identity: BTreeMap<String, String>,
    ) -> Result<Self> {
        if batches.per_epoch() == 0 {
            return Err(Error::Input("the training data make no batches".into()));
        }
        for (what, v) in [
            ("eval_every", options.eval_every),
            ("early_stop", options.early_stop),
            ("checkpoint_every", options.checkpoint_every),
        ] {
            if v == Some(0) {
                return Err(Error::Config(format!("{what} must be at least 1")));
            }
        }
        identity.insert("data".into(), batches.fingerprint());
        let state = JobState {
            step: 0,
            schedule: schedule.state(),
            history: Vec::new(),
            evals: Vec::new(),
            best: None,
            evals_since_best: 0,
            stopped_early: false,
        };
        Ok(Self {
            options,
            schedule,
            batches,
            validation,
            loss,
            identity,
            state,
            pending: VecDeque::new(),
        })
    }

    /// Where the run stands.
    pub fn state(&self) -> &JobState {
        &self.state
    }

    /// Steps per epoch.
    pub fn per_epoch(&self) -> u64 {
        self.batches.per_epoch() as u64
    }

    /// Goes on from `checkpoint`: its identity must equal this run's (an error names every
    /// difference), then the trainer and the run take its state. Nothing changes on an error.
    pub fn resume(&mut self, trainer: &mut dyn Trainer, checkpoint: &Checkpoint) -> Result<()> {
        compare_identity(&checkpoint.identity, &self.identity)?;
        if checkpoint.trainer.step != checkpoint.job.step {
            return Err(Error::Input(format!(
                "the checkpoint's trainer is at step {} and its run at step {}",
                checkpoint.trainer.step, checkpoint.job.step
            )));
        }
        trainer.restore(&checkpoint.trainer)?;
        self.schedule.restore(checkpoint.job.schedule);
        self.state = checkpoint.job.clone();
        self.pending.clear();
        Ok(())
    }

    /// The run's checkpoint now (after every submitted step: flush first).
    pub fn checkpoint(&mut self, trainer: &mut dyn Trainer) -> Result<Checkpoint> {
        self.state.schedule = self.schedule.state();
        Ok(Checkpoint {
            identity: self.identity.clone(),
            trainer: trainer.snapshot()?,
            job: self.state.clone(),
        })
    }

    /// Runs until `options.steps` steps are taken, early stopping, an interruption or a
    /// non-finite loss.
    pub fn run(&mut self, trainer: &mut dyn Trainer, hooks: &mut dyn Hooks) -> Result<Ended> {
        let per_epoch = self.per_epoch();
        let total = self.options.steps;
        let mut ended = if self.state.stopped_early {
            Ended::EarlyStopped
        } else {
            Ended::Finished
        };
        while ended == Ended::Finished && self.state.step < total {
            if hooks.interrupted() {
                ended = Ended::Interrupted;
                break;
            }
            let step = self.state.step;
            let (epoch, index) = (step / per_epoch, (step % per_epoch) as usize);
            if index == 0 && self.batches.carries_state() {
                trainer.reset_state();
            }
            let lr = self.schedule.lr(step);
            trainer.set_lr(lr as f32)?;
            let done = self.batches.batch(epoch, index)?.submit(trainer)?;
            self.pending.push_back((epoch, lr));
            self.state.step += 1;
            if let Some(bad) = self.record(done, hooks) {
                trainer.restore_last_good(bad)?;
                return Ok(Ended::Diverged(bad));
            }
            let taken = self.state.step;
            let end_of_epoch = taken.is_multiple_of(per_epoch);
            if end_of_epoch {
                self.schedule.end_epoch();
            }
            let eval_due = match self.options.eval_every {
                Some(n) => taken.is_multiple_of(n),
                None => end_of_epoch,
            };
            if self.validation.is_some() && (eval_due || taken == total) {
                if let Some(bad) = self.flush(trainer, hooks)? {
                    return Ok(Ended::Diverged(bad));
                }
                if self.evaluate(trainer, hooks)? {
                    ended = Ended::EarlyStopped;
                }
            }
            let checkpoint_due = self
                .options
                .checkpoint_every
                .is_some_and(|n| taken.is_multiple_of(n));
            if checkpoint_due
                && taken < total
                && ended == Ended::Finished
                && hooks.wants_checkpoints()
            {
                if let Some(bad) = self.flush(trainer, hooks)? {
                    return Ok(Ended::Diverged(bad));
                }
                hooks.checkpoint(&self.checkpoint(trainer)?)?;
            }
        }
        if let Some(bad) = self.flush(trainer, hooks)? {
            return Ok(Ended::Diverged(bad));
        }
        if hooks.wants_checkpoints() {
            hooks.checkpoint(&self.checkpoint(trainer)?)?;
        }
        Ok(ended)
    }

    /// Waits for the steps in flight and records their scores.
    fn flush(&mut self, trainer: &mut dyn Trainer, hooks: &mut dyn Hooks) -> Result<Option<u64>> {
        let done = trainer.flush()?;
        let bad = self.record(done, hooks);
        if let Some(bad) = bad {
            trainer.restore_last_good(bad)?;
        }
        Ok(bad)
    }

    /// Adds steps' scores to the history, up to the first non-finite one (its step).
    fn record(&mut self, done: Vec<StepLoss>, hooks: &mut dyn Hooks) -> Option<u64> {
        for score in done {
            let (epoch, lr) = self.pending.pop_front().unwrap_or((0, f64::NAN));
            if !score.loss.is_finite() {
                return Some(score.step);
            }
            let record = StepRecord {
                step: score.step,
                epoch,
                loss: score.loss,
                accuracy: score.accuracy,
                lr,
            };
            self.state.history.push(record);
            hooks.stepped(&record);
        }
        None
    }

    /// Scores the current weights; keeps them when best; steps a plateau schedule. True when
    /// early stopping ends the run.
    fn evaluate(&mut self, trainer: &mut dyn Trainer, hooks: &mut dyn Hooks) -> Result<bool> {
        let Some(validation) = self.validation else {
            return Ok(false);
        };
        let metrics = validate(trainer, self.loss, validation)?;
        let step = self.state.step;
        let record = EvalRecord {
            step,
            epoch: step.saturating_sub(1) / self.per_epoch(),
            metrics,
        };
        self.state.evals.push(record);
        let best = match &self.state.best {
            Some((b, _)) => metrics.loss < b.metrics.loss,
            None => metrics.loss.is_finite(),
        };
        if best {
            self.state.best = Some((record, trainer.weights()?));
            self.state.evals_since_best = 0;
        } else {
            self.state.evals_since_best += 1;
        }
        self.schedule.validated(metrics.loss as f64);
        hooks.evaluated(&record, best);
        let stop = self
            .options
            .early_stop
            .is_some_and(|p| self.state.evals_since_best >= p);
        self.state.stopped_early |= stop;
        Ok(stop)
    }
}

/// An error naming every entry where `saved` (a checkpoint's) and `now` differ.
pub fn compare_identity(
    saved: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Result<()> {
    let mut differences = Vec::new();
    for key in saved
        .keys()
        .chain(now.keys().filter(|k| !saved.contains_key(*k)))
    {
        let (a, b) = (saved.get(key), now.get(key));
        if a != b {
            let show = |v: Option<&String>| v.map_or("(none)".to_string(), |v| v.clone());
            differences.push(format!(
                "{key}: the checkpoint's {}, this run's {}",
                show(a),
                show(b)
            ));
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "the checkpoint is of another run: {}",
            differences.join("; ")
        )))
    }
}
