//! Learning-rate schedules with `torch.optim.lr_scheduler`'s semantics and numbers: StepLR
//! and CosineAnnealingLR stepped once per epoch (their chainable, recursive `get_lr()` forms,
//! in f64 as Python computes them), ReduceLROnPlateau stepped on each validation loss, and a
//! LinearLR warmup stepped after every optimizer step, multiplying the epoch schedule's rate.
//!
//! ```
//! use lstm_wgpu::train::schedule::{LrSchedule, Schedule};
//! # fn main() -> lstm_wgpu::Result<()> {
//! let schedule: Schedule = "step:1:0.5".parse()?;
//! let mut lr = LrSchedule::new(0.1, schedule, 2)?; // warmup over 2 steps
//! assert_eq!(lr.lr(0), 0.05);                  // LinearLR's start_factor 1/2
//! assert!((lr.lr(1) - 0.075).abs() < 1e-16);   // 1/2 + 1/2 * 1/2
//! lr.end_epoch();                              // StepLR: every epoch, times 0.5
//! assert_eq!(lr.lr(2), 0.05);                  // warmed up: the factor is 1
//! # Ok(()) }
//! ```
//!
//! The warmup multiplies the epoch schedule's rate, as chaining LinearLR and StepLR (or
//! ReduceLROnPlateau) on one optimizer does in PyTorch: their `get_lr()`s only multiply
//! `group["lr"]`. CosineAnnealingLR's recursion is affine in `group["lr"]`, so where the
//! warmup is still running at an epoch's end PyTorch's chained rate is not this product (the
//! cosine of the warmed-down rate); here the warmup always multiplies the cosine of the base
//! rate. Likewise the plateau's eps rule reads the epoch rate here, PyTorch's the warmed one.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// What the rate does from epoch to epoch (or on validation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// `StepLR(step_size = every, gamma)`, stepped once per epoch: times `gamma` at the end
    /// of every `every`-th epoch.
    Step {
        /// Epochs between reductions, >= 1.
        every: u64,
        /// The factor, > 0 and finite.
        gamma: f64,
    },
    /// `CosineAnnealingLR(T_max = t_max, eta_min)`, stepped once per epoch: from the base rate
    /// down to `eta_min` over `t_max` epochs, then back up over the next `t_max` (PyTorch's
    /// recursion continues past `T_max` as a cosine of period `2·T_max`).
    Cosine {
        /// Epochs of a half period, >= 1.
        t_max: u64,
        /// The lowest rate, >= 0 and finite.
        eta_min: f64,
    },
    /// `ReduceLROnPlateau(mode="min", factor, patience, threshold=1e-4, threshold_mode="rel",
    /// cooldown=0, min_lr=0, eps=1e-8)`, stepped on each validation loss.
    Plateau {
        /// The factor, in (0, 1).
        factor: f64,
        /// Evaluations without improvement tolerated; the next one reduces.
        patience: u64,
    },
}

/// ReduceLROnPlateau's `threshold` (relative, mode "min").
const PLATEAU_THRESHOLD: f64 = 1e-4;
/// ReduceLROnPlateau's `eps`: a reduction smaller than this is skipped.
const PLATEAU_EPS: f64 = 1e-8;
/// The forms [`Schedule::from_str`] reads, for its errors.
const FORMS: &str = "constant, step:EVERY:GAMMA, cosine:T_MAX[:ETA_MIN], plateau:FACTOR:PATIENCE";

impl FromStr for Schedule {
    type Err = Error;

    /// `constant`, `step:EVERY:GAMMA`, `cosine:T_MAX[:ETA_MIN]` (ETA_MIN 0 when left out) or
    /// `plateau:FACTOR:PATIENCE`; an error names the forms and the part that is wrong.
    fn from_str(text: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::Config(format!(
                "learning-rate schedule '{text}': {why} (forms: {FORMS})"
            ))
        };
        let count = |what: &str, v: &str| -> Result<u64> {
            v.parse::<u64>()
                .map_err(|_| bad(format!("{what} '{v}' is not a whole number >= 0")))
        };
        let real = |what: &str, v: &str| -> Result<f64> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(format!("{what} '{v}' is not a finite number")))
        };
        let (name, values) = match text.split_once(':') {
            Some((name, rest)) => (name, rest.split(':').collect::<Vec<_>>()),
            None => (text, Vec::new()),
        };
        let arity = |form: &str, counts: &[usize]| -> Result<()> {
            if counts.contains(&values.len()) {
                Ok(())
            } else {
                let got = values.len();
                Err(bad(format!("{name} is written {form}, got {got} values")))
            }
        };
        let schedule = match name {
            "constant" => {
                arity("constant", &[0])?;
                Schedule::Constant
            }
            "step" => {
                arity("step:EVERY:GAMMA", &[2])?;
                Schedule::Step {
                    every: count("EVERY", values[0])?,
                    gamma: real("GAMMA", values[1])?,
                }
            }
            "cosine" => {
                arity("cosine:T_MAX[:ETA_MIN]", &[1, 2])?;
                Schedule::Cosine {
                    t_max: count("T_MAX", values[0])?,
                    eta_min: match values.get(1) {
                        Some(v) => real("ETA_MIN", v)?,
                        None => 0.0,
                    },
                }
            }
            "plateau" => {
                arity("plateau:FACTOR:PATIENCE", &[2])?;
                Schedule::Plateau {
                    factor: real("FACTOR", values[0])?,
                    patience: count("PATIENCE", values[1])?,
                }
            }
            other => return Err(bad(format!("'{other}' is not a schedule"))),
        };
        schedule.check().map_err(bad)?;
        Ok(schedule)
    }
}

