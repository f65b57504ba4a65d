//! Bad input is an error naming what was wrong, never a panic.

mod common;

use common::{gpu, gpu_webgpu, random_tensor};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::{Error, LstmConfig, LstmWeights, Tensor};

#[test]
fn wrong_input_width_names_the_shape() {
    let weights = LstmWeights::init(&LstmConfig::new(3, 4), 0).unwrap();
    let x = random_tensor(&[2, 2, 5], 0);
    let cpu = CpuLstm::<f32>::new(&weights)
        .forward(&x, None, None)
        .unwrap_err();
    let gpu = GpuLstm::new(gpu(), &weights)
        .unwrap()
        .forward(&x, None, None)
        .unwrap_err();
    for e in [cpu, gpu] {
        let msg = e.to_string();
        assert!(msg.contains("[2, 2, 5]") && msg.contains("I = 3"), "{msg}");
    }
}

#[test]
fn wrong_state_shapes_name_expected_and_actual() {
    let weights = LstmWeights::init(&LstmConfig::new(3, 4).num_layers(2).proj_size(2), 0).unwrap();
    let x = random_tensor(&[2, 3, 3], 0);
    let h0 = random_tensor(&[2, 3, 4], 1); // H_out is 2, not 4
    let err = GpuLstm::new(gpu(), &weights)
        .unwrap()
        .forward(&x, Some(&h0), None)
        .unwrap_err();
    match err {
        Error::Shape {
            expected, actual, ..
        } => assert_eq!((expected, actual), (vec![2, 3, 2], vec![2, 3, 4])),
        other => panic!("expected a shape error, got {other}"),
    }
    let c0 = random_tensor(&[1, 3, 4], 2);
    let msg = CpuLstm::<f32>::new(&weights)
        .forward(&x, None, Some(&c0))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("c0") && msg.contains("[2, 3, 4]") && msg.contains("[1, 3, 4]"),
        "{msg}"
    );
}

#[test]
fn weights_that_do_not_match_the_config_name_the_parameter() {
    let config = LstmConfig::new(3, 4);
    let mut layers = vec![LstmWeights::init(&config, 0).unwrap().layer(0, 0).clone()];
    layers[0].w_hh = Tensor::full([16, 5], 0.0);
    let msg = LstmWeights::from_layers(&config, layers.clone())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("weight_hh_l0") && msg.contains("[16, 4]") && msg.contains("[16, 5]"),
        "{msg}"
    );
    layers[0].w_hh = Tensor::full([16, 4], 0.0);
    layers[0].b_ih = None;
    let msg = LstmWeights::from_layers(&config, layers)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("bias_ih_l0"), "{msg}");
}

#[test]
fn invalid_configs_are_rejected() {
    for (config, needle) in [
        (LstmConfig::new(0, 4), "input_size"),
        (LstmConfig::new(3, 0), "hidden_size"),
        (LstmConfig::new(3, 4).num_layers(0), "num_layers"),
        (LstmConfig::new(3, 4).proj_size(4), "proj_size"),
    ] {
        let msg = LstmWeights::init(&config, 0).unwrap_err().to_string();
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn empty_input_is_an_error() {
    let weights = LstmWeights::init(&LstmConfig::new(3, 4), 0).unwrap();
    let x = Tensor::new([0, 2, 3], vec![]).unwrap();
    let msg = GpuLstm::new(gpu(), &weights)
        .unwrap()
        .forward(&x, None, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("T >= 1"), "{msg}");
}

/// The limit error a forward of `x` on a model of `hidden` units gives on a device with
/// WebGPU's limits (lavapipe's binding maximum is the same 128 MiB): (needed, message).
fn limit_error(hidden: usize, x: &Tensor) -> (u64, String) {
    let weights = LstmWeights::init(&LstmConfig::new(1, hidden), 0).unwrap();
    let err = GpuLstm::new(gpu_webgpu(), &weights)
        .unwrap()
        .forward(x, None, None)
        .unwrap_err();
    match &err {
        Error::Limit { limit, needed, .. } => {
            assert_eq!(*limit, "max_storage_buffer_binding_size");
            (*needed, err.to_string())
        }
        other => panic!("expected a limit error, got {other}"),
    }
}

#[test]
fn a_shape_too_large_even_for_chunking_names_the_limit_and_the_size() {
    // Chunking over T splits the input projection, but the layer output [T, B, H] must exist
    // whole: 1024 * 1024 * 64 * 4 bytes = 256 MiB, over the 128 MiB storage binding.
    let (needed, message) = limit_error(64, &Tensor::full([1024, 1024, 1], 0.5f32));
    assert_eq!(needed, 1024 * 1024 * 64 * 4);
    assert!(message.contains("layer output"), "{message}");
    // one step of the projection [B, 4H] alone is over the binding: nothing to chunk
    let (needed, message) = limit_error(130, &Tensor::full([1, 65536, 1], 0.5f32));
    assert_eq!(needed, 65536 * 4 * 130 * 4);
    assert!(
        message.contains("one step of the input projection"),
        "{message}"
    );
}
