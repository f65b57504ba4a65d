//! Chunking over T never changes a result: with any chunk length, every kernel variant gives
//! bitwise the output, h_n and c_n it gives unchunked (both directions, several layers,
//! lengths, initial state, projection). A sequence longer than the per-step kernel's
//! step-index slots runs in chunks and matches the CPU.

mod common;

use common::{assert_close, gpu, random_tensor, to_f64, GPU_VS_F64};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::{GpuLstm, KernelChoice, MAX_CHUNK_STEPS};
use lstm_wgpu::{Inputs, LstmConfig, LstmOutput, LstmWeights, Tensor};

fn bits(out: &LstmOutput) -> Vec<Vec<u32>> {
    [&out.output, &out.h_n, &out.c_n]
        .iter()
        .map(|t| t.data().iter().map(|v| v.to_bits()).collect())
        .collect()
}

struct Run {
    weights: LstmWeights,
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    lengths: Vec<usize>,
}

impl Run {
    fn new(config: &LstmConfig, seq_len: usize, batch: usize, seed: u64) -> Self {
        let states = config.num_layers * config.num_directions();
        Self {
            weights: LstmWeights::init(config, seed).unwrap(),
            x: random_tensor(&[seq_len, batch, config.input_size], seed + 1),
            h0: random_tensor(&[states, batch, config.output_size()], seed + 2),
            c0: random_tensor(&[states, batch, config.hidden_size], seed + 3),
            lengths: (0..batch).map(|b| seq_len - (b * 3) % seq_len).collect(),
        }
    }

    fn forward(&self, kernel: KernelChoice, max_chunk: Option<usize>) -> (LstmOutput, usize) {
        let mut model = GpuLstm::new(gpu(), &self.weights).unwrap();
        model.set_kernel(kernel);
        model.set_max_chunk_steps(max_chunk);
        let out = model
            .forward_with(
                &Inputs::new(&self.x)
                    .state(Some(&self.h0), Some(&self.c0))
                    .lengths(Some(&self.lengths)),
            )
            .unwrap();
        (out, model.kernel().unwrap().1)
    }

    /// The CPU reference in f64.
    fn cpu_f64(&self) -> lstm_wgpu::LstmOutput<f64> {
        let (x, h0, c0) = (to_f64(&self.x), to_f64(&self.h0), to_f64(&self.c0));
        CpuLstm::<f64>::new(&self.weights)
            .forward_with(
                &Inputs::new(&x)
                    .state(Some(&h0), Some(&c0))
                    .lengths(Some(&self.lengths)),
            )
            .unwrap()
    }
}

#[test]
fn chunking_is_bitwise_invisible_for_every_kernel() {
    let seq_len = 11;
    let cases = [
        (
            LstmConfig::new(3, 8).num_layers(2).bidirectional(true),
            KernelChoice::Sequence,
        ),
        (
            LstmConfig::new(3, 8).num_layers(2).bidirectional(true),
            KernelChoice::PerStep,
        ),
        (
            LstmConfig::new(5, 70).bidirectional(true),
            KernelChoice::PerStep,
        ),
        (
            LstmConfig::new(4, 20)
                .num_layers(2)
                .bidirectional(true)
                .proj_size(7),
            KernelChoice::PerStep,
        ),
    ];
    for (i, (config, kernel)) in cases.into_iter().enumerate() {
        let run = Run::new(&config, seq_len, 5, 40 + i as u64);
        let (whole, chunk) = run.forward(kernel, None);
        assert_eq!(chunk, seq_len, "unchunked");
        for max in [1, 2, 3, 4, 10] {
            let (chunked, chunk) = run.forward(kernel, Some(max));
            assert_eq!(chunk, max);
            assert_eq!(
                bits(&chunked),
                bits(&whole),
                "{config:?} {kernel:?}: chunks of {max} differ from one chunk"
            );
        }
    }
}

#[test]
fn a_sequence_longer_than_the_step_slots_runs_in_chunks() {
    // uneven chunks (1024 + 76): the reverse direction's projection rows start mid-chunk
    let seq_len = MAX_CHUNK_STEPS + 76;
    let config = LstmConfig::new(2, 6).bidirectional(true);
    let run = Run::new(&config, seq_len, 2, 9);
    let (got, chunk) = run.forward(KernelChoice::PerStep, None);
    assert_eq!(chunk, MAX_CHUNK_STEPS);
    let want = run.cpu_f64();
    assert_close("output", got.output.data(), want.output.data(), GPU_VS_F64);
    assert_close("h_n", got.h_n.data(), want.h_n.data(), GPU_VS_F64);
    assert_close("c_n", got.c_n.data(), want.c_n.data(), GPU_VS_F64);
    let (half, _) = run.forward(KernelChoice::PerStep, Some(512));
    assert_eq!(bits(&half), bits(&got), "chunks of 512 vs 1024");
}

/// 20,000 steps, past the sequence kernel's 16,384 steps per dispatch, with each way of
/// adding its split sums: a long dispatch must not lose steps (lavapipe ends loops that run
/// too long, which once cut one step in 5,000 short) and the state must carry across.
#[test]
fn long_sequences_match_the_cpu_with_each_sequence_kernel() {
    use lstm_wgpu::gpu::{Recurrence, SequenceTiles};
    let config = LstmConfig::new(1, 48);
    let run = Run::new(&config, 20_000, 1, 21);
    let want = run.cpu_f64();
    let mut ran = 0;
    for subgroups in [false, true] {
        let kernel = KernelChoice::Exact(Recurrence::Sequence(SequenceTiles {
            splits: 4,
            steps: 8,
            subgroups,
        }));
        if subgroups && common::caps(gpu()).subgroup_size.is_none_or(|n| n < 4) {
            continue;
        }
        let (got, chunk) = run.forward(kernel, None);
        assert!(chunk < 20_000);
        assert_close("output", got.output.data(), want.output.data(), GPU_VS_F64);
        assert_close("h_n", got.h_n.data(), want.h_n.data(), GPU_VS_F64);
        ran += 1;
    }
    assert!(ran >= 1);
}