impl fmt::Display for Schedule {
    /// The form [`Schedule::from_str`] reads back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Schedule::Constant => write!(f, "constant"),
            Schedule::Step { every, gamma } => write!(f, "step:{every}:{gamma}"),
            Schedule::Cosine {
                t_max,
                eta_min: 0.0,
            } => write!(f, "cosine:{t_max}"),
            Schedule::Cosine { t_max, eta_min } => write!(f, "cosine:{t_max}:{eta_min}"),
            Schedule::Plateau { factor, patience } => write!(f, "plateau:{factor}:{patience}"),
        }
    }
}

impl Schedule {
    /// The ranges the fields' docs give; the message names the field and its value.
    fn check(&self) -> std::result::Result<(), String> {
        match *self {
            Schedule::Step { every: 0, .. } => Err("EVERY must be >= 1, got 0".into()),
            Schedule::Step { gamma, .. } if !(gamma > 0.0 && gamma.is_finite()) => {
                Err(format!("GAMMA must be > 0 and finite, got {gamma}"))
            }
            Schedule::Cosine { t_max: 0, .. } => Err("T_MAX must be >= 1, got 0".into()),
            Schedule::Cosine { eta_min, .. } if !(eta_min >= 0.0 && eta_min.is_finite()) => {
                Err(format!("ETA_MIN must be >= 0 and finite, got {eta_min}"))
            }
            Schedule::Plateau { factor, .. } if !(factor > 0.0 && factor < 1.0) => {
                Err(format!("FACTOR must be in (0, 1), got {factor}"))
            }
            _ => Ok(()),
        }
    }
}

/// The schedule's state: everything needed to resume it exactly (checkpoints store these
/// fields). ReduceLROnPlateau's cooldown counter is not here: with cooldown 0 it stays 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleState {
    /// The epoch schedule's current rate: `group["lr"]` without the warmup.
    pub epoch_lr: f64,
    /// Epochs ended so far ([`LrSchedule::end_epoch`] calls; the epoch schedulers'
    /// `last_epoch`).
    pub epochs_stepped: u64,
    /// ReduceLROnPlateau's `best`: the best validation loss so far, `None` before the first
    /// (PyTorch's `inf`).
    pub best: Option<f64>,
    /// ReduceLROnPlateau's `num_bad_epochs`: evaluations since the best or the last reduction.
    pub bad_evals: u64,
}

/// A base rate, a [`Schedule`], a warmup, and where they stand.
#[derive(Clone, PartialEq)]
pub struct LrSchedule {
    base_lr: f64,
    schedule: Schedule,
    warmup: u64,
    /// LinearLR's factor after `k` steps for `k` in `0..=warmup` (by its recursion; it stays
    /// at the last from then on). `[1.0]` without warmup.
    warmup_factors: Vec<f64>,
    state: ScheduleState,
}

impl fmt::Debug for LrSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LrSchedule")
            .field("base_lr", &self.base_lr)
            .field("schedule", &self.schedule)
            .field("warmup", &self.warmup)
            .field("state", &self.state)
            .finish()
    }
}

impl LrSchedule {
    /// `schedule` from `base_lr` (> 0, finite), the first `warmup` steps warmed up by
    /// `LinearLR(start_factor = 1/warmup, end_factor = 1, total_iters = warmup)` (0: none).
    /// Errors on a value out of range (see [`Schedule`]).
    pub fn new(base_lr: f64, schedule: Schedule, warmup: u64) -> Result<Self> {
        if !(base_lr > 0.0 && base_lr.is_finite()) {
            return Err(Error::Config(format!(
                "the learning rate must be > 0 and finite, got {base_lr}"
            )));
        }
        schedule
            .check()
            .map_err(|why| Error::Config(format!("learning-rate schedule {schedule}: {why}")))?;
        Ok(Self {
            base_lr,
            schedule,
            warmup,
            warmup_factors: warmup_factors(warmup)?,
            state: ScheduleState {
                epoch_lr: base_lr,
                epochs_stepped: 0,
                best: None,
                bad_evals: 0,
            },
        })
    }

