//! The GPU path against the CPU reference in f64 on a sweep of awkward shapes.
//! GPU buffers start as NaN, so any element a kernel never writes fails the comparison.

mod common;

use common::{assert_close, gpu, random_tensor, to_f64, GPU_VS_F64};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::{LstmConfig, LstmWeights};

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

fn run(case: &Case, seed: u64) {
    let config = LstmConfig::new(case.input, case.hidden)
        .num_layers(case.layers)
        .bidirectional(case.bidirectional)
        .bias(case.bias)
        .proj_size(case.proj)
        .batch_first(case.batch_first);
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

    let want = CpuLstm::<f64>::new(&weights)
        .forward(
            &to_f64(&x),
            h0.map(to_f64).as_ref(),
            c0.map(to_f64).as_ref(),
        )
        .unwrap();
    let got = GpuLstm::new(gpu(), &weights)
        .unwrap()
        .forward(&x, h0, c0)
        .unwrap();
    assert_eq!(got.output.shape(), want.output.shape(), "{case:?}");
    assert_close(
        &format!("output {case:?}"),
        got.output.data(),
        want.output.data(),
        GPU_VS_F64,
    );
    assert_close(
        &format!("h_n {case:?}"),
        got.h_n.data(),
        want.h_n.data(),
        GPU_VS_F64,
    );
    assert_close(
        &format!("c_n {case:?}"),
        got.c_n.data(),
        want.c_n.data(),
        GPU_VS_F64,
    );
}

#[test]
fn gpu_matches_cpu_f64_on_shape_sweep() {
    for (i, case) in CASES.iter().enumerate() {
        run(case, 100 * i as u64);
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
