//! The tuner's choice, apart from any device: time each candidate a few warm runs, within a
//! time budget, reject any whose output differs from the reference beyond the tolerance, and
//! keep the fastest. The runs and the clock come from outside ([`Trials`]), so the logic is
//! tested with injected times and outputs; the `tune` command drives a real device with it.

use super::choice::{Choice, Family};
use super::class::ShapeClass;
use crate::check::Tolerance;

/// What one candidate gave: its outputs and the times of its warm runs, in milliseconds.
#[derive(Clone, Debug)]
pub struct Trial {
    /// The outputs, to compare with the reference.
    pub output: Vec<f32>,
    /// Each timed run, in milliseconds.
    pub times_ms: Vec<f64>,
}

/// Runs candidates and tells the time.
pub trait Trials {
    /// Runs `candidate` `runs` times after a warmup.
    fn run(&mut self, candidate: Choice, runs: usize) -> crate::Result<Trial>;
    /// Seconds since the tuning began.
    fn elapsed_s(&mut self) -> f64;
}

/// What became of one candidate.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Ran and matched the reference; the median of its runs.
    Timed {
        /// Milliseconds.
        median_ms: f64,
    },
    /// Ran but its output differs from the reference: never chosen.
    Wrong {
        /// The largest difference.
        max_error: f64,
        /// The output element where it is.
        at: usize,
    },
    /// Failed to run (the error's text).
    Failed(String),
    /// Not tried: the budget was spent.
    Skipped,
}

/// The tuning of one shape: every candidate's verdict, in the order tried, and the choice.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Each candidate and what became of it.
    pub verdicts: Vec<(Choice, Verdict)>,
    /// The fastest candidate that matched the reference and its median, if any did.
    pub best: Option<(Choice, f64)>,
    /// The table's choice's median (from the confirming round when there was one).
    pub table_ms: Option<f64>,
}

impl Outcome {
    /// The median of `candidate`, when it was timed.
    pub fn time_of(&self, candidate: Choice) -> Option<f64> {
        self.verdicts.iter().find_map(|(v, verdict)| match verdict {
            Verdict::Timed { median_ms } if *v == candidate => Some(*median_ms),
            _ => None,
        })
    }
}

/// The tuning of one family at one shape, as the `tune` table shows it.
#[derive(Clone, Debug)]
pub struct FamilyReport {
    /// The family.
    pub family: Family,
    /// What the table runs, and its median (`None` when it failed or was wrong).
    pub table: (Choice, Option<f64>),
    /// What runs from now on, and its median (the table's when nothing else was faster,
    /// `None` when nothing ran right).
    pub chosen: (Choice, Option<f64>),
    /// Every candidate tried and what became of it.
    pub verdicts: Vec<(Choice, Verdict)>,
}

impl FamilyReport {
    /// The table's time over the tuned one (1 when the table's choice stays).
    pub fn speedup(&self) -> Option<f64> {
        Some(self.table.1? / self.chosen.1?)
    }

    /// Candidates whose output was wrong or that failed to run, with why.
    pub fn rejected(&self) -> impl Iterator<Item = &(Choice, Verdict)> {
        self.verdicts
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Wrong { .. } | Verdict::Failed(_)))
    }
}

/// The tuning of one shape: its class and each family measured, in order.
#[derive(Clone, Debug)]
pub struct TuneReport {
    /// The shape class the choices are saved under.
    pub class: ShapeClass,
    /// Each family, in the order measured (each with the earlier ones' choices in place).
    pub families: Vec<FamilyReport>,
    /// Seconds the tuning took.
    pub seconds: f64,
}

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Seconds for the whole shape; the first candidate (the table's) always runs.
    pub seconds: f64,
    /// Timed runs per candidate.
    pub runs: usize,
}

/// How much faster than the table's choice another must be, in the confirming round, to
/// replace it: a choice that wins by noise alone stays the table's.
pub const MARGIN: f64 = 0.03;

