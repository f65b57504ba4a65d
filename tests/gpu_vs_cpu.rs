//! The GPU path against the CPU reference in f64 on sweeps of awkward shapes, with every
//! kernel variant and with both the adapter's and WebGPU's default limits. GPU buffers start
//! as NaN, so any element a kernel never writes fails the comparison.

mod common;

use common::{assert_close, gpu, gpu_webgpu, kernel_choices, random_tensor, to_f64, GPU_VS_F64};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::{GpuContext, GpuLstm, KernelChoice, RecurrentShape};
use lstm_wgpu::{Inputs, LstmConfig, LstmWeights};

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
    state: bool,
    batch_first: bool,
    lengths: bool,
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    //      hidden input batch  T  layers bidir  bias  proj state  batch_first
    c(  1,   1, 1,  1, 1, false, true,    0, false, false),
    c(  2,   3, 3,  2, 1, true,  true,    0, true,  false),
    c( 17,   3, 8, 17, 2, true,  false,   0, false, true),
    c( 63, 130, 3, 17, 1, false, true,    0, true,  false),
    c( 64,   1, 8,  2, 3, true,  true,    0, true,  true),
    c( 65, 130, 1, 17, 2, false, true,    0, false, false),
    c(256,   3, 3,  2, 1, true,  true,    0, true,  false),
    c(256, 130, 8, 17, 2, true,  true,    0, false, false),
    c(600, 130, 8,  2, 1, false, true,    0, false, false),
    c(600,   3, 1, 17, 1, true,  true,  300, true,  false),
    c( 17,   3, 3, 17, 3, true,  true,    5, true,  true),
    c( 65,   1, 8,  1, 2, false, false,  64, false, true),
    c(  2,   1, 1, 17, 3, false, true,    1, true,  false),
    c(  1, 130, 3,  1, 1, true,  false,   0, true,  true),
];

#[allow(clippy::too_many_arguments)]
const fn c(
    hidden: usize,
    input: usize,
    batch: usize,
    seq_len: usize,
    layers: usize,
    bidirectional: bool,
    bias: bool,
    proj: usize,
    state: bool,
    batch_first: bool,
) -> Case {
    Case {
        lengths: false,
        hidden,
        input,
        batch,
        seq_len,
        layers,
        bidirectional,
        bias,
        proj,
        state,
        batch_first,
    }
}

impl Case {
    fn config(&self) -> LstmConfig {
        LstmConfig::new(self.input, self.hidden)
            .num_layers(self.layers)
            .bidirectional(self.bidirectional)
            .bias(self.bias)
            .proj_size(self.proj)
            .batch_first(self.batch_first)
    }

    fn with_lengths(mut self) -> Self {
        self.lengths = true;
        self
    }
}

/// Runs `case` on `ctx` with `kernel` against the CPU in f64; false when `kernel` cannot run
/// the shape (so nothing was compared).
fn run(case: &Case, seed: u64, ctx: &GpuContext, kernel: KernelChoice) -> bool {
    let config = case.config();
    let shape = RecurrentShape {
        hidden: case.hidden,
        hidden_out: config.output_size(),
        batch: case.batch,
    };
    if kernel.resolve(shape, &common::caps(ctx)).is_err() {
        return false;
    }
    let weights = LstmWeights::init(&config, seed).unwrap();
    let x_shape = if case.batch_first {
        [case.batch, case.seq_len, case.input]
    } else {
        [case.seq_len, case.batch, case.input]
    };
    let x = random_tensor(&x_shape, seed + 1);
    let states = config.num_layers * config.num_directions();
    let h0 = random_tensor(&[states, case.batch, config.output_size()], seed + 2);
    let c0 = random_tensor(&[states, case.batch, case.hidden], seed + 3);
    let (h0, c0) = if case.state {
        (Some(&h0), Some(&c0))
    } else {
        (None, None)
    };
    let lengths: Vec<usize> = (0..case.batch)
        .map(|b| 1 + (b * 5 + 2) % case.seq_len)
        .collect();
    let lengths = case.lengths.then_some(lengths.as_slice());

    let (x64, h064, c064) = (to_f64(&x), h0.map(to_f64), c0.map(to_f64));
    let want = CpuLstm::<f64>::new(&weights)
        .forward_with(
            &Inputs::new(&x64)
                .state(h064.as_ref(), c064.as_ref())
                .lengths(lengths),
        )
        .unwrap();
    let mut model = GpuLstm::new(ctx, &weights).unwrap();
    model.set_kernel(kernel);
    let got = model
        .forward_with(&Inputs::new(&x).state(h0, c0).lengths(lengths))
        .unwrap();
    let (variant, _) = model.kernel().unwrap();
    let what = |name: &str| format!("{name} {case:?} kernel {variant}");
    assert_eq!(got.output.shape(), want.output.shape(), "{case:?}");
    assert_close(
        &what("output"),
        got.output.data(),
        want.output.data(),
        GPU_VS_F64,
    );
    assert_close(&what("h_n"), got.h_n.data(), want.h_n.data(), GPU_VS_F64);
    assert_close(&what("c_n"), got.c_n.data(), want.c_n.data(), GPU_VS_F64);
    true
}

