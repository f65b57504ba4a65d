//! GPU gradients (the training forward + loss + backward plan) against the CPU reference in
//! f64, on a sweep of shapes: every parameter, the input, h0/c0, both losses, lengths.

mod common;

use common::{assert_close, gpu, random_tensor, to_f64, Tolerance};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::{GpuTrainer, KernelChoice, RecurrentShape};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::{OptimizerConfig, OptimizerKind, TrainOptions};
use lstm_wgpu::{Inputs, Linear, LstmConfig, LstmWeights, Tensor};

/// Gradients sum over many more terms than outputs do: a looser bound than GPU_VS_F64.
const GRADIENTS: Tolerance = Tolerance {
    abs: 3e-5,
    rel: 3e-4,
};

#[derive(Debug, Clone, Copy)]
struct Case {
    hidden: usize,
    input: usize,
    batch: usize,
    seq_len: usize,
    layers: usize,
    bidirectional: bool,
    bias: bool,
    proj: usize,
    head: usize,
    state: bool,
    lengths: bool,
    batch_first: bool,
    loss: Loss,
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { hidden: 1, input: 1, batch: 1, seq_len: 1, layers: 1, bidirectional: false, bias: true, proj: 0, head: 0, state: false, lengths: false, batch_first: false, loss: Loss::Mse },
    Case { hidden: 5, input: 3, batch: 3, seq_len: 4, layers: 2, bidirectional: true, bias: true, proj: 0, head: 2, state: true, lengths: true, batch_first: false, loss: Loss::Mse },
    Case { hidden: 17, input: 2, batch: 2, seq_len: 7, layers: 1, bidirectional: true, bias: false, proj: 0, head: 3, state: false, lengths: true, batch_first: true, loss: Loss::CrossEntropy },
    Case { hidden: 8, input: 4, batch: 5, seq_len: 3, layers: 2, bidirectional: true, bias: true, proj: 3, head: 0, state: true, lengths: true, batch_first: false, loss: Loss::Mse },
    Case { hidden: 65, input: 9, batch: 6, seq_len: 5, layers: 1, bidirectional: false, bias: true, proj: 0, head: 4, state: true, lengths: false, batch_first: false, loss: Loss::CrossEntropy },
    Case { hidden: 70, input: 3, batch: 2, seq_len: 6, layers: 3, bidirectional: true, bias: true, proj: 33, head: 2, state: false, lengths: true, batch_first: true, loss: Loss::Mse },
];

fn run(case: &Case, seed: u64, kernel: KernelChoice) {
    let config = LstmConfig::new(case.input, case.hidden)
        .num_layers(case.layers)
        .bidirectional(case.bidirectional)
        .bias(case.bias)
        .proj_size(case.proj)
        .batch_first(case.batch_first);
    let mut weights = LstmWeights::init(&config, seed).unwrap();
    if case.head > 0 {
        let width = config.num_directions() * config.output_size();
        weights = weights
            .with_head(Linear::init(width, case.head, seed + 1).unwrap())
            .unwrap();
    }
    let (t, b) = (case.seq_len, case.batch);
    let x = random_tensor(
        &if case.batch_first {
            [b, t, case.input]
        } else {
            [t, b, case.input]
        },
        seed + 2,
    );
    let states = config.num_layers * config.num_directions();
    let h0 = random_tensor(&[states, b, config.output_size()], seed + 3);
    let c0 = random_tensor(&[states, b, case.hidden], seed + 4);
    let lengths: Vec<usize> = (0..b).map(|i| 1 + (i * 7 + 3) % t).collect();
    let width = weights.output_width();
    let lead = if case.batch_first { [b, t] } else { [t, b] };
    let target = match case.loss {
        Loss::Mse => Target::Values(random_tensor(&[lead[0], lead[1], width], seed + 5)),
        Loss::CrossEntropy => Target::Classes(
            Tensor::new(
                lead.to_vec(),
                (0..t * b).map(|i| (i * 5 % width) as i64).collect(),
            )
            .unwrap(),
        ),
    };
    let (h0, c0) = if case.state {
        (Some(&h0), Some(&c0))
    } else {
        (None, None)
    };
    let lengths = case.lengths.then_some(lengths.as_slice());

    let options = TrainOptions::new(case.loss, OptimizerConfig::new(OptimizerKind::Sgd, 1.0));
    let mut trainer = GpuTrainer::new(gpu(), &weights, options).unwrap();
    trainer.set_kernel(kernel);
    let got = trainer
        .gradients(&Inputs::new(&x).state(h0, c0).lengths(lengths), &target)
        .unwrap();
    let (x64, h064, c064) = (to_f64(&x), h0.map(to_f64), c0.map(to_f64));
    let (loss, _, want) = CpuLstm::<f64>::new(&weights)
        .loss_gradients(
            &Inputs::new(&x64)
                .state(h064.as_ref(), c064.as_ref())
                .lengths(lengths),
            case.loss,
            &target,
        )
        .unwrap();
    let what = |s: &str| format!("{s} {case:?} {kernel:?}");
    assert_close(&what("loss"), &[got.loss], &[loss], GRADIENTS);
    let want_weights = want.to_weights(&weights).unwrap();
    for ((name, g), (_, w)) in got
        .grads
        .named_tensors()
        .into_iter()
        .zip(want_weights.named_tensors())
    {
        let w64: Vec<f64> = w.data().iter().map(|&v| v as f64).collect();
        assert_close(&what(&format!("d{name}")), g.data(), &w64, GRADIENTS);
    }
    // (to_weights rounds the f64 reference to f32: fine at this tolerance)
    if let (Some(gh), Some(wh)) = (got.grads.head(), want.head.as_ref()) {
        assert_close(
            &what("dhead.weight"),
            gh.weight.data(),
            &wh.weight,
            GRADIENTS,
        );
        if let Some(bias) = &gh.bias {
            assert_close(&what("dhead.bias"), bias.data(), &wh.bias, GRADIENTS);
        }
    }
    assert_close(&what("dx"), got.dx.data(), want.dx.data(), GRADIENTS);
    assert_close(&what("dh0"), got.dh0.data(), want.dh0.data(), GRADIENTS);
    assert_close(&what("dc0"), got.dc0.data(), want.dc0.data(), GRADIENTS);
}

