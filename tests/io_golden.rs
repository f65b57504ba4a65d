//! PyTorch-saved models (tests/fixtures/cli, written by tests/fixtures/make_golden_cli.py)
//! loaded through safetensors/npy and run on both paths: variable lengths, unbatched input,
//! the head, batch_first, and F16/BF16/F64 weights.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, gpu, VS_PYTORCH};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::io::{npy, safetensors};
use lstm_wgpu::{Inputs, LstmOutput, LstmWeights, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new("tests/fixtures/cli").join(name)
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.data().iter().map(|&x| x as f64).collect()
}

/// Runs `weights` on both paths and checks the outputs against PyTorch's .npy files.
fn check_both(prefix: &str, weights: &LstmWeights, inputs: Inputs<'_>, want_y: &str, state: bool) {
    let cpu = CpuLstm::<f32>::new(weights).forward_with(&inputs).unwrap();
    let gpu = GpuLstm::new(gpu(), weights)
        .unwrap()
        .forward_with(&inputs)
        .unwrap();
    for (path, out) in [("cpu", cpu), ("gpu", gpu)] {
        let LstmOutput { output, h_n, c_n } = out;
        let y = npy::read_f32(&fixture(want_y)).unwrap();
        assert_eq!(output.shape(), y.shape(), "{path} {prefix} output shape");
        assert_close(
            &format!("{path} {prefix} y"),
            output.data(),
            &f64s(&y),
            VS_PYTORCH,
        );
        if state {
            let hn = npy::read_f32(&fixture(&format!("{prefix}_hn.npy"))).unwrap();
            let cn = npy::read_f32(&fixture(&format!("{prefix}_cn.npy"))).unwrap();
            assert_eq!(h_n.shape(), hn.shape(), "{path} {prefix} h_n shape");
            assert_close(
                &format!("{path} {prefix} h_n"),
                h_n.data(),
                &f64s(&hn),
                VS_PYTORCH,
            );
            assert_close(
                &format!("{path} {prefix} c_n"),
                c_n.data(),
                &f64s(&cn),
                VS_PYTORCH,
            );
        }
    }
}

#[test]
fn packed_unsorted_lengths_with_state_and_head() {
    let weights = safetensors::load(&fixture("packed_model.safetensors")).unwrap();
    let c = weights.config();
    assert_eq!(
        (c.input_size, c.hidden_size, c.num_layers, c.bidirectional),
        (3, 6, 2, true)
    );
    assert_eq!(weights.head().unwrap().out_features(), 4);
    let x = npy::read_f32(&fixture("packed_x.npy")).unwrap();
    let h0 = npy::read_f32(&fixture("packed_h0.npy")).unwrap();
    let c0 = npy::read_f32(&fixture("packed_c0.npy")).unwrap();
    let lengths = npy::read_lengths(&fixture("packed_lengths.npy")).unwrap();
    assert_eq!(lengths, vec![7, 3, 5, 1]);
    let inputs = Inputs::new(&x)
        .state(Some(&h0), Some(&c0))
        .lengths(Some(&lengths));
    check_both("packed", &weights, inputs, "packed_y.npy", true);
}

#[test]
fn unbatched_with_projection_and_head() {
    let weights = safetensors::load(&fixture("unbatched_model.safetensors")).unwrap();
    assert_eq!(weights.config().proj_size, 3);
    let x = npy::read_f32(&fixture("unbatched_x.npy")).unwrap();
    let h0 = npy::read_f32(&fixture("unbatched_h0.npy")).unwrap();
    let c0 = npy::read_f32(&fixture("unbatched_c0.npy")).unwrap();
    assert_eq!(x.shape(), &[6, 2]);
    let inputs = Inputs::new(&x).state(Some(&h0), Some(&c0));
    check_both("unbatched", &weights, inputs, "unbatched_y.npy", true);
}

#[test]
fn batch_first_bare_keys_int32_lengths_f64_input() {
    let mut weights = safetensors::load(&fixture("bf_model.safetensors")).unwrap();
    weights.set_batch_first(true);
    assert!(weights.head().is_none());
    let x = npy::read_f32(&fixture("bf_x.npy")).unwrap(); // stored as float64
    let lengths = npy::read_lengths(&fixture("bf_lengths.npy")).unwrap(); // int32
    check_both(
        "bf",
        &weights,
        Inputs::new(&x).lengths(Some(&lengths)),
        "bf_y.npy",
        true,
    );
}

#[test]
fn f16_bf16_f64_weights_are_converted() {
    let x = npy::read_f32(&fixture("bf_x.npy")).unwrap();
    let lengths = npy::read_lengths(&fixture("bf_lengths.npy")).unwrap();
    for tag in ["f16", "bf16", "f64"] {
        let mut weights =
            safetensors::load(&fixture(&format!("half_{tag}_model.safetensors"))).unwrap();
        weights.set_batch_first(true);
        check_both(
            tag,
            &weights,
            Inputs::new(&x).lengths(Some(&lengths)),
            &format!("half_{tag}_y.npy"),
            false,
        );
    }
}

#[test]
fn save_then_load_gives_the_same_weights() {
    let original = safetensors::load(&fixture("packed_model.safetensors")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.safetensors");
    safetensors::save(&path, &original).unwrap();
    assert_eq!(safetensors::load(&path).unwrap(), original);
}
