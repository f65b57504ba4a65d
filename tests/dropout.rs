//! Dropout in training: the masks are the same on both paths (GPU and CPU losses agree step
//! after step at p = 0.5 on all three sites), the kept fraction is within statistical bounds,
//! the gradients with fixed masks match finite differences, and evaluation never drops.

mod common;

use common::{assert_close, gpu, random_tensor, to_f64, Tolerance};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::GpuTrainer;
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::dropout::{draw, keep_below};
use lstm_wgpu::train::{
    CpuTrainer, Dropout, OptimizerConfig, OptimizerKind, ParamLayout, StepLoss, TrainOptions,
    Trainer,
};
use lstm_wgpu::{Embedding, Inputs, Linear, LstmConfig, LstmWeights, Tensor};

/// GPU against CPU training losses: the f32 paths' usual agreement, over many steps.
const LOSSES: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-4,
};

fn dropout(p: f32) -> Dropout {
    Dropout {
        input: p,
        between: p,
        output: p,
        seed: 7,
    }
}

/// A token model (embedding, 2 layers, head) and a float model (2 bidirectional layers),
/// each with its batch, trained 20 steps with every site at p = 0.5 on both paths.
#[test]
fn gpu_and_cpu_draw_the_same_masks() {
    let (t, b) = (6, 4);
    // a language model on ids
    let config = LstmConfig::new(5, 8).num_layers(2);
    let lm = LstmWeights::init(&config, 1)
        .unwrap()
        .with_head(Linear::init(8, 13, 2).unwrap())
        .unwrap()
        .with_embedding(Embedding::init(13, 5, 3).unwrap())
        .unwrap();
    let ids = Tensor::new(
        [t, b],
        (0..t * b).map(|i| ((i * 7 + 3) % 13) as i64).collect(),
    )
    .unwrap();
    let classes = Target::Classes(
        Tensor::new(
            [t, b],
            (0..t * b).map(|i| ((i * 5 + 1) % 13) as i64).collect(),
        )
        .unwrap(),
    );
    let mut options = TrainOptions::new(
        Loss::CrossEntropy,
        OptimizerConfig::new(OptimizerKind::Adam, 0.01),
    );
    options.dropout = dropout(0.5);
    let mut cpu = CpuTrainer::new(&lm, options).unwrap();
    let mut gpu_trainer = GpuTrainer::new(gpu(), &lm, options).unwrap();
    let (mut want, mut got) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        want.extend(cpu.submit_ids(&ids, None, &classes).unwrap());
        got.extend(gpu_trainer.submit_ids(&ids, None, &classes).unwrap());
    }
    got.extend(gpu_trainer.flush().unwrap());
    let losses = |v: &[StepLoss]| v.iter().map(|s| s.loss).collect::<Vec<_>>();
    let want64: Vec<f64> = losses(&want).iter().map(|&l| l as f64).collect();
    assert_close("lm losses, gpu vs cpu", &losses(&got), &want64, LOSSES);

    // a float model, bidirectional, MSE per step, with lengths
    let config = LstmConfig::new(3, 6).num_layers(2).bidirectional(true);
    let weights = LstmWeights::init(&config, 4)
        .unwrap()
        .with_head(Linear::init(12, 2, 5).unwrap())
        .unwrap();
    let x = random_tensor(&[t, b, 3], 6);
    let y = Target::Values(random_tensor(&[t, b, 2], 7));
    let lengths = [6, 3, 5, 1];
    let mut options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Sgd, 0.1));
    options.dropout = dropout(0.5);
    let mut cpu = CpuTrainer::new(&weights, options).unwrap();
    let mut gpu_trainer = GpuTrainer::new(gpu(), &weights, options).unwrap();
    let inputs = Inputs::new(&x).lengths(Some(&lengths));
    let (mut want, mut got) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        want.push(cpu.step_with(&inputs, &y).unwrap() as f64);
        got.push(gpu_trainer.step_with(&inputs, &y).unwrap());
    }
    assert_close("float losses, gpu vs cpu", &got, &want, LOSSES);
    let layout = ParamLayout::new(&weights);
    let w_gpu = layout.flatten(&gpu_trainer.weights().unwrap());
    let w_cpu: Vec<f64> = layout
        .flatten(&cpu.weights().unwrap())
        .iter()
        .map(|&v| v as f64)
        .collect();
    assert_close(
        "weights after 20 steps",
        &w_gpu,
        &w_cpu,
        Tolerance {
            abs: 1e-4,
            rel: 1e-3,
        },
    );
    // and dropout changed the run: without it the losses differ
    let mut plain = CpuTrainer::new(
        &weights,
        TrainOptions {
            dropout: Dropout::default(),
            ..options
        },
    )
    .unwrap();
    let undropped = plain.step_with(&inputs, &y).unwrap() as f64;
    assert!(
        (undropped - want[0]).abs() > 1e-4,
        "{undropped} vs {}",
        want[0]
    );
}