/// Tries `candidates` in order until the budget is spent and picks the fastest correct one.
/// Ties go to the earlier candidate (the table's choice first), so equal times never move a
/// choice. A winner other than the table's choice is confirmed: both run again, back to back,
/// and the winner stays only when it is more than [`MARGIN`] faster there (those second
/// medians are the ones reported). The first candidate is the table's.
pub fn tune(
    candidates: &[Choice],
    reference: &[f64],
    tolerance: Tolerance,
    budget: Budget,
    trials: &mut dyn Trials,
) -> Outcome {
    let runs = budget.runs.max(1);
    let mut verdicts = Vec::with_capacity(candidates.len());
    let mut best: Option<(Choice, f64)> = None;
    for (i, &candidate) in candidates.iter().enumerate() {
        if i > 0 && trials.elapsed_s() >= budget.seconds {
            verdicts.push((candidate, Verdict::Skipped));
            continue;
        }
        let verdict = timed(trials, candidate, runs, reference, tolerance);
        if let Verdict::Timed { median_ms } = verdict {
            if best.is_none_or(|(_, t)| median_ms < t) {
                best = Some((candidate, median_ms));
            }
        }
        verdicts.push((candidate, verdict));
    }
    let mut table_ms = match verdicts.first() {
        Some((_, Verdict::Timed { median_ms })) => Some(*median_ms),
        _ => None,
    };
    if let (Some((winner, _)), Some(_)) = (best, table_ms) {
        if winner != candidates[0] {
            let table = timed(trials, candidates[0], runs, reference, tolerance);
            let again = timed(trials, winner, runs, reference, tolerance);
            match (table, again) {
                (Verdict::Timed { median_ms: t }, Verdict::Timed { median_ms: w }) => {
                    table_ms = Some(t);
                    best = Some(if w < t * (1.0 - MARGIN) {
                        (winner, w)
                    } else {
                        (candidates[0], t)
                    });
                }
                // the table's choice failed the second time, the winner did not
                (_, Verdict::Timed { median_ms: w }) => {
                    table_ms = None;
                    best = Some((winner, w));
                }
                (Verdict::Timed { median_ms: t }, _) => {
                    table_ms = Some(t);
                    best = Some((candidates[0], t));
                }
                _ => best = None,
            }
        }
    }
    Outcome {
        verdicts,
        best,
        table_ms,
    }
}

fn timed(
    trials: &mut dyn Trials,
    candidate: Choice,
    runs: usize,
    reference: &[f64],
    tolerance: Tolerance,
) -> Verdict {
    match trials.run(candidate, runs) {
        Err(e) => Verdict::Failed(e.to_string()),
        Ok(trial) => judge(&trial, reference, tolerance),
    }
}

