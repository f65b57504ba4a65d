//! The fast CPU path gives the same bits whatever plan shares out its threads (directions
//! side by side, rows in independent groups, a step split across a team), whatever the
//! thread count and SIMD width, and the same bits as before plans existed.
//!
//! `tests/fixtures/cpu_plans_bits.txt` holds a hash of each case's bits written by this
//! test with `LSTM_WGPU_WRITE_BITS=1` at commit 7137141, the last one before issue 25's plans
//! (every layer's directions in turn, each step split over the team above 12,000
//! multiply-adds). The test uses only API that commit had, so that it can be run there again.

mod common;

use common::random_tensor;
use lstm_wgpu::cpu::FastCpuLstm;
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::{Inputs, LstmConfig, LstmWeights};

const FIXTURE: &str = "tests/fixtures/cpu_plans_bits.txt";

/// (name, hidden, proj, bidirectional, batch, lengths)
const CASES: &[(&str, usize, usize, bool, usize, bool)] = &[
    // 4·16·16 = 1,024 multiply-adds a row: never split
    ("small uni B1", 16, 0, false, 1, false),
    ("small uni B5", 16, 0, false, 5, true),
    ("small bi B1", 16, 0, true, 1, false),
    ("small bi B5", 16, 0, true, 5, true),
    // 4·72·72 = 20,736: split over a team
    ("big uni B1", 72, 0, false, 1, false),
    ("big uni B5", 72, 0, false, 5, true),
    ("big bi B1", 72, 0, true, 1, false),
    ("big bi B5", 72, 0, true, 5, true),
    ("big bi proj B5", 72, 24, true, 5, true),
];

/// FNV-1a of the bits of `values`.
fn hash(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
    })
}

/// The forward's output, h_n and c_n, then the loss and every gradient of a training pass.
fn bits(model: &FastCpuLstm, case: &(&str, usize, usize, bool, usize, bool), seed: u64) -> u64 {
    let &(_, _, _, _, batch, with_lengths) = case;
    let (seq, input) = (7, 3);
    let config = model.model().config.clone();
    let states = config.num_layers * config.num_directions();
    let x = random_tensor(&[seq, batch, input], seed);
    let h0 = random_tensor(&[states, batch, config.output_size()], seed + 1);
    let c0 = random_tensor(&[states, batch, config.hidden_size], seed + 2);
    let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 3 + 2) % seq).collect();
    let inputs = Inputs::new(&x)
        .state(Some(&h0), Some(&c0))
        .lengths(with_lengths.then_some(&lengths[..]));
    let out = model.forward_with(&inputs).unwrap();
    let mut all = [out.output.data(), out.h_n.data(), out.c_n.data()].concat();
    let target = Target::Values(random_tensor(out.output.shape(), seed + 3));
    let (loss, _, grads) = model.loss_gradients(&inputs, Loss::Mse, &target).unwrap();
    all.push(loss);
    for layer in &grads.layers {
        all.extend(layer.w_ih.iter().chain(&layer.w_hh));
        all.extend(layer.b_ih.iter().chain(&layer.b_hh));
        all.extend(layer.w_hr.iter().flatten());
    }
    all.extend(
        grads
            .dx
            .data()
            .iter()
            .chain(grads.dh0.data())
            .chain(grads.dc0.data()),
    );
    hash(&all)
}

fn weights(case: &(&str, usize, usize, bool, usize, bool), seed: u64) -> LstmWeights {
    let &(_, hidden, proj, bidirectional, _, _) = case;
    let config = LstmConfig::new(3, hidden)
        .num_layers(2)
        .bidirectional(bidirectional)
        .proj_size(proj);
    LstmWeights::init(&config, seed).unwrap()
}

#[test]
fn every_plan_thread_count_and_simd_width_gives_the_bits_of_before() {
    let mut lines = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let seed = 100 + i as u64;
        let weights = weights(case, seed);
        let widest = FastCpuLstm::new(&weights).simd_lanes();
        let mut widths = vec![widest];
        let narrower = FastCpuLstm::new(&weights)
            .with_simd_lanes(8)
            .unwrap()
            .simd_lanes();
        if narrower < widest {
            widths.push(narrower); // 8 lanes forced on an AVX-512 machine
        }
        let one = bits(
            &FastCpuLstm::new(&weights).with_threads(1).unwrap(),
            case,
            seed,
        );
        for threads in [1, 2, 3, 7] {
            for &lanes in &widths {
                let model = FastCpuLstm::new(&weights)
                    .with_threads(threads)
                    .unwrap()
                    .with_simd_lanes(lanes)
                    .unwrap();
                assert_eq!(
                    bits(&model, case, seed),
                    one,
                    "{}: {threads} threads, {lanes} lanes vs 1 thread",
                    case.0
                );
            }
        }
        lines.push(format!("{} {one:016x}", case.0));
    }
    let text = lines.join("\n") + "\n";
    if std::env::var_os("LSTM_WGPU_WRITE_BITS").is_some() {
        std::fs::write(FIXTURE, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(FIXTURE).unwrap();
    assert_eq!(
        text, want,
        "the bits differ from those of commit 7137141 ({FIXTURE})"
    );
}
