//! `CpuStream`: one timestep per call gives bitwise what a forward over the whole sequence
//! gives (the same kernels), its state can be read, set and reset, and bad input is a clear
//! error that leaves the state alone.

mod common;

use common::random_tensor;
use lstm_wgpu::cpu::{CpuStream, FastCpuLstm};
use lstm_wgpu::{Inputs, Linear, LstmConfig, LstmWeights};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn steps_give_the_forward_bits_and_carry_the_state() {
    let (seq, batch) = (9, 3);
    for (config, threads) in [
        (LstmConfig::new(5, 40), 1),
        (LstmConfig::new(4, 33).num_layers(2).proj_size(7), 2),
        (LstmConfig::new(1, 128), 2),
    ] {
        let weights = LstmWeights::init(&config, 3).unwrap();
        let (layers, h_out) = (config.num_layers, config.output_size());
        let x = random_tensor(&[seq, batch, config.input_size], 4);
        let h0 = random_tensor(&[layers, batch, h_out], 5);
        let c0 = random_tensor(&[layers, batch, config.hidden_size], 6);
        let model = FastCpuLstm::new(&weights).with_threads(threads).unwrap();
        let want = model
            .forward_with(&Inputs::new(&x).state(Some(&h0), Some(&c0)))
            .unwrap();
        let mut stream = CpuStream::new(model, batch).unwrap();
        stream.set_state(h0.data(), c0.data()).unwrap();
        let row = batch * config.input_size;
        for t in 0..seq {
            let y = stream.step(&x.data()[t * row..(t + 1) * row]).unwrap();
            let out = &want.output.data()[t * batch * h_out..(t + 1) * batch * h_out];
            assert_eq!(bits(y), bits(out), "{config:?}: step {t}");
        }
        let mut h = vec![0.0; want.h_n.data().len()];
        let mut c = vec![0.0; want.c_n.data().len()];
        stream.state_into(&mut h, &mut c).unwrap();
        assert_eq!(bits(&h), bits(want.h_n.data()), "{config:?}: h_n");
        assert_eq!(bits(&c), bits(want.c_n.data()), "{config:?}: c_n");
        // reset: as a fresh stream from zeros
        stream.reset();
        let first = stream.step(&x.data()[..row]).unwrap().to_vec();
        let zero = FastCpuLstm::new(&weights)
            .forward(
                &random_tensor(&[1, batch, config.input_size], 4),
                None,
                None,
            )
            .unwrap();
        assert_eq!(
            bits(&first),
            bits(zero.output.data()),
            "{config:?}: after reset"
        );
    }
}

#[test]
fn a_head_applies_to_every_step() {
    let config = LstmConfig::new(3, 20);
    let weights = LstmWeights::init(&config, 1)
        .unwrap()
        .with_head(Linear::init(20, 5, 2).unwrap())
        .unwrap();
    let x = random_tensor(&[6, 2, 3], 7);
    let want = FastCpuLstm::new(&weights).forward(&x, None, None).unwrap();
    let mut stream = CpuStream::new(FastCpuLstm::new(&weights), 2).unwrap();
    for t in 0..6 {
        let y = stream.step(&x.data()[t * 6..(t + 1) * 6]).unwrap();
        assert_eq!(y.len(), 2 * 5);
        // the head's sums are in k order here, blocked in the forward's GEMM: rounding only
        let out = &want.output.data()[t * 10..(t + 1) * 10];
        for (g, w) in y.iter().zip(out) {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "step {t}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn bad_input_is_a_clear_error_and_keeps_the_state() {
    let weights = LstmWeights::init(&LstmConfig::new(2, 4), 0).unwrap();
    let bi = LstmWeights::init(&LstmConfig::new(2, 4).bidirectional(true), 0).unwrap();
    let err = CpuStream::new(FastCpuLstm::new(&bi), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unidirectional"), "{err}");
    let err = CpuStream::new(FastCpuLstm::new(&weights), 0)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("batch must be at least 1"), "{err}");

    let mut stream = CpuStream::new(FastCpuLstm::new(&weights), 2).unwrap();
    stream.step(&[0.5; 4]).unwrap();
    let (mut h, mut c) = (vec![0.0; 8], vec![0.0; 8]);
    stream.state_into(&mut h, &mut c).unwrap();
    let err = stream.step(&[0.5; 3]).unwrap_err().to_string();
    assert!(
        err.contains("x_t has 3 values, want [B, I] = [2, 2]"),
        "{err}"
    );
    let err = stream
        .set_state(&[0.0; 7], &[0.0; 8])
        .unwrap_err()
        .to_string();
    assert!(err.contains("want h [L, B, H_out] = [1, 2, 4]"), "{err}");
    assert!(stream.state_into(&mut [0.0; 8], &mut [0.0; 9]).is_err());
    let (mut h2, mut c2) = (vec![0.0; 8], vec![0.0; 8]);
    stream.state_into(&mut h2, &mut c2).unwrap();
    assert_eq!((h, c), (h2, c2), "the failed calls left the state alone");
}
