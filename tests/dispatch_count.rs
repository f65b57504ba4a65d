//! Dispatches per layer, by kernel variant:
//! - per-step kernel: 1 projection gemm + T fused steps (1 + 2T with proj_size: the
//!   projection reads every hidden unit, which lstm_step writes from many workgroups);
//! - sequence kernel: 1 gemm + ONE dispatch for all T steps;
//! - chunked over T (C chunks): one gemm per chunk (two with both directions, whose time
//!   ranges differ) and, for the sequence kernel, one dispatch per chunk.

mod common;

use common::gpu;
use lstm_wgpu::gpu::internals::Kernel;
use lstm_wgpu::gpu::{GpuLstm, KernelChoice};
use lstm_wgpu::{Dims, LstmConfig, LstmWeights};

struct Counts {
    per_layer: Vec<usize>,
    gemm: usize,
    step: usize,
    sequence: usize,
    proj: usize,
}

fn plan_counts(
    config: &LstmConfig,
    seq_len: usize,
    kernel: KernelChoice,
    max_chunk: Option<usize>,
) -> Counts {
    let weights = LstmWeights::init(config, 0).unwrap();
    let mut model = GpuLstm::new(gpu(), &weights).unwrap();
    model.set_kernel(kernel);
    model.set_max_chunk_steps(max_chunk);
    model.prepare(Dims { seq_len, batch: 3 }).unwrap();
    let plan = model.plan().unwrap();
    Counts {
        per_layer: (0..config.num_layers)
            .map(|l| plan.count_in_layer(l))
            .collect(),
        // the gemm, or gemv for a chunk of few rows: one product either way
        gemm: plan.count(Kernel::Gemm) + plan.count(Kernel::Gemv),
        step: plan.count(Kernel::LstmStep),
        sequence: plan.count(Kernel::LstmSequence),
        proj: plan.count(Kernel::LstmProj),
    }
}

#[test]
fn per_step_kernel_is_one_gemm_and_one_fused_dispatch_per_timestep() {
    let t = 17;
    let config = LstmConfig::new(4, 8).num_layers(3).bidirectional(true);
    let c = plan_counts(&config, t, KernelChoice::PerStep, None);
    assert_eq!(c.per_layer, vec![1 + t; 3]);
    assert_eq!((c.gemm, c.step, c.sequence, c.proj), (3, 3 * t, 0, 0));
}

#[test]
fn sequence_kernel_is_one_gemm_and_one_dispatch_per_layer() {
    let t = 17;
    let config = LstmConfig::new(4, 8).num_layers(3).bidirectional(true);
    let c = plan_counts(&config, t, KernelChoice::Auto, None);
    assert_eq!(c.per_layer, vec![2; 3]);
    assert_eq!((c.gemm, c.step, c.sequence, c.proj), (3, 0, 3, 0));
}

#[test]
fn projection_adds_one_dispatch_per_timestep() {
    let t = 5;
    let config = LstmConfig::new(4, 8).num_layers(2).proj_size(3);
    let c = plan_counts(&config, t, KernelChoice::Auto, None);
    assert_eq!(c.per_layer, vec![1 + 2 * t; 2]);
    assert_eq!((c.gemm, c.step, c.sequence, c.proj), (2, 2 * t, 0, 2 * t));
}

#[test]
fn chunks_add_one_projection_per_chunk_and_direction() {
    let (t, chunk) = (17, 5); // 4 chunks
    let bi = LstmConfig::new(4, 8).bidirectional(true);
    let c = plan_counts(&bi, t, KernelChoice::PerStep, Some(chunk));
    assert_eq!((c.gemm, c.step), (8, t));
    let c = plan_counts(&bi, t, KernelChoice::Sequence, Some(chunk));
    assert_eq!((c.gemm, c.sequence), (8, 4));
    let uni = LstmConfig::new(4, 8);
    let c = plan_counts(&uni, t, KernelChoice::Sequence, Some(chunk));
    assert_eq!((c.gemm, c.sequence), (4, 4));
}

#[test]
fn a_step_of_few_rows_projects_with_gemv() {
    let config = LstmConfig::new(4, 8).num_layers(2);
    let weights = LstmWeights::init(&config, 0).unwrap();
    let mut model = GpuLstm::new(gpu(), &weights).unwrap();
    for (seq_len, batch, gemv) in [(1, 3, 2), (1, 8, 2), (1, 9, 0), (4, 3, 0)] {
        model.prepare(Dims { seq_len, batch }).unwrap();
        let plan = model.plan().unwrap();
        let what = format!("T={seq_len} B={batch}");
        assert_eq!(plan.count(Kernel::Gemv), gemv, "{what}");
        assert_eq!(plan.count(Kernel::Gemm), 2 - gemv, "{what}");
    }
}
