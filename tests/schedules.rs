//! Learning-rate schedules against torch.optim.lr_scheduler (tests/fixtures/make_golden_schedules.py
//! made the fixtures): the rate of every step for StepLR, CosineAnnealingLR (past T_max),
//! ReduceLROnPlateau on a given validation sequence and a LinearLR warmup alone and chained
//! with StepLR; the weights after training with a warmup + StepLR on both paths; exact resume
//! from a state; and the schedule strings.

mod common;

use std::path::{Path, PathBuf};

use common::{gpu, TRAINED_WEIGHTS};
use lstm_wgpu::gpu::GpuTrainer;
use lstm_wgpu::io::{npy, safetensors};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::schedule::{LrSchedule, Schedule};
use lstm_wgpu::train::{
    CpuTrainer, OptimizerConfig, OptimizerKind, StepLoss, TrainOptions, Trainer,
};
use lstm_wgpu::{LstmWeights, Tensor};
use serde_json::Value;

const DIR: &str = "tests/fixtures/schedules";

/// Python computes the same f64 operations; only the warmup's product is grouped otherwise
/// (PyTorch multiplies `group["lr"]` step by step, here the factor times the epoch rate).
const RATE_REL: f64 = 1e-12;

fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

fn rate_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(path("rates.json")).unwrap();
    let root: Value = serde_json::from_str(&text).unwrap();
    root["cases"].as_array().unwrap().clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn int(case: &Value, key: &str) -> u64 {
    case[key].as_u64().unwrap()
}

/// The case's schedule, read from the string form the fixture names it by.
fn schedule(case: &Value, base_lr: &str) -> LrSchedule {
    let form: Schedule = case["schedule"].as_str().unwrap().parse().unwrap();
    LrSchedule::new(case[base_lr].as_f64().unwrap(), form, int(case, "warmup")).unwrap()
}

/// What a run of `schedule` did, as the training loop drives it: the rate of every step, and
/// after each epoch's end (and validation, when the case has losses) whether it reduced.
struct Run {
    lrs: Vec<f64>,
    reduced: Vec<bool>,
}

/// Runs epochs `from..` of `case` on `schedule` (`taken` steps before them), as the fixture's
/// loop: each step's rate, then `end_epoch()` and the epoch's validation loss.
fn run_from(case: &Value, schedule: &mut LrSchedule, from: u64, taken: u64) -> Run {
    let per_epoch = int(case, "steps_per_epoch");
    let val = case.get("val_losses").map(floats);
    let mut run = Run {
        lrs: Vec::new(),
        reduced: Vec::new(),
    };
    for epoch in from..int(case, "epochs") {
        for s in 0..per_epoch {
            run.lrs
                .push(schedule.lr(taken + (epoch - from) * per_epoch + s));
        }
        schedule.end_epoch();
        if let Some(val) = &val {
            run.reduced.push(schedule.validated(val[epoch as usize]));
        }
    }
    run
}

fn assert_rates(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: step count");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let off = (g - w).abs();
        assert!(
            off <= RATE_REL * g.abs().max(w.abs()),
            "{what}: step {i}: got {g:e}, PyTorch {w:e} (relative {:e})",
            off / w.abs()
        );
    }
}

/// (a) Every step's rate is PyTorch's `param_groups[0]["lr"]` within 1e-12 relative.
#[test]
fn every_rate_matches_pytorch_step_by_step() {
    let cases = rate_cases();
    assert_eq!(cases.len(), 8, "the fixture's cases");
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let mut s = schedule(case, "base_lr");
        let run = run_from(case, &mut s, 0, 0);
        assert_rates(name, &run.lrs, &floats(&case["lrs"]));
    }
}