#[test]
fn gpu_matches_cpu_f64_on_shape_sweep() {
    let every = CASES.len() / common::sweep(CASES.len(), CASES.len() / 2);
    for (i, case) in CASES.iter().enumerate().step_by(every) {
        assert!(run(case, 100 * i as u64, gpu(), KernelChoice::Auto));
    }
}

/// The same sweep on a device with WebGPU's default limits (smaller workgroups, fewer
/// storage buffers, chunking sooner).
#[test]
fn gpu_matches_cpu_f64_with_webgpu_limits() {
    let every = CASES.len() / common::sweep(CASES.len(), CASES.len() / 2);
    for (i, case) in CASES.iter().enumerate().skip(1).step_by(every) {
        assert!(run(case, 100 * i as u64, gpu_webgpu(), KernelChoice::Auto));
    }
}

/// H in {1, 63, 64, 65, 127, 128, 129, 255, 1024} and B in {1, 3, 4, 5, 32, 33, 64}, each
/// with several of the other, with lengths, projections, both directions and 1-3 layers, run
/// with every kernel choice that can run it.
#[rustfmt::skip]
const VARIANT_CASES: &[Case] = &[
    //      hidden input batch  T  layers bidir  bias  proj state  batch_first
    c(   1,   2,  1,  5, 1, false, true,    0, false, false),
    c(   1,   3, 33,  4, 2, true,  true,    0, true,  false),
    c(  63,   5,  3,  4, 3, false, true,    0, true,  true),
    c(  63,   4, 64,  3, 1, true,  false,  31, false, false),
    c(  64,   7,  4,  5, 2, true,  true,    0, false, false),
    c(  64,   2, 32,  3, 1, false, true,    0, true,  false),
    c(  65,   3,  5,  4, 1, true,  true,    0, true,  false),
    c(  65,   9,  1,  6, 2, false, true,   17, false, true),
    c( 127,   4, 32,  3, 1, false, true,    0, false, false),
    c( 127,   3,  4,  3, 2, true,  true,    0, true,  false),
    c( 128,   5, 33,  2, 1, true,  false,   0, false, true),
    c( 128,   8,  1,  4, 1, false, true,    0, true,  false),
    c( 129,   3, 64,  2, 1, false, true,    0, false, false),
    c( 129,   6,  3,  3, 1, true,  true,   64, true,  false),
    c( 255,   4,  1,  3, 2, true,  true,    0, false, false),
    c( 255,   2,  5,  2, 1, false, true,  100, true,  true),
    c(1024,   3,  3,  2, 1, false, true,    0, true,  false),
    c(1024,   2, 64,  2, 1, false, true,    0, false, false),
];

