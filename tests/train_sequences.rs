//! Training on sequence-level targets, lengths and ignored classes, on both paths, against
//! PyTorch (tests/fixtures/make_golden_train_sequences.py made the fixtures; its docstring
//! says how each target is read there): per-step losses and the final weights after a few
//! steps of SGD or Adam.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, gpu, TRAINED_LOSS};
use lstm_wgpu::gpu::GpuTrainer;
use lstm_wgpu::io::{npy, safetensors};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::{CpuTrainer, OptimizerConfig, OptimizerKind, TrainOptions, Trainer};
use lstm_wgpu::{Inputs, LstmWeights};
use serde_json::Value;

fn path(name: &str) -> PathBuf {
    Path::new("tests/fixtures/train_seq").join(name)
}

fn cases() -> Vec<Value> {
    common::fixture_cases(Path::new("tests/fixtures/train_seq"))
}

fn options(case: &Value) -> TrainOptions {
    let kind = match case["optimizer"].as_str().unwrap() {
        "sgd" => OptimizerKind::Sgd,
        _ => OptimizerKind::Adam,
    };
    let mut opt = OptimizerConfig::new(kind, case["lr"].as_f64().unwrap() as f32);
    opt.momentum = case["momentum"].as_f64().unwrap() as f32;
    let loss = if case["loss"] == "mse" {
        Loss::Mse
    } else {
        Loss::CrossEntropy
    };
    TrainOptions::new(loss, opt)
}

fn weights(case: &Value, which: &str) -> LstmWeights {
    let name = case["name"].as_str().unwrap();
    let mut w = safetensors::load(&path(&format!("{name}_{which}.safetensors"))).unwrap();
    w.set_batch_first(case["batch_first"].as_bool().unwrap());
    w
}

fn run(trainer: &mut dyn Trainer, device: &str, case: &Value) {
    let name = case["name"].as_str().unwrap();
    let x = npy::read_f32(&path(&format!("{name}_x.npy"))).unwrap();
    let lengths = npy::read_lengths(&path(&format!("{name}_lengths.npy"))).unwrap();
    let y_path = path(&format!("{name}_y.npy"));
    let target = if case["loss"] == "mse" {
        Target::Values(npy::read_f32(&y_path).unwrap())
    } else {
        Target::Classes(npy::read_i64(&y_path).unwrap())
    };
    let inputs = Inputs::new(&x).lengths(Some(&lengths));
    let want = common::case_losses(case);
    let got: Vec<f32> = (0..want.len())
        .map(|_| trainer.step_with(&inputs, &target).unwrap())
        .collect();
    common::assert_trained_like_case(
        &format!("{device} {name}"),
        &got,
        case,
        &trainer.weights().unwrap(),
        &weights(case, "final"),
    );
}

#[test]
fn cpu_training_matches_pytorch_on_sequence_targets_and_lengths() {
    for case in cases() {
        let init = weights(&case, "init");
        run(
            &mut CpuTrainer::new(&init, options(&case)).unwrap(),
            "cpu",
            &case,
        );
    }
}

#[test]
fn gpu_training_matches_pytorch_on_sequence_targets_and_lengths() {
    for case in cases() {
        let init = weights(&case, "init");
        run(
            &mut GpuTrainer::new(gpu(), &init, options(&case)).unwrap(),
            "gpu",
            &case,
        );
    }
}

/// The fixtures reach what they are for: both levels, both losses, lengths shorter than T,
/// an ignored valid step, a bidirectional per-sequence model, and batch_first.
#[test]
fn fixtures_cover_levels_losses_lengths_and_ignores() {
    let cases = cases();
    let has = |f: &dyn Fn(&Value) -> bool| cases.iter().any(f);
    for level in ["sequence", "step"] {
        for loss in ["mse", "cross-entropy"] {
            assert!(
                has(&|c| c["level"] == level && c["loss"] == loss),
                "{level} {loss}"
            );
        }
    }
    assert!(has(
        &|c| c["level"] == "sequence" && c["lstm"]["bidirectional"] == true
    ));
    assert!(has(&|c| c["lengths"].is_array()));
    assert!(has(&|c| c["ignore"]
        .as_array()
        .is_some_and(|i| !i.is_empty())));
    assert!(has(&|c| c["batch_first"] == true));
}

