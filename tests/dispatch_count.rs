//! A forward pass is (1 projection gemm + T fused steps) dispatches per layer, and
//! (1 + 2T) with proj_size (the projection needs a second dispatch per step: it reads every
//! hidden unit, which lstm_step writes from many workgroups).

mod common;

use common::gpu;
use lstm_wgpu::gpu::{GpuLstm, Kernel};
use lstm_wgpu::{Dims, LstmConfig, LstmWeights};

fn plan_counts(config: &LstmConfig, seq_len: usize) -> (Vec<usize>, usize, usize, usize) {
    let weights = LstmWeights::init(config, 0).unwrap();
    let mut model = GpuLstm::new(gpu(), &weights).unwrap();
    model.prepare(Dims { seq_len, batch: 3 }).unwrap();
    let plan = model.plan().unwrap();
    let per_layer = (0..config.num_layers)
        .map(|l| plan.count_in_layer(l))
        .collect();
    (
        per_layer,
        plan.count(Kernel::Gemm),
        plan.count(Kernel::LstmStep),
        plan.count(Kernel::LstmProj),
    )
}

#[test]
fn one_gemm_and_one_step_dispatch_per_timestep_per_layer() {
    let t = 17;
    let config = LstmConfig::new(4, 8).num_layers(3).bidirectional(true);
    let (per_layer, gemm, step, proj) = plan_counts(&config, t);
    assert_eq!(per_layer, vec![1 + t; 3]);
    assert_eq!((gemm, step, proj), (3, 3 * t, 0));
}

#[test]
fn projection_adds_one_dispatch_per_timestep() {
    let t = 5;
    let config = LstmConfig::new(4, 8).num_layers(2).proj_size(3);
    let (per_layer, gemm, step, proj) = plan_counts(&config, t);
    assert_eq!(per_layer, vec![1 + 2 * t; 2]);
    assert_eq!((gemm, step, proj), (2, 2 * t, 2 * t));
}
