//! `--weights`: a safetensors state dict or an ONNX model, told apart by content.

use std::path::Path;

use lstm_wgpu::io::onnx::{self, OnnxModel};
use lstm_wgpu::io::safetensors;
use lstm_wgpu::{Error, LstmWeights, Result};

/// The ONNX model at `path`, or `None` when the file is not ONNX: neither a protobuf whose
/// first field is `ir_version` nor named `.onnx` (so a damaged `.onnx` file gets the ONNX
/// reader's error, not the safetensors reader's).
pub fn onnx_model(path: &Path) -> Result<Option<OnnxModel>> {
    let bytes = lstm_wgpu::io::read_file(path)?;
    let named = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if !named && !onnx::looks_like_onnx(&bytes) {
        return Ok(None);
    }
    onnx::read(&bytes)
        .map(Some)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// The weights at `path`, safetensors or ONNX; an ONNX model with `direction = "reverse"`
/// (which only `run` takes) is an error naming it.
pub fn load(path: &Path) -> Result<LstmWeights> {
    match onnx_model(path)? {
        Some(model) if model.reverse => Err(Error::Input(format!(
            "{}: an ONNX LSTM with direction \"reverse\" runs with `lstm-wgpu run` only",
            path.display()
        ))),
        Some(model) => Ok(model.weights),
        None => safetensors::load(path),
    }
}
