//! The same inputs give bitwise the same outputs, call after call and model after model, with
//! every kernel variant.

mod common;

use common::{gpu, kernel_choices, random_tensor};
use lstm_wgpu::gpu::{GpuLstm, RecurrentShape};
use lstm_wgpu::{LstmConfig, LstmWeights};

#[test]
fn gpu_forward_is_bitwise_reproducible_with_every_kernel() {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let caps = common::caps(gpu());
    let mut ran = 0;
    for (config, seed) in [
        (
            LstmConfig::new(130, 65)
                .num_layers(2)
                .bidirectional(true)
                .proj_size(17),
            3,
        ),
        (LstmConfig::new(7, 40).num_layers(2).bidirectional(true), 4),
    ] {
        let weights = LstmWeights::init(&config, seed).unwrap();
        let states = config.num_layers * config.num_directions();
        let x = random_tensor(&[9, 5, config.input_size], seed + 1);
        let h0 = random_tensor(&[states, 5, config.output_size()], seed + 2);
        let c0 = random_tensor(&[states, 5, config.hidden_size], seed + 3);
        let shape = RecurrentShape {
            hidden: config.hidden_size,
            hidden_out: config.output_size(),
            batch: 5,
        };
        for kernel in kernel_choices() {
            if kernel.resolve(shape, &caps).is_err() {
                continue;
            }
            let fresh = || {
                let mut m = GpuLstm::new(gpu(), &weights).unwrap();
                m.set_kernel(kernel);
                m
            };
            let mut model = fresh();
            let first = model.forward(&x, Some(&h0), Some(&c0)).unwrap();
            let second = model.forward(&x, Some(&h0), Some(&c0)).unwrap();
            let third = fresh().forward(&x, Some(&h0), Some(&c0)).unwrap();
            for other in [&second, &third] {
                assert_eq!(
                    bits(first.output.data()),
                    bits(other.output.data()),
                    "{kernel:?}"
                );
                assert_eq!(bits(first.h_n.data()), bits(other.h_n.data()), "{kernel:?}");
                assert_eq!(bits(first.c_n.data()), bits(other.c_n.data()), "{kernel:?}");
            }
            ran += 1;
        }
    }
    assert!(ran >= 10, "only {ran} kernel runs");
}
