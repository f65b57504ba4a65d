//! `lstm-wgpu convert model.onnx --out w.safetensors`: an ONNX model's weights in this
//! engine's safetensors layout (PyTorch's names; `weight_p_l{k}` for peepholes and
//! `lstm_wgpu.*` metadata for the other attributes), so later runs skip the ONNX parse.

use std::path::PathBuf;

use lstm_wgpu::io::safetensors;
use lstm_wgpu::{Error, Result};

use crate::stdout::outln;

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model
    model: PathBuf,
    /// Where to write the safetensors file (written whole or not at all)
    #[arg(long)]
    out: PathBuf,
}

pub fn main(args: Args) -> Result<()> {
    let model = crate::weights_arg::onnx_model(&args.model)?
        .ok_or_else(|| Error::Input(format!("{}: not an ONNX model", args.model.display())))?;
    if model.reverse {
        return Err(Error::Input(format!(
            "{}: direction \"reverse\" has no safetensors form (the engine runs it by reversing \
             the sequences); run the .onnx file itself",
            args.model.display()
        )));
    }
    safetensors::save(&args.out, &model.weights)?;
    let c = model.weights.config();
    outln!(
        "wrote {}: {} layers x {} directions, input {} hidden {}, cell: {}{}",
        args.out.display(),
        c.num_layers,
        c.num_directions(),
        c.input_size,
        c.hidden_size,
        c.cell.describe(),
        if c.batch_first {
            "; the model is batch-first (layout 1): pass --batch-first to run"
        } else {
            ""
        }
    )
}