/// Over 200,000 elements the kept fraction is within 5 standard deviations of 1 - p, and the
/// masks of two steps (or two sites) are different draws.
#[test]
fn the_kept_fraction_is_within_statistical_bounds() {
    let n = 200_000u32;
    for p in [0.1f32, 0.5, 0.8] {
        let below = keep_below(p);
        let kept = (0..n).filter(|&i| draw(7, 1, 2, i) < below).count() as f64;
        let (mean, sd) = (
            n as f64 * (1.0 - p as f64),
            (n as f64 * p as f64 * (1.0 - p as f64)).sqrt(),
        );
        assert!(
            (kept - mean).abs() < 5.0 * sd,
            "p {p}: kept {kept}, expected {mean} ± {sd}"
        );
    }
    let below = keep_below(0.5);
    let same = |a: (u32, u32), b: (u32, u32)| {
        (0..10_000u32)
            .filter(|&i| (draw(7, a.0, a.1, i) < below) == (draw(7, b.0, b.1, i) < below))
            .count()
    };
    // independent masks agree on about half the elements
    for (a, b) in [((1, 0), (2, 0)), ((1, 0), (1, 1))] {
        let agree = same(a, b);
        assert!((4_500..5_500).contains(&agree), "{a:?} vs {b:?}: {agree}");
    }
}

/// With the masks fixed (seed, step), the f64 reference's gradient of the loss matches central
/// differences, for parameters of every kind and for the input, at all three sites.
#[test]
fn gradients_with_fixed_masks_match_finite_differences() {
    let config = LstmConfig::new(3, 4).num_layers(2);
    let weights = LstmWeights::init(&config, 9)
        .unwrap()
        .with_head(Linear::init(4, 2, 10).unwrap())
        .unwrap();
    let x = to_f64(&random_tensor(&[5, 2, 3], 11));
    let target = Target::Values(random_tensor(&[5, 2, 2], 12));
    let drop = (dropout(0.4), 3u32);
    let model = CpuLstm::<f64>::new(&weights);
    let (_, _, grads) = model
        .loss_gradients_dropout(&Inputs::new(&x), Loss::Mse, &target, drop)
        .unwrap();
    let loss_at = |m: &CpuLstm<f64>, x: &Tensor<f64>| {
        m.loss_gradients_dropout(&Inputs::new(x), Loss::Mse, &target, drop)
            .unwrap()
            .0
    };
    let h = 1e-6;
    // the input
    for i in [0usize, 7, 16, 29] {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus.data_mut()[i] += h;
        minus.data_mut()[i] -= h;
        let numeric = (loss_at(&model, &plus) - loss_at(&model, &minus)) / (2.0 * h);
        let analytic = grads.dx.data()[i];
        assert!(
            (numeric - analytic).abs() < 1e-7 + 1e-5 * analytic.abs(),
            "dx[{i}]: {numeric} vs {analytic}"
        );
    }
    // W_ih of both layers and the head
    for (layer, i) in [(0usize, 5usize), (1, 9), (1, 30)] {
        let mut plus = model.clone();
        let mut minus = model.clone();
        plus.layers[layer].w_ih[i] += h;
        minus.layers[layer].w_ih[i] -= h;
        let numeric = (loss_at(&plus, &x) - loss_at(&minus, &x)) / (2.0 * h);
        let analytic = grads.layers[layer].w_ih[i];
        assert!(
            (numeric - analytic).abs() < 1e-7 + 1e-5 * analytic.abs(),
            "w_ih l{layer}[{i}]: {numeric} vs {analytic}"
        );
    }
    let (mut plus, mut minus) = (model.clone(), model.clone());
    plus.head.as_mut().unwrap().weight[3] += h;
    minus.head.as_mut().unwrap().weight[3] -= h;
    let numeric = (loss_at(&plus, &x) - loss_at(&minus, &x)) / (2.0 * h);
    let analytic = grads.head.as_ref().unwrap().weight[3];
    assert!(
        (numeric - analytic).abs() < 1e-7 + 1e-5 * analytic.abs(),
        "head: {numeric} vs {analytic}"
    );
}

/// Dropout changes training only: the trained model's forward (what `run` and `eval` use)
/// takes no dropout, and two forwards agree bitwise.
#[test]
fn a_model_trained_with_dropout_runs_without_it() {
    let config = LstmConfig::new(3, 6).num_layers(2);
    let weights = LstmWeights::init(&config, 4).unwrap();
    let x = random_tensor(&[4, 2, 3], 1);
    let y = Target::Values(random_tensor(&[4, 2, 6], 2));
    let mut options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Sgd, 0.1));
    options.dropout = dropout(0.5);
    let mut trainer = CpuTrainer::new(&weights, options).unwrap();
    trainer.step(&x, &y).unwrap();
    let trained = trainer.weights().unwrap();
    let a = CpuLstm::<f32>::new(&trained)
        .forward(&x, None, None)
        .unwrap();
    let b = CpuLstm::<f32>::new(&trained)
        .forward(&x, None, None)
        .unwrap();
    assert_eq!(a, b);
    // a bad probability is a configuration error
    options.dropout.between = 1.0;
    let error = CpuTrainer::new(&weights, options)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("dropout between layers must be in [0, 1)"),
        "{error}"
    );
}