#[test]
fn every_kernel_variant_matches_cpu_f64() {
    let choices = kernel_choices();
    let mut ran = vec![0; choices.len()];
    // on GL every other case: still every H and every kernel choice
    let every = VARIANT_CASES.len() / common::sweep(VARIANT_CASES.len(), VARIANT_CASES.len() / 2);
    for (i, case) in VARIANT_CASES.iter().enumerate().step_by(every) {
        let case = if i % 2 == 0 {
            case.with_lengths()
        } else {
            *case
        };
        for (k, &choice) in choices.iter().enumerate() {
            if run(&case, 7000 + 10 * i as u64, gpu(), choice) {
                ran[k] += 1;
            }
        }
    }
    // the subgroup variants need subgroups of 8 lanes or more; lavapipe and GPUs have them
    let subgroups = common::caps(gpu()).subgroup_size.is_some_and(|n| n >= 8);
    for (choice, n) in choices.iter().zip(&ran) {
        if !subgroups && needs_subgroups(choice) {
            eprintln!("note: the device has no subgroups of 8; {choice:?} did not run");
            continue;
        }
        // twice each on the full sweep; at least once on GL's halved one
        let least = if every > 1 { 1 } else { 2 };
        assert!(
            *n >= least,
            "kernel choice {choice:?} ran on only {n} cases"
        );
    }
}

fn needs_subgroups(choice: &KernelChoice) -> bool {
    use lstm_wgpu::gpu::Recurrence;
    match choice {
        KernelChoice::Exact(Recurrence::PerStep(t)) => t.span > 1,
        KernelChoice::Exact(Recurrence::Sequence(t)) => t.subgroups,
        _ => false,
    }
}

/// One model reused across shapes: workspaces are rebuilt, resident weights are not.
#[test]
fn one_model_serves_several_shapes() {
    let config = LstmConfig::new(5, 33).num_layers(2).bidirectional(true);
    let weights = LstmWeights::init(&config, 7).unwrap();
    let mut model = GpuLstm::new(gpu(), &weights).unwrap();
    let cpu = CpuLstm::<f64>::new(&weights);
    for (t, b) in [(3, 2), (9, 5), (3, 2), (1, 1)] {
        let x = random_tensor(&[t, b, 5], (t * 10 + b) as u64);
        let got = model.forward(&x, None, None).unwrap();
        let want = cpu.forward(&to_f64(&x), None, None).unwrap();
        assert_close(
            &format!("output T={t} B={b}"),
            got.output.data(),
            want.output.data(),
            GPU_VS_F64,
        );
    }
}

/// A call without h0/c0 or lengths starts from zeros and full length even after a call that
/// had them (the model skips uploads of what its buffers already hold).
#[test]
fn state_and_lengths_do_not_leak_between_calls() {
    let config = LstmConfig::new(3, 20).bidirectional(true);
    let weights = LstmWeights::init(&config, 11).unwrap();
    let x = random_tensor(&[6, 4, 3], 12);
    let h0 = random_tensor(&[2, 4, 20], 13);
    let c0 = random_tensor(&[2, 4, 20], 14);
    let lengths = [6, 2, 5, 1];
    let bits = |t: &lstm_wgpu::Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let plain = GpuLstm::new(gpu(), &weights)
        .unwrap()
        .forward(&x, None, None)
        .unwrap();
    let with_all = Inputs::new(&x)
        .state(Some(&h0), Some(&c0))
        .lengths(Some(&lengths));
    let fresh_with_all = GpuLstm::new(gpu(), &weights)
        .unwrap()
        .forward_with(&with_all)
        .unwrap();
    let mut model = GpuLstm::new(gpu(), &weights).unwrap();
    for _ in 0..2 {
        let got = model.forward_with(&with_all).unwrap();
        assert_eq!(bits(&got.output), bits(&fresh_with_all.output));
        assert_eq!(bits(&got.h_n), bits(&fresh_with_all.h_n));
        let got = model.forward(&x, None, None).unwrap();
        assert_eq!(bits(&got.output), bits(&plain.output));
        assert_eq!(bits(&got.c_n), bits(&plain.c_n));
    }
}