#[test]
fn gpu_gradients_match_cpu_f64() {
    for (i, case) in CASES.iter().enumerate() {
        run(case, 1000 + 10 * i as u64, KernelChoice::Auto);
    }
}

/// The training forward pass through each recurrent kernel that can run the case (the
/// sequence kernel writes every step's state and gates for backward from one dispatch).
#[test]
fn gpu_gradients_match_cpu_f64_with_each_kernel() {
    let caps = common::caps(gpu());
    let mut ran = [0; 2];
    for (i, case) in CASES.iter().enumerate() {
        let shape = RecurrentShape {
            hidden: case.hidden,
            hidden_out: if case.proj > 0 {
                case.proj
            } else {
                case.hidden
            },
            batch: case.batch,
        };
        for (k, kernel) in [KernelChoice::Sequence, KernelChoice::PerStep]
            .into_iter()
            .enumerate()
        {
            if kernel.resolve(shape, &caps).is_ok() {
                run(case, 2000 + 10 * i as u64, kernel);
                ran[k] += 1;
            }
        }
    }
    assert!(ran[0] >= 2 && ran[1] >= 4, "kernel runs: {ran:?}");
}

/// The backward kernels' size sweep: H in {1, 63, 64, 65, 127, 128, 129, 255, 1024} and B in
/// {1, 3, 4, 5, 32, 33, 64}, each with several of the other, with lengths, projections, both
/// directions and 1-3 layers (every row of the backward tile table).
#[rustfmt::skip]
const SWEEP: &[Case] = &[
    Case { hidden: 1, input: 2, batch: 33, seq_len: 3, layers: 2, bidirectional: true, bias: true, proj: 0, head: 2, state: true, lengths: true, batch_first: false, loss: Loss::Mse },
    Case { hidden: 63, input: 3, batch: 4, seq_len: 3, layers: 1, bidirectional: false, bias: true, proj: 0, head: 0, state: false, lengths: true, batch_first: false, loss: Loss::Mse },
    Case { hidden: 64, input: 2, batch: 1, seq_len: 4, layers: 3, bidirectional: false, bias: true, proj: 0, head: 3, state: true, lengths: false, batch_first: false, loss: Loss::CrossEntropy },
    Case { hidden: 65, input: 4, batch: 32, seq_len: 2, layers: 1, bidirectional: true, bias: false, proj: 0, head: 0, state: false, lengths: true, batch_first: true, loss: Loss::Mse },
    Case { hidden: 127, input: 3, batch: 5, seq_len: 3, layers: 1, bidirectional: false, bias: true, proj: 31, head: 2, state: true, lengths: true, batch_first: false, loss: Loss::Mse },
    Case { hidden: 128, input: 2, batch: 3, seq_len: 2, layers: 2, bidirectional: true, bias: true, proj: 0, head: 0, state: false, lengths: false, batch_first: false, loss: Loss::Mse },
    Case { hidden: 129, input: 2, batch: 64, seq_len: 2, layers: 1, bidirectional: false, bias: true, proj: 0, head: 4, state: true, lengths: true, batch_first: false, loss: Loss::CrossEntropy },
    Case { hidden: 255, input: 3, batch: 1, seq_len: 3, layers: 1, bidirectional: true, bias: true, proj: 65, head: 0, state: false, lengths: false, batch_first: false, loss: Loss::Mse },
    Case { hidden: 1024, input: 2, batch: 3, seq_len: 2, layers: 1, bidirectional: false, bias: true, proj: 0, head: 2, state: true, lengths: true, batch_first: false, loss: Loss::Mse },
    // T·B = 2,560: the weight-gradient products (4H x I, 4H x H) split K, the bias sums take
    // ten splits of 256 rows
    Case { hidden: 32, input: 2, batch: 64, seq_len: 40, layers: 1, bidirectional: true, bias: true, proj: 0, head: 4, state: true, lengths: true, batch_first: false, loss: Loss::Mse },
];

#[test]
fn gpu_gradients_match_cpu_f64_on_the_size_sweep() {
    for (i, case) in SWEEP.iter().enumerate() {
        run(case, 3000 + 10 * i as u64, KernelChoice::Auto);
    }
}
