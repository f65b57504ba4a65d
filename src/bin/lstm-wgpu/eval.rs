//! `lstm-wgpu eval`: a model's loss (and accuracy, perplexity for cross-entropy) on .npy data,
//! read as training reads it (per step or per sequence, lengths, ignored classes).

use std::path::PathBuf;

use lstm_wgpu::cpu::FastCpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::io::npy;
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::batches::DataInput;
use lstm_wgpu::train::{evaluate, Metrics};
use lstm_wgpu::{Error, Inputs, LstmWeights, Result, Tensor};

use crate::cpu_args::CpuArgs;
use crate::gpu_args::GpuArgs;
use crate::stdout::outln;
use crate::train::LossArg;
use crate::Device;

/// The model and the data `eval` scores.
#[derive(clap::Args)]
pub struct DataArgs {
    /// Model weights (nn.LSTM state dict, optional head.* and embedding.weight), safetensors
    #[arg(long)]
    pub weights: PathBuf,
    /// Inputs [T, B, I], float .npy; for a model with an embedding, int64 token ids [T, B]
    #[arg(long)]
    pub input: PathBuf,
    /// Targets, .npy: per step [T, B, O] float (mse) or [T, B] int64 classes (cross-entropy,
    /// -100 ignored); or per sequence [B, O] / [B], read on the head applied to the top
    /// layer's final state (both directions)
    #[arg(long)]
    pub target: PathBuf,
    /// Each sequence's length [B], int64 .npy: steps past it are padding (no loss, no
    /// gradient; the final state is the sequence's own last step)
    #[arg(long)]
    pub lengths: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "mse")]
    pub loss: LossArg,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, value_enum, default_value = "gpu")]
    device: Device,
    #[command(flatten)]
    gpu: GpuArgs,
    #[command(flatten)]
    cpu: CpuArgs,
}

/// Reads a target file for `loss`: float values for mse, int64 classes for cross-entropy.
pub fn read_target(loss: Loss, path: &std::path::Path) -> Result<Target> {
    Ok(match loss {
        Loss::Mse => Target::Values(npy::read_f32(path)?),
        Loss::CrossEntropy => Target::Classes(npy::read_i64(path).map_err(|e| {
            Error::Input(format!(
                "cross-entropy needs int64 class targets ([T, B] or [B]): {e}"
            ))
        })?),
    })
}

/// The model's input from `path`: float values, or, for a model with an embedding, int64
/// token ids looked up in it (an id outside the vocabulary is an error naming it). Returns
/// the LSTM's input and the ids, if any.
pub fn read_input(
    weights: &LstmWeights,
    path: &std::path::Path,
) -> Result<(Tensor, Option<Tensor<i64>>)> {
    match weights.embedding() {
        Some(embedding) => {
            let ids = npy::read_i64(path).map_err(|e| {
                Error::Input(format!(
                    "this model has an embedding, so its input is int64 token ids: {e}"
                ))
            })?;
            let x = embedding
                .lookup(&ids)
                .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
            Ok((x, Some(ids)))
        }
        None => Ok((npy::read_f32(path)?, None)),
    }
}

/// Runs `weights` on `input` (ids looked up in its embedding; with `lengths`) on `device`
/// and scores the result.
pub fn score(
    device: Device,
    gpu: &GpuArgs,
    cpu: CpuArgs,
    weights: &LstmWeights,
    (input, lengths): (&DataInput, Option<&[usize]>),
    (loss, target): (Loss, &Target),
) -> Result<Metrics> {
    // token ids are looked up in these weights' embedding (after training: the trained one)
    let looked_up;
    let x = match (input, weights.embedding()) {
        (DataInput::Values(x), _) => x,
        (DataInput::Ids(ids), Some(embedding)) => {
            looked_up = embedding.lookup(ids)?;
            &looked_up
        }
        (DataInput::Ids(_), None) => {
            return Err(Error::Input(
                "token ids for a model without an embedding".into(),
            ))
        }
    };
    let inputs = Inputs::new(x).lengths(lengths);
    let out = match device {
        Device::Gpu => GpuLstm::new(&gpu.context()?, weights)?.forward_with(&inputs)?,
        Device::Cpu => FastCpuLstm::new(weights)
            .with_threads(cpu.threads()?)?
            .forward_with(&inputs)?,
    };
    evaluate(weights, &out, lengths, x.shape().len() == 2, loss, target)
}

/// `loss 0.123456, accuracy 0.9123, perplexity 1.13 (N rows)`
pub fn describe(m: &Metrics) -> String {
    let mut line = format!("loss {:.6}", m.loss);
    if let (Some(a), Some(p)) = (m.accuracy, m.perplexity) {
        line.push_str(&format!(", accuracy {a:.4}, perplexity {p:.4}"));
    }
    line.push_str(&format!(" ({} rows)", m.counted));
    line
}

pub fn main(args: Args) -> Result<()> {
    let data = &args.data;
    let weights = crate::weights_arg::load(&data.weights)?;
    let (x, ids) = read_input(&weights, &data.input)?;
    let input = match ids {
        Some(ids) => DataInput::Ids(ids),
        None => DataInput::Values(x),
    };
    let loss = data.loss.into();
    let target = read_target(loss, &data.target)?;
    let lengths = data.lengths.as_deref().map(npy::read_lengths).transpose()?;
    let metrics = score(
        args.device,
        &args.gpu,
        args.cpu,
        &weights,
        (&input, lengths.as_deref()),
        (loss, &target),
    )?;
    outln!("{}", describe(&metrics))
}
