//! Bad ONNX models are one clear error each, from the library and from `lstm-wgpu run`, and
//! nothing is written: tests/fixtures/onnx/bad (made by make_onnx_cases.py), truncated and
//! random bytes, and a model whose cell training cannot run.

mod common;

use std::path::Path;
use std::process::Command;

use lstm_wgpu::io::onnx;
use lstm_wgpu::loss::Loss;
use lstm_wgpu::train::{CpuTrainer, OptimizerConfig, OptimizerKind, TrainOptions};

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(rel)
}

/// `run --weights model --input X --output out`: (stderr, whether out exists).
fn run_cli(model: &Path, dir: &Path) -> (String, bool) {
    let x = dir.join("x.npy");
    lstm_wgpu::io::npy::write_f32(&x, &lstm_wgpu::Tensor::full([4, 1, 2], 0.5f32)).unwrap();
    let out = dir.join("y.npy");
    let result = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["run", "--device", "cpu", "--weights"])
        .arg(model)
        .arg("--input")
        .arg(&x)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!result.status.success());
    (
        String::from_utf8_lossy(&result.stderr).into_owned(),
        out.exists(),
    )
}

#[test]
fn each_bad_model_is_one_error_naming_the_problem() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("bad/expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, words) in expected.as_object().unwrap() {
        let path = fixture(&format!("bad/{name}.onnx"));
        let msg = onnx::read(&std::fs::read(&path).unwrap())
            .map(|_| "read fine".to_string())
            .unwrap_or_else(|e| e.to_string());
        for word in words.as_array().unwrap() {
            assert!(msg.contains(word.as_str().unwrap()), "{name}: {msg}");
        }
        let (stderr, written) = run_cli(&path, dir.path());
        let errors = common::error_lines(&stderr);
        assert_eq!(errors.len(), 1, "{name}: {stderr}");
        assert!(
            errors[0].contains(&format!("{name}.onnx")),
            "{name}: {stderr}"
        );
        assert!(!written, "{name}: an output file was written");
    }
}

#[test]
fn truncated_and_random_bytes_are_errors() {
    let good = std::fs::read(fixture("ort/peephole/model.onnx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", vec![]),
        (
            "random",
            (0..500u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    ] {
        assert!(onnx::read(&bytes).is_err(), "{what}");
        let path = dir.path().join(format!("{what}.onnx"));
        std::fs::write(&path, &bytes).unwrap();
        let (stderr, written) = run_cli(&path, dir.path());
        let errors = common::error_lines(&stderr);
        assert_eq!(errors.len(), 1, "{what}: {stderr}");
        assert!(errors[0].contains("ONNX"), "{what}: {stderr}");
        assert!(!written);
    }
}

#[test]
fn training_a_cell_variant_is_a_clear_error() {
    let model = onnx::load(&fixture("ort/peephole/model.onnx")).unwrap();
    let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Sgd, 0.1));
    let msg = CpuTrainer::new(&model.weights, options)
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("PyTorch's cell only") && msg.contains("peephole"),
        "{msg}"
    );
    let msg = lstm_wgpu::gpu::GpuTrainer::new(common::gpu(), &model.weights, options)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("peephole"), "{msg}");
    // the standard cell read from ONNX trains
    let plain = onnx::load(&fixture("ort/plain/model.onnx")).unwrap();
    CpuTrainer::new(&plain.weights, options).unwrap();
}
