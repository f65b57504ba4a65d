//! Token inputs: an nn.Embedding before the LSTM, trained as a language model on both paths
//! against PyTorch (tests/fixtures/make_golden_train_tokens.py made the fixtures), with and
//! without the head tied to the embedding; ids out of range; and the embedding's gradient
//! summed in a fixed order (bitwise repeatable).

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, gpu, TRAINED_LOSS, TRAINED_WEIGHTS};
use lstm_wgpu::gpu::GpuTrainer;
use lstm_wgpu::io::{npy, safetensors};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::{
    CpuTrainer, OptimizerConfig, OptimizerKind, ParamLayout, TrainOptions, Trainer,
};
use lstm_wgpu::LstmWeights;
use serde_json::Value;

fn path(name: &str) -> PathBuf {
    Path::new("tests/fixtures/train_tok").join(name)
}

fn cases() -> Vec<Value> {
    common::fixture_cases(Path::new("tests/fixtures/train_tok"))
}

fn weights(case: &Value, which: &str) -> LstmWeights {
    let name = case["name"].as_str().unwrap();
    let mut w = safetensors::load(&path(&format!("{name}_{which}.safetensors"))).unwrap();
    w.set_batch_first(case["batch_first"].as_bool().unwrap());
    w
}

fn options(case: &Value) -> TrainOptions {
    let kind = match case["optimizer"].as_str().unwrap() {
        "sgd" => OptimizerKind::Sgd,
        _ => OptimizerKind::Adam,
    };
    let mut opt = OptimizerConfig::new(kind, case["lr"].as_f64().unwrap() as f32);
    opt.momentum = case["momentum"].as_f64().unwrap() as f32;
    let mut options = TrainOptions::new(Loss::CrossEntropy, opt);
    options.tie_weights = case["tied"] == true;
    options
}

fn run(trainer: &mut dyn Trainer, device: &str, case: &Value) -> Vec<f32> {
    let name = case["name"].as_str().unwrap();
    let ids = npy::read_i64(&path(&format!("{name}_ids.npy"))).unwrap();
    let lengths = npy::read_lengths(&path(&format!("{name}_lengths.npy"))).unwrap();
    let target = Target::Classes(npy::read_i64(&path(&format!("{name}_y.npy"))).unwrap());
    let want = common::case_losses(case);
    let mut got = Vec::new();
    for _ in 0..want.len() {
        got.extend(
            trainer
                .submit_ids(&ids, Some(&lengths), &target)
                .unwrap()
                .into_iter()
                .map(|s| s.loss),
        );
    }
    got.extend(trainer.flush().unwrap().into_iter().map(|s| s.loss));
    assert_close(
        &format!("{device} {name} losses"),
        &got,
        &want,
        TRAINED_LOSS,
    );
    let want = weights(case, "final");
    let layout = ParamLayout::new(&want);
    assert!(layout.embedding.is_some());
    let flat = layout.flatten(&trainer.weights().unwrap());
    let want: Vec<f64> = layout.flatten(&want).iter().map(|&v| v as f64).collect();
    assert_close(
        &format!("{device} {name} weights"),
        &flat,
        &want,
        TRAINED_WEIGHTS,
    );
    flat
}

#[test]
fn cpu_language_model_training_matches_pytorch() {
    for case in cases() {
        let init = weights(&case, "init");
        assert_eq!(
            init.embedding().unwrap().vocab() as u64,
            case["vocab"].as_u64().unwrap()
        );
        run(
            &mut CpuTrainer::new(&init, options(&case)).unwrap(),
            "cpu",
            &case,
        );
    }
}

#[test]
fn gpu_language_model_training_matches_pytorch_and_repeats_bitwise() {
    for case in cases() {
        let init = weights(&case, "init");
        let first = run(
            &mut GpuTrainer::new(gpu(), &init, options(&case)).unwrap(),
            "gpu",
            &case,
        );
        let again = run(
            &mut GpuTrainer::new(gpu(), &init, options(&case)).unwrap(),
            "gpu",
            &case,
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&first), bits(&again), "{}", case["name"]);
    }
}