/// (c) The plateau reduces on exactly the validations PyTorch reduced on, and keeps PyTorch's
/// `best` and `num_bad_epochs` after every one (the count restarts after a reduction, a
/// skipped one included: the eps case's 5e-9 reduction is not taken).
#[test]
fn the_plateau_reduces_where_pytorch_did() {
    for case in rate_cases().iter().filter(|c| c.get("evals").is_some()) {
        let name = case["name"].as_str().unwrap();
        let evals = case["evals"].as_array().unwrap();
        let val = floats(&case["val_losses"]);
        let mut s = schedule(case, "base_lr");
        let mut reduced = Vec::new();
        for (i, (loss, eval)) in val.iter().zip(evals).enumerate() {
            reduced.push(s.validated(*loss));
            let state = s.state();
            assert_eq!(state.best, eval["best"].as_f64(), "{name}: best after {i}");
            assert_eq!(
                state.bad_evals,
                int(eval, "num_bad_epochs"),
                "{name}: bad evaluations after {i}"
            );
            assert_rates(
                &format!("{name} after validation {i}"),
                &[s.lr(u64::MAX)],
                &[eval["lr"].as_f64().unwrap()],
            );
        }
        let want: Vec<bool> = evals
            .iter()
            .map(|e| e["reduced"].as_bool().unwrap())
            .collect();
        assert_eq!(reduced, want, "{name}: where it reduced");
        let at: Vec<usize> = (0..want.len()).filter(|&i| want[i]).collect();
        match name {
            "plateau_0.5_2" => assert_eq!(at, [5, 10], "the fixture reduces twice"),
            _ => assert!(at.is_empty(), "{name}: eps keeps the rate"),
        }
    }
}

/// (d) Stopped anywhere (an epoch's end or mid-epoch), its state restored into a fresh
/// schedule, the rest of the run is bitwise the same as never stopping.
#[test]
fn a_restored_state_goes_on_bitwise() {
    for case in rate_cases() {
        let name = case["name"].as_str().unwrap();
        let per_epoch = int(&case, "steps_per_epoch");
        let whole = run_from(&case, &mut schedule(&case, "base_lr"), 0, 0);
        for stop in 0..=int(&case, "epochs") {
            let mut first = schedule(&case, "base_lr");
            // the first `stop` epochs, then a fresh schedule from the state
            let mut partial = case.clone();
            partial["epochs"] = stop.into();
            let before = run_from(&partial, &mut first, 0, 0);
            let mut resumed = schedule(&case, "base_lr");
            resumed.restore(first.state());
            assert_eq!(resumed.state(), first.state());
            let after = run_from(&case, &mut resumed, stop, stop * per_epoch);
            let lrs: Vec<u64> = [before.lrs, after.lrs]
                .concat()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            let want: Vec<u64> = whole.lrs.iter().map(|v| v.to_bits()).collect();
            assert_eq!(lrs, want, "{name}: resumed after {stop} epochs");
            assert_eq!(
                [before.reduced, after.reduced].concat(),
                whole.reduced,
                "{name}: reductions resumed after {stop} epochs"
            );
        }
        // mid-epoch: the state does not change within an epoch, the step count carries on
        let mut first = schedule(&case, "base_lr");
        first.end_epoch();
        let mut resumed = schedule(&case, "base_lr");
        resumed.restore(first.state());
        for k in per_epoch..per_epoch * 3 {
            assert_eq!(
                resumed.lr(k).to_bits(),
                first.lr(k).to_bits(),
                "{name}: step {k}"
            );
        }
    }
}

// ---- (b) training with a schedule ----

fn train_cases() -> Vec<Value> {
    common::fixture_cases(Path::new(DIR))
}

fn weights(case: &Value, which: &str) -> LstmWeights {
    let name = case["name"].as_str().unwrap();
    safetensors::load(&path(&format!("{name}_{which}.safetensors"))).unwrap()
}

fn options(case: &Value) -> TrainOptions {
    let kind = match case["optimizer"].as_str().unwrap() {
        "sgd" => OptimizerKind::Sgd,
        _ => OptimizerKind::Adam,
    };
    let mut opt = OptimizerConfig::new(kind, case["lr"].as_f64().unwrap() as f32);
    opt.momentum = case["momentum"].as_f64().unwrap() as f32;
    TrainOptions::new(Loss::Mse, opt)
}