    /// The rate of the step that has `steps_taken` steps before it (0 for the first step):
    /// the epoch schedule's current rate times the warmup factor, LinearLR's
    /// `1/N + (1 - 1/N)·min(steps_taken, N)/N` (by its recursion, as PyTorch computes it).
    pub fn lr(&self, steps_taken: u64) -> f64 {
        let last = self.warmup_factors.len() - 1;
        let k = usize::try_from(steps_taken).map_or(last, |k| k.min(last));
        self.state.epoch_lr * self.warmup_factors[k]
    }

    /// An epoch has ended: `scheduler.step()` after each epoch for StepLR and
    /// CosineAnnealingLR. Constant and Plateau keep their rate (the epoch is still counted).
    ///
    /// With `e` the epochs ended (PyTorch's `last_epoch`) and `lr` the epoch rate, as
    /// PyTorch's chainable `get_lr()`s:
    /// - StepLR: `lr·gamma` if `e % every == 0`, else `lr`;
    /// - CosineAnnealingLR: `lr + (base_lr - eta_min)·(1 - cos(π/T_max))/2` if
    ///   `(e - 1 - T_max) % (2·T_max) == 0`, else
    ///   `(1 + cos(π·e/T_max)) / (1 + cos(π·(e - 1)/T_max))·(lr - eta_min) + eta_min`.
    pub fn end_epoch(&mut self) {
        let s = &mut self.state;
        s.epochs_stepped += 1;
        let e = s.epochs_stepped;
        match self.schedule {
            Schedule::Step { every, gamma } => {
                if e.is_multiple_of(every) {
                    s.epoch_lr *= gamma;
                }
            }
            Schedule::Cosine { t_max, eta_min } => {
                let pi = std::f64::consts::PI;
                let (t, ef) = (t_max as f64, e as f64);
                let restart = (e as i128 - 1 - t_max as i128).rem_euclid(2 * t_max as i128) == 0;
                s.epoch_lr = if restart {
                    s.epoch_lr + (self.base_lr - eta_min) * (1.0 - (pi / t).cos()) / 2.0
                } else {
                    (1.0 + (pi * ef / t).cos()) / (1.0 + (pi * (ef - 1.0) / t).cos())
                        * (s.epoch_lr - eta_min)
                        + eta_min
                };
            }
            Schedule::Constant | Schedule::Plateau { .. } => {}
        }
    }

    /// A validation loss: `ReduceLROnPlateau.step(loss)` (a no-op for the other schedules).
    /// Returns true when it lowered the rate.
    ///
    /// Better means `loss < best·(1 - 1e-4)` (always false for NaN). Otherwise one more bad
    /// evaluation; past `patience` of them the rate becomes `lr·factor` unless that lowers it
    /// by no more than 1e-8, and the count restarts from 0 either way.
    pub fn validated(&mut self, loss: f64) -> bool {
        let Schedule::Plateau { factor, patience } = self.schedule else {
            return false;
        };
        let s = &mut self.state;
        let best = s.best.unwrap_or(f64::INFINITY);
        if loss < best * (1.0 - PLATEAU_THRESHOLD) {
            s.best = Some(loss);
            s.bad_evals = 0;
        } else {
            s.bad_evals += 1;
        }
        if s.bad_evals <= patience {
            return false;
        }
        s.bad_evals = 0;
        let new = (s.epoch_lr * factor).max(0.0);
        if s.epoch_lr - new > PLATEAU_EPS {
            s.epoch_lr = new;
            return true;
        }
        false
    }

    /// Where the schedule stands (see [`ScheduleState`]).
    pub fn state(&self) -> ScheduleState {
        self.state
    }

    /// Goes on from `state`, a [`LrSchedule::state`] of the same base rate and schedule: the
    /// rates from here on are bitwise those the schedule it came from would give.
    pub fn restore(&mut self, state: ScheduleState) {
        self.state = state;
    }

    /// The schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// The warmup's steps (0: none).
    pub fn warmup(&self) -> u64 {
        self.warmup
    }
}

