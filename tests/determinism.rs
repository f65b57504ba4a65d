//! The same inputs give bitwise the same outputs, call after call and model after model.

mod common;

use common::{gpu, random_tensor};
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::{LstmConfig, LstmWeights};

#[test]
fn gpu_forward_is_bitwise_reproducible() {
    let config = LstmConfig::new(130, 65)
        .num_layers(2)
        .bidirectional(true)
        .proj_size(17);
    let weights = LstmWeights::init(&config, 3).unwrap();
    let x = random_tensor(&[9, 5, 130], 4);
    let h0 = random_tensor(&[4, 5, 17], 5);
    let c0 = random_tensor(&[4, 5, 65], 6);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut model = GpuLstm::new(gpu(), &weights).unwrap();
    let first = model.forward(&x, Some(&h0), Some(&c0)).unwrap();
    let second = model.forward(&x, Some(&h0), Some(&c0)).unwrap();
    let third = GpuLstm::new(gpu(), &weights)
        .unwrap()
        .forward(&x, Some(&h0), Some(&c0))
        .unwrap();
    for other in [&second, &third] {
        assert_eq!(bits(first.output.data()), bits(other.output.data()));
        assert_eq!(bits(first.h_n.data()), bits(other.h_n.data()));
        assert_eq!(bits(first.c_n.data()), bits(other.c_n.data()));
    }
}
