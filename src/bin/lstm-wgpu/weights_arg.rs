//! `--weights`: a safetensors state dict or an ONNX model, told apart by content.

use std::path::Path;

use lstm_wgpu::io::onnx::{self, OnnxModel};
use lstm_wgpu::io::safetensors;
use lstm_wgpu::{Error, LstmWeights, Result};

/// A `--weights` file, read once.
pub enum Model {
    Onnx(OnnxModel),
    Safetensors(LstmWeights),
}

/// The model at `path`, ONNX or safetensors.
pub fn read(path: &Path) -> Result<Model> {
    let bytes = lstm_wgpu::io::read_file(path)?;
    Ok(match onnx_in(path, &bytes)? {
        Some(model) => Model::Onnx(model),
        None => Model::Safetensors(safetensors::decode_at(path, &bytes)?),
    })
}

/// The ONNX model at `path`, or `None` when the file is not ONNX.
pub fn onnx_model(path: &Path) -> Result<Option<OnnxModel>> {
    onnx_in(path, &lstm_wgpu::io::read_file(path)?)
}

/// The ONNX model in `bytes` (the file at `path`), or `None` when they are not ONNX: neither
/// a protobuf whose first field is `ir_version` nor named `.onnx` (so a damaged `.onnx` file
/// gets the ONNX reader's error, not the safetensors reader's).
fn onnx_in(path: &Path, bytes: &[u8]) -> Result<Option<OnnxModel>> {
    let named = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if !named && !onnx::looks_like_onnx(bytes) {
        return Ok(None);
    }
    onnx::read(bytes)
        .map(Some)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// The weights at `path`, safetensors or ONNX; an ONNX model with `direction = "reverse"`
/// (which only `run` takes) is an error naming it.
pub fn load(path: &Path) -> Result<LstmWeights> {
    match read(path)? {
        Model::Onnx(model) if model.reverse => Err(Error::Input(format!(
            "{}: an ONNX LSTM with direction \"reverse\" runs with `lstm-wgpu run` only",
            path.display()
        ))),
        Model::Onnx(model) => Ok(model.weights),
        Model::Safetensors(weights) => Ok(weights),
    }
}