/// Batch `s` of a `[S, ...]` array.
fn batch(t: &Tensor, s: usize) -> Tensor {
    let row: usize = t.shape()[1..].iter().product();
    Tensor::new(
        t.shape()[1..].to_vec(),
        t.data()[s * row..(s + 1) * row].to_vec(),
    )
    .unwrap()
}

/// Trains `case`'s epochs, the rate of each step from the schedule (`scheduled`) or the base
/// rate throughout; the losses and the rates.
fn train(trainer: &mut dyn Trainer, case: &Value, scheduled: bool) -> (Vec<f32>, Vec<f64>) {
    let name = case["name"].as_str().unwrap();
    let x = npy::read_f32(&path(&format!("{name}_x.npy"))).unwrap();
    let y = npy::read_f32(&path(&format!("{name}_y.npy"))).unwrap();
    let mut schedule = schedule(case, "lr");
    let base = case["lr"].as_f64().unwrap();
    let (mut done, mut rates): (Vec<StepLoss>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut taken = 0;
    for _ in 0..int(case, "epochs") {
        for s in 0..int(case, "steps_per_epoch") as usize {
            let rate = if scheduled { schedule.lr(taken) } else { base };
            trainer.set_lr(rate as f32).unwrap();
            rates.push(rate);
            let target = Target::Values(batch(&y, s));
            done.extend(trainer.submit(&batch(&x, s), &target).unwrap());
            taken += 1;
        }
        schedule.end_epoch();
    }
    done.extend(trainer.flush().unwrap());
    let steps: Vec<u64> = done.iter().map(|s| s.step).collect();
    assert_eq!(steps, (1..=taken).collect::<Vec<_>>(), "{name}: steps");
    (done.iter().map(|s| s.loss).collect(), rates)
}

fn check(device: &str, trainer: &mut dyn Trainer, case: &Value) {
    let name = case["name"].as_str().unwrap();
    let (losses, rates) = train(trainer, case, true);
    assert_rates(
        &format!("{device} {name} rates"),
        &rates,
        &floats(&case["lrs"]),
    );
    common::assert_trained_like_case(
        &format!("{device} {name}"),
        &losses,
        case,
        &trainer.weights().unwrap(),
        &weights(case, "final"),
    );
}

/// (b) CPU: warmup 2 + StepLR(1, 0.5), SGD with momentum and Adam: PyTorch's losses and weights.
#[test]
fn cpu_training_with_a_schedule_matches_pytorch() {
    let cases = train_cases();
    assert_eq!(cases.len(), 2);
    for case in &cases {
        let mut trainer = CpuTrainer::new(&weights(case, "init"), options(case)).unwrap();
        check("cpu", &mut trainer, case);
    }
}

/// (b) GPU: the same, the rate set before each pipelined submit.
#[test]
fn gpu_training_with_a_schedule_matches_pytorch() {
    for case in &train_cases() {
        let mut trainer = GpuTrainer::new(gpu(), &weights(case, "init"), options(case)).unwrap();
        check("gpu", &mut trainer, case);
    }
}

/// (b) The schedule is what makes them match: at the base rate throughout the final weights
/// are not PyTorch's.
#[test]
fn at_a_constant_rate_the_weights_do_not_match() {
    for case in &train_cases() {
        let name = case["name"].as_str().unwrap();
        let mut trainer = CpuTrainer::new(&weights(case, "init"), options(case)).unwrap();
        let (_, rates) = train(&mut trainer, case, false);
        assert!(rates.iter().all(|&r| r == case["lr"].as_f64().unwrap()));
        let (got, want) = common::flat_pair(&trainer.weights().unwrap(), &weights(case, "final"));
        let off = TRAINED_WEIGHTS.first_mismatch(&got, &want);
        assert!(
            off.is_some(),
            "{name}: the constant rate matched PyTorch's scheduled weights"
        );
    }
}

// ---- (e) the schedule strings ----

/// Every form reads back from its Display to the same value.
#[test]
fn every_form_round_trips_through_display() {
    let forms = [
        ("constant", Schedule::Constant),
        (
            "step:2:0.5",
            Schedule::Step {
                every: 2,
                gamma: 0.5,
            },
        ),
        (
            "step:1:1.5",
            Schedule::Step {
                every: 1,
                gamma: 1.5,
            },
        ),
        (
            "cosine:5",
            Schedule::Cosine {
                t_max: 5,
                eta_min: 0.0,
            },
        ),
        (
            "cosine:5:0.001",
            Schedule::Cosine {
                t_max: 5,
                eta_min: 0.001,
            },
        ),
        (
            "cosine:3:1e-7",
            Schedule::Cosine {
                t_max: 3,
                eta_min: 1e-7,
            },
        ),
        (
            "plateau:0.5:2",
            Schedule::Plateau {
                factor: 0.5,
                patience: 2,
            },
        ),
        (
            "plateau:0.1:0",
            Schedule::Plateau {
                factor: 0.1,
                patience: 0,
            },
        ),
    ];
    for (text, want) in forms {
        let got: Schedule = text.parse().unwrap();
        assert_eq!(got, want, "{text}");
        let shown = got.to_string();
        assert_eq!(
            shown.parse::<Schedule>().unwrap(),
            got,
            "{text} shown as {shown}"
        );
    }
    assert_eq!(
        Schedule::Cosine {
            t_max: 5,
            eta_min: 0.0
        }
        .to_string(),
        "cosine:5"
    );
    assert_eq!(
        Schedule::Step {
            every: 2,
            gamma: 0.5
        }
        .to_string(),
        "step:2:0.5"
    );
    let odd = Schedule::Step {
        every: 7,
        gamma: 0.1 + 0.2,
    };
    assert_eq!(odd.to_string().parse::<Schedule>().unwrap(), odd);
}

/// A bad string is a config error naming the string, what is wrong in it and the forms.
#[test]
fn bad_strings_are_errors_naming_what_is_wrong() {
    let bad = [
        ("step:0:0.5", "EVERY must be >= 1, got 0"),
        (
            "cosine",
            "cosine is written cosine:T_MAX[:ETA_MIN], got 0 values",
        ),
        ("plateau:2:1", "FACTOR must be in (0, 1), got 2"),
        ("warp:1", "'warp' is not a schedule"),
        ("", "'' is not a schedule"),
        ("constant:1", "constant is written constant, got 1 values"),
        ("step:2", "step is written step:EVERY:GAMMA, got 1 values"),
        ("step:2:0", "GAMMA must be > 0 and finite, got 0"),
        ("step:2:x", "GAMMA 'x' is not a finite number"),
        ("step:1.5:0.5", "EVERY '1.5' is not a whole number"),
        ("cosine:0", "T_MAX must be >= 1, got 0"),
        ("cosine:5:-0.1", "ETA_MIN must be >= 0 and finite, got -0.1"),
        ("cosine:5:inf", "ETA_MIN 'inf' is not a finite number"),
        ("cosine:5:0:1", "got 3 values"),
        ("plateau:0:1", "FACTOR must be in (0, 1), got 0"),
        ("plateau:0.5:-1", "PATIENCE '-1' is not a whole number"),
    ];
    for (text, why) in bad {
        let error = text.parse::<Schedule>().unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, lstm_wgpu::Error::Config(_)),
            "{text}: {message}"
        );
        assert!(message.contains(why), "{text}: {message}");
        assert!(message.contains(&format!("'{text}'")), "{text}: {message}");
        assert!(
            message.contains("step:EVERY:GAMMA") && message.contains("plateau:FACTOR:PATIENCE"),
            "{text}: the forms in {message}"
        );
    }
}
