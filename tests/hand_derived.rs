//! The smallest LSTM, worked out by hand, on the CPU (f64, f32) and GPU paths.
//!
//! H = 1, I = 1, T = 2, B = 1, x = [1, 2], with
//!   W_ih = [0, 0, 1, 0]ᵀ   (only the g gate sees x)
//!   W_hh = [0, 1, 0, 0]ᵀ   (only the f gate sees h_{t-1})
//!   b_ih = 0,  b_hh = [0, 0, 0, ln 3]
//! so i = σ(0) = 1/2 always, o = σ(ln 3) = 1/(1 + 1/3) = 3/4 always, and
//!   t = 0: f = σ(0) = 1/2, g = tanh(1), c₁ = 1/2·0 + 1/2·tanh(1),      h₁ = 3/4·tanh(c₁)
//!   t = 1: f = σ(h₁),      g = tanh(2), c₂ = σ(h₁)·c₁ + 1/2·tanh(2),  h₂ = 3/4·tanh(c₂)
//! Numerically: c₁ = 0.3807971, h₁ = 0.2725496, c₂ = 0.6981994, h₂ = 0.4524177
//! (the test evaluates these closed forms in f64).

mod common;

use common::{assert_close, gpu, Tolerance, GPU_VS_F64};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::{LayerWeights, LstmConfig, LstmWeights, Tensor};

fn model() -> LstmWeights {
    let t = |v: Vec<f32>, shape: &[usize]| Tensor::new(shape.to_vec(), v).unwrap();
    let layer = LayerWeights {
        w_ih: t(vec![0.0, 0.0, 1.0, 0.0], &[4, 1]),
        w_hh: t(vec![0.0, 1.0, 0.0, 0.0], &[4, 1]),
        b_ih: Some(t(vec![0.0; 4], &[4])),
        b_hh: Some(t(vec![0.0, 0.0, 0.0, 3f32.ln()], &[4])),
        w_hr: None,
        w_p: None,
    };
    LstmWeights::from_layers(&LstmConfig::new(1, 1), vec![layer]).unwrap()
}

/// (h₁, h₂, c₂) from the closed forms above.
fn expected() -> (f64, f64, f64) {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let c1 = 0.5 * 1f64.tanh();
    let h1 = 0.75 * c1.tanh();
    let c2 = sigmoid(h1) * c1 + 0.5 * 2f64.tanh();
    let h2 = 0.75 * c2.tanh();
    (h1, h2, c2)
}

#[test]
fn closed_forms_are_as_documented() {
    let (h1, h2, c2) = expected();
    assert!((h1 - 0.2725496).abs() < 1e-7, "h1 = {h1}");
    assert!((c2 - 0.6981994).abs() < 1e-7, "c2 = {c2}");
    assert!((h2 - 0.4524177).abs() < 1e-7, "h2 = {h2}");
}

#[test]
fn cpu_f64_matches_hand_derivation() {
    let (h1, h2, c2) = expected();
    let x = Tensor::new([2, 1, 1], vec![1.0f64, 2.0]).unwrap();
    let out = CpuLstm::<f64>::new(&model())
        .forward(&x, None, None)
        .unwrap();
    // Weights are stored in f32, so ln 3 carries a ~3e-8 relative rounding into o.
    let tol = Tolerance {
        abs: 1e-7,
        rel: 0.0,
    };
    let close =
        |got: &[f64], want: &[f64]| got.iter().zip(want).all(|(g, w)| (g - w).abs() <= tol.abs);
    assert!(
        close(out.output.data(), &[h1, h2]),
        "output {:?}",
        out.output.data()
    );
    assert!(close(out.h_n.data(), &[h2]) && close(out.c_n.data(), &[c2]));
}

#[test]
fn cpu_f32_and_gpu_match_hand_derivation() {
    let (h1, h2, c2) = expected();
    let x = Tensor::new([2, 1, 1], vec![1.0f32, 2.0]).unwrap();
    let cpu = CpuLstm::<f32>::new(&model())
        .forward(&x, None, None)
        .unwrap();
    let mut gpu_model = GpuLstm::new(gpu(), &model()).unwrap();
    let gpu_out = gpu_model.forward(&x, None, None).unwrap();
    for (path, out) in [("cpu f32", cpu), ("gpu", gpu_out)] {
        assert_close(
            &format!("{path} output"),
            out.output.data(),
            &[h1, h2],
            GPU_VS_F64,
        );
        assert_close(&format!("{path} h_n"), out.h_n.data(), &[h2], GPU_VS_F64);
        assert_close(&format!("{path} c_n"), out.c_n.data(), &[c2], GPU_VS_F64);
    }
}
