//! `lstm-wgpu run` on an ONNX model: the graph's inputs and outputs in ONNX's shapes.

use std::path::Path;

use lstm_wgpu::cpu::FastCpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::io::atomic::write_all_atomic;
use lstm_wgpu::io::npy;
use lstm_wgpu::io::onnx::{OnnxInputs, OnnxModel, OutputKind};
use lstm_wgpu::{Error, Result};

use crate::run::Args;
use crate::Device;

/// `--output` is the graph's first output; `--hn`/`--cn` are `Y_h`/`Y_c` (each written only
/// when the graph returns it).
pub fn main(args: &Args, model: &OnnxModel) -> Result<()> {
    if args.batch_first {
        return Err(Error::Input(
            "--batch-first: an ONNX model's layout attribute says how X is laid out".into(),
        ));
    }
    let inputs = OnnxInputs {
        x: npy::read_f32(&args.input)?,
        sequence_lens: args.lengths.as_deref().map(npy::read_lengths).transpose()?,
        initial_h: args.h0.as_deref().map(npy::read_f32).transpose()?,
        initial_c: args.c0.as_deref().map(npy::read_f32).transpose()?,
    };
    let weights = &model.weights;
    let outputs = match args.device {
        Device::Gpu => {
            let mut gpu = GpuLstm::new(&args.gpu.context()?, weights)?;
            model.run(&inputs, &mut |i| gpu.forward_with(i))?
        }
        Device::Cpu => {
            let cpu = FastCpuLstm::new(weights).with_threads(args.cpu.threads()?)?;
            model.run(&inputs, &mut |i| cpu.forward_with(i))?
        }
    };
    let (first_name, first) = outputs
        .first()
        .ok_or_else(|| Error::Input("the ONNX graph has no outputs".into()))?;
    let mut files = vec![(args.output.as_path(), npy::encode_f32(first)?)];
    let find = |kinds: [OutputKind; 2]| {
        model
            .io
            .outputs
            .iter()
            .zip(&outputs)
            .find(|((_, kind), _)| kinds.contains(kind))
            .map(|(_, out)| out)
    };
    for (path, kinds, what) in [
        (&args.hn, [OutputKind::YH, OutputKind::HN], "Y_h"),
        (&args.cn, [OutputKind::YC, OutputKind::CN], "Y_c"),
    ] {
        if let Some(path) = path {
            let (_, value) = find(kinds).ok_or_else(|| {
                Error::Input(format!(
                    "--{}: the graph does not return {what} (its outputs: {})",
                    if what == "Y_h" { "hn" } else { "cn" },
                    outputs
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            files.push((path.as_path(), npy::encode_f32(value)?));
        }
    }
    log::info!("--output is the graph's output `{first_name}`");
    let files: Vec<(&Path, &[u8])> = files.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    write_all_atomic(&files)
}