/// LinearLR(start_factor = 1/n, end_factor = 1, total_iters = n)'s factors after 0..=n steps,
/// by the recursion of its `get_lr()`: `start` at `last_epoch` 0, then each step times
/// `1 + (end - start) / (total·start + (last_epoch - 1)·(end - start))`.
fn warmup_factors(n: u64) -> Result<Vec<f64>> {
    let too_many = || Error::HostMemory {
        what: format!("a warmup of {n} steps"),
        bytes: n.saturating_add(1).saturating_mul(8),
    };
    let len = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(too_many)?;
    let mut factors = Vec::new();
    factors.try_reserve_exact(len).map_err(|_| too_many())?;
    if n == 0 {
        factors.push(1.0);
        return Ok(factors);
    }
    let (start, end, total) = (1.0 / n as f64, 1.0, n as f64);
    let mut factor = start;
    factors.push(factor);
    for e in 1..=n {
        factor *= 1.0 + (end - start) / (total * start + (e - 1) as f64 * (end - start));
        factors.push(factor);
    }
    Ok(factors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / a.abs().max(b.abs())
    }

    /// StepLR's recursion is `base·gamma^(e / every)` (PyTorch's closed form).
    #[test]
    fn step_follows_the_closed_form() {
        let mut s = LrSchedule::new(
            0.3,
            Schedule::Step {
                every: 3,
                gamma: 0.7,
            },
            0,
        )
        .unwrap();
        for e in 0..20u64 {
            let closed = 0.3 * 0.7f64.powi((e / 3) as i32);
            assert!(rel(s.lr(0), closed) < 1e-14, "epoch {e}");
            s.end_epoch();
        }
    }

    /// The cosine recursion is `eta_min + (base - eta_min)(1 + cos(π e / T))/2`, past T_max too.
    #[test]
    fn cosine_follows_the_closed_form_through_two_periods() {
        let (base, eta_min, t) = (0.2, 0.01, 4u64);
        let mut s = LrSchedule::new(base, Schedule::Cosine { t_max: t, eta_min }, 0).unwrap();
        for e in 0..=4 * t {
            let angle = std::f64::consts::PI * e as f64 / t as f64;
            let closed = eta_min + (base - eta_min) * (1.0 + angle.cos()) / 2.0;
            assert!(
                (s.lr(0) - closed).abs() < 1e-15,
                "epoch {e}: {} vs {closed}",
                s.lr(0)
            );
            s.end_epoch();
        }
    }

    /// Warmup N after k steps: 1/N + (1 - 1/N)·min(k, N)/N (LinearLR's closed form), from
    /// 1/N to 1 in N steps, then 1; no warmup: 1.
    #[test]
    fn warmup_rises_linearly_to_one() {
        let n = 5u64;
        let s = LrSchedule::new(1.0, Schedule::Constant, n).unwrap();
        for k in 0..10u64 {
            let start = 1.0 / n as f64;
            let closed = start + (1.0 - start) * k.min(n) as f64 / n as f64;
            assert!(
                rel(s.lr(k), closed) < 1e-15,
                "step {k}: {} vs {closed}",
                s.lr(k)
            );
        }
        assert_eq!(s.lr(n), s.lr(u64::MAX));
        assert_eq!(
            LrSchedule::new(0.5, Schedule::Constant, 0).unwrap().lr(7),
            0.5
        );
    }

    /// patience 1: the second bad evaluation in a row reduces, then the count starts again;
    /// a loss within the relative threshold is not better.
    #[test]
    fn plateau_counts_bad_evaluations_and_restarts_after_a_reduction() {
        let plateau = Schedule::Plateau {
            factor: 0.5,
            patience: 1,
        };
        let mut s = LrSchedule::new(1.0, plateau, 0).unwrap();
        let steps: Vec<bool> = [1.0, 0.99995, 2.0, 3.0, 4.0, 0.5]
            .map(|l| s.validated(l))
            .into();
        assert_eq!(steps, [false, false, true, false, true, false]);
        assert_eq!(s.lr(0), 0.25);
        assert_eq!((s.state().best, s.state().bad_evals), (Some(0.5), 0));
        assert!(!s.validated(f64::NAN));
        assert_eq!(s.state().bad_evals, 1);
    }

    #[test]
    fn out_of_range_values_are_config_errors() {
        assert!(LrSchedule::new(0.0, Schedule::Constant, 0).is_err());
        assert!(LrSchedule::new(f64::NAN, Schedule::Constant, 0).is_err());
        let bad = Schedule::Cosine {
            t_max: 0,
            eta_min: 0.0,
        };
        let e = LrSchedule::new(0.1, bad, 0).unwrap_err().to_string();
        assert!(e.contains("T_MAX must be >= 1"), "{e}");
        assert!(matches!(
            LrSchedule::new(0.1, Schedule::Constant, u64::MAX),
            Err(Error::HostMemory { .. })
        ));
    }
}
