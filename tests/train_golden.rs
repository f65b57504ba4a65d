//! Training steps against PyTorch (tests/fixtures/train, made by
//! tests/fixtures/make_golden_train.py): SGD (plain, momentum, weight decay), Adam, AdamW,
//! MSE and cross-entropy, gradient clipping; on the CPU and GPU trainers.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, gpu, Tolerance};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::GpuTrainer;
use lstm_wgpu::io::{npy, safetensors};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::{
    CpuTrainer, OptimizerConfig, OptimizerKind, ParamLayout, TrainOptions, Trainer,
};
use lstm_wgpu::Inputs;
use serde_json::Value;

const WEIGHTS: Tolerance = common::TRAINED_WEIGHTS;
const LOSS: Tolerance = common::TRAINED_LOSS;

fn path(name: &str) -> PathBuf {
    Path::new("tests/fixtures/train").join(name)
}

fn options(case: &Value) -> TrainOptions {
    let kind = match case["optimizer"].as_str().unwrap() {
        "sgd" => OptimizerKind::Sgd,
        "adam" => OptimizerKind::Adam,
        _ => OptimizerKind::AdamW,
    };
    let mut opt = OptimizerConfig::new(kind, case["lr"].as_f64().unwrap() as f32);
    opt.momentum = case["momentum"].as_f64().unwrap() as f32;
    opt.weight_decay = case["weight_decay"].as_f64().unwrap() as f32;
    let loss = if case["loss"] == "mse" {
        Loss::Mse
    } else {
        Loss::CrossEntropy
    };
    let mut options = TrainOptions::new(loss, opt);
    options.clip_norm = case["clip"].as_f64().map(|c| c as f32);
    options
}

/// Adam's first update is lr · g / |g| whatever |g| is, so where a gradient is ~0 (below
/// 1e-6 in the f64 reference) its sign, and the update, are decided by f32 rounding: any two
/// implementations may differ there by up to lr per step. Those elements are only checked
/// against that bound; all others against WEIGHTS. Returns the per-element bound, flat.
fn adam_ill_conditioned(
    case: &Value,
    x: &lstm_wgpu::Tensor,
    target: &Target,
) -> Option<Vec<Option<f64>>> {
    if case["optimizer"] == "sgd" {
        return None;
    }
    let init = initial_weights(case);
    let x64 = x.map(f64::from);
    let (_, _, grads) = CpuLstm::<f64>::new(&init)
        .loss_gradients(&Inputs::new(&x64), options(case).loss, target)
        .unwrap();
    let layout = ParamLayout::new(&init);
    let mut flat = vec![0.0f64; layout.total];
    let g = grads.to_weights(&init).unwrap();
    // f32 is exact enough to tell 1e-6 from larger values
    for (i, v) in layout.flatten(&g).into_iter().enumerate() {
        flat[i] = v as f64;
    }
    let bound = case["lr"].as_f64().unwrap() * case["steps"].as_f64().unwrap() * 2.0;
    Some(
        flat.into_iter()
            .map(|v| (v.abs() < 1e-6).then_some(bound))
            .collect(),
    )
}

fn run(trainer: &mut dyn Trainer, device: &str, case: &Value) {
    let name = case["name"].as_str().unwrap();
    let x = npy::read_f32(&path(&format!("{name}_x.npy"))).unwrap();
    let y_path = path(&format!("{name}_y.npy"));
    let target = if case["loss"] == "mse" {
        Target::Values(npy::read_f32(&y_path).unwrap())
    } else {
        Target::Classes(npy::read_i64(&y_path).unwrap())
    };
    let loose = adam_ill_conditioned(case, &x, &target);
    let want_losses: Vec<f64> = case["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mut losses = Vec::new();
    for _ in 0..want_losses.len() {
        losses.push(trainer.step(&x, &target).unwrap());
    }
    assert_close(
        &format!("{device} {name} losses"),
        &losses,
        &want_losses,
        LOSS,
    );
    let want = safetensors::load(&path(&format!("{name}_final.safetensors"))).unwrap();
    let got = trainer.weights().unwrap();
    // Compare every parameter (LSTM and head) in the flat layout.
    let layout = ParamLayout::new(&want);
    let (got, want) = (layout.flatten(&got), layout.flatten(&want));
    let mut loosely = 0;
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        let (g, w) = (g as f64, w as f64);
        let bound = match loose.as_ref().and_then(|l| l[i]) {
            Some(bound) => {
                loosely += 1;
                bound
            }
            None => WEIGHTS.abs + WEIGHTS.rel * w.abs(),
        };
        assert!(
            (g - w).abs() <= bound,
            "{device} {name}: flat parameter {i}: got {g}, want {w} (bound {bound})"
        );
    }
    assert!(
        loosely * 50 < want.len(),
        "{device} {name}: {loosely} of {} loosely compared",
        want.len()
    );
}

/// The case's weights before training.
fn initial_weights(case: &Value) -> lstm_wgpu::LstmWeights {
    let name = case["name"].as_str().unwrap();
    safetensors::load(&path(&format!("{name}_init.safetensors"))).unwrap()
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(path("cases.json")).unwrap();
    let root: Value = serde_json::from_str(&text).unwrap();
    root["cases"].as_array().unwrap().clone()
}

#[test]
fn cpu_training_matches_pytorch() {
    for case in cases() {
        let init = initial_weights(&case);
        run(
            &mut CpuTrainer::new(&init, options(&case)).unwrap(),
            "cpu",
            &case,
        );
    }
}

#[test]
fn gpu_training_matches_pytorch() {
    for case in cases() {
        let init = initial_weights(&case);
        run(
            &mut GpuTrainer::new(gpu(), &init, options(&case)).unwrap(),
            "gpu",
            &case,
        );
    }
}

#[test]
fn fixtures_cover_every_optimizer_loss_and_clipping() {
    let cases = cases();
    for optimizer in ["sgd", "adam", "adamw"] {
        assert!(
            cases.iter().any(|c| c["optimizer"] == optimizer),
            "{optimizer}"
        );
    }
    assert!(
        cases.iter().any(|c| c["loss"] == "cross-entropy")
            && cases.iter().any(|c| c["loss"] == "mse")
    );
    assert!(cases.iter().any(|c| c["momentum"].as_f64().unwrap() > 0.0));
    // clipping is active: the norm before clipping exceeds the limit
    assert!(cases.iter().any(|c| c["grad_norms_before_clip"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_f64().unwrap() > c["clip"].as_f64().unwrap_or(f64::MAX))));
}
