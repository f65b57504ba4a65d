//! Stateful truncated BPTT against PyTorch (tests/fixtures/make_golden_train_bptt.py made the
//! fixtures): a long input trained in windows, the state carried from window to window
//! detached and reset at each epoch, the last window shorter; floats with MSE and a token
//! stream through an embedding with clipping; both paths.

mod common;

use std::path::{Path, PathBuf};

use common::gpu;
use lstm_wgpu::gpu::GpuTrainer;
use lstm_wgpu::io::{npy, safetensors};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::bptt::{next_token_windows, windows};
use lstm_wgpu::train::{
    CpuTrainer, OptimizerConfig, OptimizerKind, StepLoss, TrainOptions, Trainer,
};
use lstm_wgpu::{Inputs, LstmWeights, Tensor};
use serde_json::Value;

fn path(name: &str) -> PathBuf {
    Path::new("tests/fixtures/train_bptt").join(name)
}

fn cases() -> Vec<Value> {
    common::fixture_cases(Path::new("tests/fixtures/train_bptt"))
}

fn weights(case: &Value, which: &str) -> LstmWeights {
    let name = case["name"].as_str().unwrap();
    safetensors::load(&path(&format!("{name}_{which}.safetensors"))).unwrap()
}

fn options(case: &Value, carry: bool) -> TrainOptions {
    let kind = match case["optimizer"].as_str().unwrap() {
        "sgd" => OptimizerKind::Sgd,
        _ => OptimizerKind::Adam,
    };
    let mut opt = OptimizerConfig::new(kind, case["lr"].as_f64().unwrap() as f32);
    opt.momentum = case["momentum"].as_f64().unwrap() as f32;
    let loss = if case["kind"] == "ids" {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    };
    let mut options = TrainOptions::new(loss, opt);
    options.clip_norm = case["clip"].as_f64().map(|c| c as f32);
    options.carry_state = carry;
    options
}

/// Rows `start..start + len` of the first axis.
fn rows<T: Copy>(t: &Tensor<T>, start: usize, len: usize) -> Tensor<T> {
    let row: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = len;
    Tensor::new(shape, t.data()[start * row..(start + len) * row].to_vec()).unwrap()
}

/// Every epoch's windows in order, each submitted as one step; the losses.
fn train(trainer: &mut dyn Trainer, case: &Value) -> Vec<f32> {
    let name = case["name"].as_str().unwrap();
    let (n, k) = (
        case["N"].as_u64().unwrap() as usize,
        case["K"].as_u64().unwrap() as usize,
    );
    let mut done: Vec<StepLoss> = Vec::new();
    for _ in 0..case["epochs"].as_u64().unwrap() {
        trainer.reset_state();
        if case["kind"] == "ids" {
            let data = npy::read_i64(&path(&format!("{name}_data.npy"))).unwrap();
            for (i, len) in next_token_windows(n, k) {
                let target = Target::Classes(rows(&data, i + 1, len));
                done.extend(
                    trainer
                        .submit_ids(&rows(&data, i, len), None, &target)
                        .unwrap(),
                );
            }
        } else {
            let x = npy::read_f32(&path(&format!("{name}_x.npy"))).unwrap();
            let y = npy::read_f32(&path(&format!("{name}_y.npy"))).unwrap();
            for (i, len) in windows(n, k) {
                let target = Target::Values(rows(&y, i, len));
                done.extend(trainer.submit(&rows(&x, i, len), &target).unwrap());
            }
        }
    }
    done.extend(trainer.flush().unwrap());
    let steps: Vec<u64> = done.iter().map(|s| s.step).collect();
    assert_eq!(steps, (1..=done.len() as u64).collect::<Vec<_>>());
    done.iter().map(|s| s.loss).collect()
}

fn check(device: &str, trainer: &mut dyn Trainer, case: &Value) {
    let name = case["name"].as_str().unwrap();
    let losses = train(trainer, case);
    common::assert_trained_like_case(
        &format!("{device} {name}"),
        &losses,
        case,
        &trainer.weights().unwrap(),
        &weights(case, "final"),
    );
}

#[test]
fn cpu_truncated_bptt_matches_pytorch() {
    for case in cases() {
        let init = weights(&case, "init");
        check(
            "cpu",
            &mut CpuTrainer::new(&init, options(&case, true)).unwrap(),
            &case,
        );
    }
}

#[test]
fn gpu_truncated_bptt_matches_pytorch() {
    for case in cases() {
        let init = weights(&case, "init");
        check(
            "gpu",
            &mut GpuTrainer::new(gpu(), &init, options(&case, true)).unwrap(),
            &case,
        );
    }
}

/// The fixtures need the carry: without it (every window from zeros) the losses after each
/// epoch's first window are not PyTorch's; and they have the shorter last window.
#[test]
fn the_fixtures_depend_on_the_carried_state() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let init = weights(&case, "init");
        let mut fresh = CpuTrainer::new(&init, options(&case, false)).unwrap();
        let losses = train(&mut fresh, &case);
        let want = common::case_losses(&case);
        let off = losses
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(
            off > 1e-3,
            "{name}: without the carry the losses differ by only {off}"
        );
        let windows = case["windows"].as_array().unwrap();
        let (first, last) = (&windows[0][1], &windows[windows.len() - 1][1]);
        assert!(
            last.as_u64() < first.as_u64(),
            "{name}: the last window is shorter"
        );
    }
}

/// Carrying the state takes whole windows of one batch size, without lengths or h0/c0 of
/// their own: anything else is an error naming it, and no step is taken.
#[test]
fn carrying_the_state_refuses_lengths_state_and_another_batch() {
    let case = cases().into_iter().find(|c| c["kind"] == "floats").unwrap();
    let init = weights(&case, "init");
    let x = Tensor::full([4, 3, 3], 0.1f32);
    let y = Target::Values(Tensor::full([4, 3, 2], 0.0f32));
    let mut cpu = CpuTrainer::new(&init, options(&case, true)).unwrap();
    let mut gpu_trainer = GpuTrainer::new(gpu(), &init, options(&case, true)).unwrap();
    let trainers: [(&str, &mut dyn Trainer); 2] = [("cpu", &mut cpu), ("gpu", &mut gpu_trainer)];
    for (device, trainer) in trainers {
        let lengths = [4, 2, 3];
        let error = trainer
            .submit_with(&Inputs::new(&x).lengths(Some(&lengths)), &y)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no lengths"), "{device}: {error}");
        let h0 = Tensor::full([2, 3, 6], 0.0f32);
        let error = trainer
            .submit_with(&Inputs::new(&x).state(Some(&h0), None), &y)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not from h0/c0"), "{device}: {error}");
        assert_eq!(
            trainer.weights().unwrap(),
            init,
            "{device}: a step was taken"
        );
        trainer.submit(&x, &y).unwrap();
        trainer.flush().unwrap();
        let x2 = Tensor::full([4, 2, 3], 0.1f32);
        let y2 = Target::Values(Tensor::full([4, 2, 2], 0.0f32));
        let error = trainer.submit(&x2, &y2).unwrap_err().to_string();
        assert!(error.contains("same batch"), "{device}: {error}");
    }
}