/// Timed when every output is within `tolerance` of the reference (and there are as many),
/// else Wrong at the worst element.
fn judge(trial: &Trial, reference: &[f64], tolerance: Tolerance) -> Verdict {
    if trial.output.len() != reference.len() {
        return Verdict::Failed(format!(
            "{} outputs, the reference has {}",
            trial.output.len(),
            reference.len()
        ));
    }
    let mut worst: Option<(f64, usize)> = None;
    for (at, (&got, &want)) in trial.output.iter().zip(reference).enumerate() {
        let error = (got as f64 - want).abs();
        let within = error <= tolerance.abs + tolerance.rel * want.abs();
        // NaN is never within
        if !within && worst.is_none_or(|(e, _)| error > e || error.is_nan()) {
            worst = Some((error, at));
        }
    }
    match worst {
        Some((max_error, at)) => Verdict::Wrong { max_error, at },
        None if trial.times_ms.is_empty() => Verdict::Failed("no timed runs".into()),
        None => Verdict::Timed {
            median_ms: median(&trial.times_ms),
        },
    }
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::GPU_VS_F64;
    use crate::error::Error;
    use crate::gpu::kernels::{Recurrence, StepTiles};

    fn step(units: u32) -> Choice {
        Choice::Recurrence(Recurrence::PerStep(StepTiles {
            units,
            splits: 4,
            rows: 1,
            quads: 1,
            span: 1,
        }))
    }

    /// Each candidate takes `cost_s` of the clock and reports `ms`; `wrong` ones return bad
    /// numbers, `broken` ones fail.
    struct Fake {
        clock: f64,
        cost_s: f64,
        ms: fn(u32) -> f64,
        wrong: Vec<u32>,
        broken: Vec<u32>,
        /// slow (x4) the first time they run
        cold: Vec<u32>,
        ran: Vec<u32>,
    }

    impl Trials for Fake {
        fn run(&mut self, candidate: Choice, runs: usize) -> crate::Result<Trial> {
            let Choice::Recurrence(Recurrence::PerStep(t)) = candidate else {
                unreachable!()
            };
            self.clock += self.cost_s;
            self.ran.push(t.units);
            if self.broken.contains(&t.units) {
                return Err(Error::Config("the driver refused it".into()));
            }
            let mut output = vec![0.5f32, -0.25, 1.0];
            if self.wrong.contains(&t.units) {
                output[1] += 1e-3; // beyond 2e-5 + 1e-4·|want|
            }
            // a noisy first run, then steady ones
            let first_time = !self.ran[..self.ran.len() - 1].contains(&t.units);
            let cold = if first_time && self.cold.contains(&t.units) {
                4.0
            } else {
                1.0
            };
            let t_ms = (self.ms)(t.units) * cold;
            let mut times_ms = vec![if runs > 1 { t_ms * 3.0 } else { t_ms }];
            times_ms.extend(std::iter::repeat_n(t_ms, runs - 1));
            Ok(Trial { output, times_ms })
        }
        fn elapsed_s(&mut self) -> f64 {
            self.clock
        }
    }

    fn fake(ms: fn(u32) -> f64) -> Fake {
        Fake {
            clock: 0.0,
            cost_s: 1.0,
            ms,
            wrong: vec![],
            broken: vec![],
            cold: vec![],
            ran: vec![],
        }
    }

    const REFERENCE: [f64; 3] = [0.5, -0.25, 1.0];
    const BUDGET: Budget = Budget {
        seconds: 100.0,
        runs: 3,
    };

    #[test]
    fn the_fastest_correct_candidate_wins_and_ties_keep_the_earlier() {
        let list: Vec<_> = [1, 2, 4, 8].map(step).to_vec();
        let mut trials = fake(|u| 10.0 / u as f64);
        let out = tune(&list, &REFERENCE, GPU_VS_F64, BUDGET, &mut trials);
        assert_eq!(out.best, Some((step(8), 1.25)));
        assert_eq!(
            out.time_of(step(1)),
            Some(10.0),
            "the median, not the noisy first run"
        );
        let mut flat = fake(|_| 2.0);
        let out = tune(&list, &REFERENCE, GPU_VS_F64, BUDGET, &mut flat);
        assert_eq!(out.best, Some((step(1), 2.0)));
    }

    #[test]
    fn a_wrong_candidate_is_rejected_however_fast() {
        let list: Vec<_> = [1, 2, 4, 8].map(step).to_vec();
        let mut trials = fake(|u| 10.0 / u as f64);
        trials.wrong = vec![8];
        trials.broken = vec![4];
        let out = tune(&list, &REFERENCE, GPU_VS_F64, BUDGET, &mut trials);
        assert_eq!(out.best, Some((step(2), 5.0)));
        assert!(
            matches!(out.verdicts[3].1, Verdict::Wrong { at: 1, max_error } if (max_error - 1e-3).abs() < 1e-6)
        );
        assert!(matches!(&out.verdicts[2].1, Verdict::Failed(e) if e.contains("refused")));
        // every candidate wrong: no choice at all
        let mut all_wrong = fake(|_| 1.0);
        all_wrong.wrong = vec![1, 2, 4, 8];
        assert_eq!(
            tune(&list, &REFERENCE, GPU_VS_F64, BUDGET, &mut all_wrong).best,
            None
        );
        // NaN is wrong
        let nan = [f64::NAN, -0.25, 1.0];
        let out = tune(&list[..1], &nan, GPU_VS_F64, BUDGET, &mut fake(|_| 1.0));
        assert!(
            matches!(out.verdicts[0].1, Verdict::Wrong { .. }),
            "{:?}",
            out.verdicts
        );
    }

    #[test]
    fn a_win_by_noise_is_not_confirmed_and_the_table_stays() {
        let list: Vec<_> = [1, 2].map(step).to_vec();
        // the table's choice is slow only the first time it runs (a cold start)
        let mut trials = fake(|_| 2.0);
        trials.cold = vec![1];
        let out = tune(&list, &REFERENCE, GPU_VS_F64, BUDGET, &mut trials);
        assert_eq!(trials.ran, [1, 2, 1, 2]);
        assert_eq!(out.best, Some((step(1), 2.0)));
        assert_eq!(out.table_ms, Some(2.0), "the confirming round's median");
        // 2% faster is within the margin; 5% is not
        let mut near = fake(|u| if u == 2 { 1.96 } else { 2.0 });
        assert_eq!(
            tune(&list, &REFERENCE, GPU_VS_F64, BUDGET, &mut near).best,
            Some((step(1), 2.0))
        );
        let mut clear = fake(|u| if u == 2 { 1.9 } else { 2.0 });
        assert_eq!(
            tune(&list, &REFERENCE, GPU_VS_F64, BUDGET, &mut clear).best,
            Some((step(2), 1.9))
        );
    }

    #[test]
    fn the_budget_stops_the_search_but_the_table_always_runs() {
        let list: Vec<_> = [1, 2, 4, 8, 16].map(step).to_vec();
        let mut trials = fake(|u| 10.0 / u as f64);
        let budget = Budget {
            seconds: 2.5,
            runs: 3,
        };
        let out = tune(&list, &REFERENCE, GPU_VS_F64, budget, &mut trials);
        assert_eq!(
            trials.ran,
            [1, 2, 4, 1, 4],
            "stopped once 2.5 s were spent, then the table and the winner again"
        );
        assert_eq!(out.best, Some((step(4), 2.5)));
        assert!(out.verdicts[3..]
            .iter()
            .all(|(_, v)| *v == Verdict::Skipped));
        let mut trials = fake(|u| u as f64);
        let none = Budget {
            seconds: 0.0,
            runs: 1,
        };
        let out = tune(&list, &REFERENCE, GPU_VS_F64, none, &mut trials);
        assert_eq!(
            trials.ran,
            [1],
            "the table's choice won: nothing to confirm"
        );
        assert_eq!(out.best, Some((step(1), 1.0)));
    }
}