/// An id outside the vocabulary is an error naming it and its position, float inputs to a
/// token model (and ids to a float model) are errors, and no step is taken.
#[test]
fn bad_token_input_is_an_error_naming_it() {
    let case = &cases()[0];
    let init = weights(case, "init");
    let (t, b) = (3, 2);
    let mut bad = vec![1i64; t * b];
    bad[3] = 11; // vocab is 11: position [1, 1]
    let ids = lstm_wgpu::Tensor::new([t, b], bad).unwrap();
    let target = Target::Classes(lstm_wgpu::Tensor::new([t, b], vec![0i64; t * b]).unwrap());
    let mut cpu = CpuTrainer::new(&init, options(case)).unwrap();
    let mut gpu = GpuTrainer::new(gpu(), &init, options(case)).unwrap();
    for (device, trainer) in [("cpu", &mut cpu as &mut dyn Trainer), ("gpu", &mut gpu)] {
        let error = trainer
            .submit_ids(&ids, None, &target)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("token id 11 at position [1, 1]") && error.contains("0..11"),
            "{device}: {error}"
        );
        let x = lstm_wgpu::Tensor::full([t, b, 6], 0.0f32);
        let error = trainer.submit(&x, &target).unwrap_err().to_string();
        assert!(error.contains("takes token ids"), "{device}: {error}");
        assert_eq!(
            trainer.weights().unwrap(),
            init,
            "{device}: a step was taken"
        );
    }
}

/// The fixtures include a tied model, whose head and embedding stay one parameter (equal
/// after training), and tying a model that cannot be tied is a configuration error.
#[test]
fn tied_weights_stay_one_parameter_and_need_matching_shapes() {
    let cases = cases();
    let case = cases
        .iter()
        .find(|c| c["tied"] == true)
        .expect("a tied case");
    let init = weights(case, "init");
    let mut trainer = CpuTrainer::new(&init, options(case)).unwrap();
    let name = case["name"].as_str().unwrap();
    let ids = npy::read_i64(&path(&format!("{name}_ids.npy"))).unwrap();
    let target = Target::Classes(npy::read_i64(&path(&format!("{name}_y.npy"))).unwrap());
    trainer.submit_ids(&ids, None, &target).unwrap();
    let trained = trainer.weights().unwrap();
    assert_eq!(
        trained.head().unwrap().weight,
        trained.embedding().unwrap().weight
    );
    assert_ne!(
        trained.embedding().unwrap().weight,
        init.embedding().unwrap().weight
    );
    // an untied-shape model: head [V, 8] over an embedding [V, 6]
    let untieable = weights(&cases[0], "init");
    let mut tied = options(&cases[0]);
    tied.tie_weights = true;
    let error = CpuTrainer::new(&untieable, tied).err().unwrap().to_string();
    assert!(error.contains("embedding's shape"), "{error}");
    let error = GpuTrainer::new(gpu(), &untieable, tied)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("embedding's shape"), "{error}");
}

/// A language model's step reports the accuracy of the weights it started from (next-token
/// predictions over the valid steps), as `evaluate` scores the CPU reference's forward pass
/// of the looked-up embeddings, on both paths.
#[test]
fn language_model_steps_report_their_accuracy() {
    use lstm_wgpu::cpu::CpuLstm;
    use lstm_wgpu::train::evaluate;
    use lstm_wgpu::Inputs;
    let mut seen = Vec::new();
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let init = weights(&case, "init");
        let ids = npy::read_i64(&path(&format!("{name}_ids.npy"))).unwrap();
        let lengths = npy::read_lengths(&path(&format!("{name}_lengths.npy"))).unwrap();
        let target = Target::Classes(npy::read_i64(&path(&format!("{name}_y.npy"))).unwrap());
        let mut cpu = CpuTrainer::new(&init, options(&case)).unwrap();
        let mut gpu_trainer = GpuTrainer::new(gpu(), &init, options(&case)).unwrap();
        let trainers: [(&str, &mut dyn Trainer); 2] =
            [("cpu", &mut cpu), ("gpu", &mut gpu_trainer)];
        for (device, trainer) in trainers {
            for step in 1..=3 {
                let before = trainer.weights().unwrap();
                let x = before.embedding().unwrap().lookup(&ids).unwrap();
                let inputs = Inputs::new(&x).lengths(Some(&lengths));
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
                let mut scores = trainer.submit_ids(&ids, Some(&lengths), &target).unwrap();
                scores.extend(trainer.flush().unwrap());
                let got = scores.last().unwrap();
                assert_eq!(got.accuracy, want.accuracy, "{device} {name} step {step}");
                seen.extend(got.accuracy);
            }
        }
    }
    assert!(seen.iter().any(|&a| a > 0.0 && a < 1.0), "{seen:?}");
}