/// Targets that fit neither level, classes out of range, nothing left to count, and lengths
/// outside 1..=T: clear errors on both paths, and no step is taken.
#[test]
fn bad_targets_and_lengths_are_errors_naming_the_problem() {
    use lstm_wgpu::{Linear, LstmConfig, Tensor};
    let config = LstmConfig::new(2, 3);
    let weights = LstmWeights::init(&config, 1)
        .unwrap()
        .with_head(Linear::init(3, 4, 2).unwrap())
        .unwrap();
    let x = Tensor::full([5, 2, 2], 0.5f32); // T = 5, B = 2
    let ce = TrainOptions::new(
        Loss::CrossEntropy,
        OptimizerConfig::new(OptimizerKind::Sgd, 0.1),
    );
    let classes =
        |shape: Vec<usize>, values: Vec<i64>| Target::Classes(Tensor::new(shape, values).unwrap());
    let two = [2usize, 2];
    let cases: Vec<(Target, Option<&[usize]>, &str)> = vec![
        (classes(vec![3], vec![0, 1, 2]), None, "one per sequence"),
        (classes(vec![2], vec![0, 4]), None, "outside 0..4"),
        (
            classes(vec![5, 2], vec![-100; 10]),
            None,
            "no target counts",
        ),
        (
            classes(vec![2], vec![0, 1]),
            Some(&[0, 2]),
            "lengths[0] = 0",
        ),
        (classes(vec![2], vec![0, 1]), Some(&[6, 2]), "outside 1..=5"),
        (
            classes(vec![2], vec![0, 1]),
            Some(&two[..1]),
            "lengths has 1 entries",
        ),
    ];
    for (target, lengths, want) in cases {
        let inputs = Inputs::new(&x).lengths(lengths);
        let mut cpu = CpuTrainer::new(&weights, ce).unwrap();
        let mut gpu = GpuTrainer::new(gpu(), &weights, ce).unwrap();
        for (device, trainer) in [("cpu", &mut cpu as &mut dyn Trainer), ("gpu", &mut gpu)] {
            let error = trainer.step_with(&inputs, &target).unwrap_err().to_string();
            assert!(error.contains(want), "{device}: {error} (want {want:?})");
            assert_eq!(
                trainer.weights().unwrap(),
                weights,
                "{device}: a step was taken"
            );
        }
    }
    // -100 is no class but is allowed: that row counts for nothing
    let mut cpu = CpuTrainer::new(&weights, ce).unwrap();
    let loss = cpu.step(
        &x,
        &classes(vec![5, 2], {
            let mut v = vec![1; 10];
            v[3] = -100;
            v
        }),
    );
    assert!(loss.unwrap().is_finite());
    // unbatched input takes per-step targets only
    let x1 = Tensor::full([5, 2], 0.5f32);
    let error = CpuTrainer::new(&weights, ce)
        .unwrap()
        .step(&x1, &classes(vec![1], vec![0]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unbatched input takes per-step targets only"),
        "{error}"
    );
}

/// `evaluate` scores a batch as training does: its loss is the first step's loss (before the
/// update) on both levels and both paths, and its accuracy counts the rows whose largest
/// logit is the class, from the CPU reference's logits in f64.
#[test]
fn evaluate_scores_as_training_does() {
    use lstm_wgpu::cpu::CpuLstm;
    use lstm_wgpu::gpu::GpuLstm;
    use lstm_wgpu::train::evaluate;
    for case in cases().iter().filter(|c| c["loss"] == "cross-entropy") {
        let name = case["name"].as_str().unwrap();
        let init = weights(case, "init");
        let x = npy::read_f32(&path(&format!("{name}_x.npy"))).unwrap();
        let lengths = npy::read_lengths(&path(&format!("{name}_lengths.npy"))).unwrap();
        let target = Target::Classes(npy::read_i64(&path(&format!("{name}_y.npy"))).unwrap());
        let inputs = Inputs::new(&x).lengths(Some(&lengths));
        let first_loss = case["losses"][0].as_f64().unwrap();
        let cpu_out = CpuLstm::<f32>::new(&init).forward_with(&inputs).unwrap();
        let gpu_out = GpuLstm::new(gpu(), &init)
            .unwrap()
            .forward_with(&inputs)
            .unwrap();
        for (device, out) in [("cpu", &cpu_out), ("gpu", &gpu_out)] {
            let m = evaluate(
                &init,
                out,
                Some(&lengths),
                false,
                Loss::CrossEntropy,
                &target,
            )
            .unwrap();
            assert_close(
                &format!("{device} {name} loss"),
                &[m.loss],
                &[first_loss],
                TRAINED_LOSS,
            );
            assert!((m.perplexity.unwrap() - m.loss.exp()).abs() < 1e-6);
            // accuracy from the f64 reference's logits, by hand
            let x64 = x.map(f64::from);
            let reference = CpuLstm::<f64>::new(&init)
                .forward_with(&Inputs::new(&x64).lengths(Some(&lengths)))
                .unwrap();
            let classes = match &target {
                Target::Classes(c) => c.data().to_vec(),
                _ => unreachable!(),
            };
            let logits: Vec<Vec<f64>> = if case["level"] == "sequence" {
                let cfg = init.config();
                let (b, h_out) = (classes.len(), cfg.output_size());
                let top = (cfg.num_layers - 1) * cfg.num_directions();
                let head = init.head().unwrap();
                let (w, bias) = (head.weight.data(), head.bias.as_ref().unwrap().data());
                let features = |r: usize| -> Vec<f64> {
                    (0..cfg.num_directions())
                        .flat_map(|d| {
                            let at = ((top + d) * b + r) * h_out;
                            reference.h_n.data()[at..at + h_out].to_vec()
                        })
                        .collect()
                };
                (0..b)
                    .map(|r| {
                        let f = features(r);
                        (0..bias.len())
                            .map(|k| {
                                bias[k] as f64
                                    + f.iter()
                                        .enumerate()
                                        .map(|(i, v)| v * w[k * f.len() + i] as f64)
                                        .sum::<f64>()
                            })
                            .collect()
                    })
                    .collect()
            } else {
                let width = *reference.output.shape().last().unwrap();
                reference
                    .output
                    .data()
                    .chunks(width)
                    .map(|c| c.to_vec())
                    .collect()
            };
            let batch = lengths.len();
            let (mut counted, mut correct) = (0, 0);
            for (r, (row, &class)) in logits.iter().zip(&classes).enumerate() {
                let valid = case["level"] == "sequence" || r / batch < lengths[r % batch];
                if !valid || class == -100 {
                    continue;
                }
                counted += 1;
                let best = (0..row.len()).fold(0, |a, k| if row[k] > row[a] { k } else { a });
                correct += (best as i64 == class) as usize;
            }
            assert_eq!(m.counted, counted, "{device} {name}");
            assert_eq!(
                m.accuracy.unwrap(),
                correct as f32 / counted as f32,
                "{device} {name}"
            );
        }
    }
}

/// The accuracy each step reports beside its loss (what the training log prints) is the
/// accuracy of the weights the step started from, as `evaluate` scores them from the CPU
/// reference's forward pass (checked by hand above): on both paths, both levels, with
/// lengths and ignored classes, over steps whose weights change.
#[test]
fn each_step_reports_the_accuracy_of_the_weights_it_started_from() {
    use lstm_wgpu::cpu::CpuLstm;
    use lstm_wgpu::train::evaluate;
    let mut seen = Vec::new();
    for case in cases().iter().filter(|c| c["loss"] == "cross-entropy") {
        let name = case["name"].as_str().unwrap();
        let init = weights(case, "init");
        let x = npy::read_f32(&path(&format!("{name}_x.npy"))).unwrap();
        let lengths = npy::read_lengths(&path(&format!("{name}_lengths.npy"))).unwrap();
        let target = Target::Classes(npy::read_i64(&path(&format!("{name}_y.npy"))).unwrap());
        let inputs = Inputs::new(&x).lengths(Some(&lengths));
        let mut cpu = CpuTrainer::new(&init, options(case)).unwrap();
        let mut gpu_trainer = GpuTrainer::new(gpu(), &init, options(case)).unwrap();
        let trainers: [(&str, &mut dyn Trainer); 2] =
            [("cpu", &mut cpu), ("gpu", &mut gpu_trainer)];
        for (device, trainer) in trainers {
            for step in 1..=4u64 {
                let before = trainer.weights().unwrap();
                let out = CpuLstm::<f32>::new(&before).forward_with(&inputs).unwrap();
                let want = evaluate(
                    &before,
                    &out,
                    Some(&lengths),
                    false,
                    Loss::CrossEntropy,
                    &target,
                )
                .unwrap();
                let mut scores = trainer.submit_with(&inputs, &target).unwrap();
                scores.extend(trainer.flush().unwrap());
                let got = scores.last().unwrap();
                assert_eq!(got.step, step, "{device} {name}");
                assert!(
                    want.accuracy.is_some(),
                    "{device} {name}: cross-entropy has one"
                );
                assert_eq!(got.accuracy, want.accuracy, "{device} {name} step {step}");
                seen.extend(got.accuracy);
            }
        }
    }
    // neither none right nor all right everywhere: a count that is always 0 would show
    assert!(seen.iter().any(|&a| a > 0.0 && a < 1.0), "{seen:?}");
}

/// MSE has no accuracy.
#[test]
fn a_regression_step_reports_no_accuracy() {
    let case = cases().into_iter().find(|c| c["loss"] == "mse").unwrap();
    let name = case["name"].as_str().unwrap();
    let x = npy::read_f32(&path(&format!("{name}_x.npy"))).unwrap();
    let lengths = npy::read_lengths(&path(&format!("{name}_lengths.npy"))).unwrap();
    let target = Target::Values(npy::read_f32(&path(&format!("{name}_y.npy"))).unwrap());
    let inputs = Inputs::new(&x).lengths(Some(&lengths));
    let init = weights(&case, "init");
    let mut cpu = CpuTrainer::new(&init, options(&case)).unwrap();
    let mut gpu_trainer = GpuTrainer::new(gpu(), &init, options(&case)).unwrap();
    let trainers: [&mut dyn Trainer; 2] = [&mut cpu, &mut gpu_trainer];
    for trainer in trainers {
        let mut scores = trainer.submit_with(&inputs, &target).unwrap();
        scores.extend(trainer.flush().unwrap());
        assert_eq!(scores.len(), 1);
        assert!(scores[0].loss.is_finite() && scores[0].accuracy.is_none());
    }
}
