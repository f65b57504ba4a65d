//! `lstm-wgpu train`: train a safetensors model on .npy data, on the GPU or the CPU.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use lstm_wgpu::gpu::GpuTrainer;
use lstm_wgpu::io::atomic::write_all_atomic;
use lstm_wgpu::io::{npy, safetensors};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::{
    CpuTrainer, OptimizerConfig, OptimizerKind, StepLoss, TrainOptions, Trainer,
};
use lstm_wgpu::{Error, Result, Tensor};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

use crate::cpu_args::CpuArgs;
use crate::gpu_args::GpuArgs;
use crate::stdout::outln;
use crate::Device;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    Mse,
    CrossEntropy,
}

impl From<LossArg> for Loss {
    fn from(arg: LossArg) -> Self {
        match arg {
            LossArg::Mse => Loss::Mse,
            LossArg::CrossEntropy => Loss::CrossEntropy,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The initial weights, the inputs, targets and lengths, and the loss
    #[command(flatten)]
    data: crate::eval::DataArgs,
    /// Where to write the trained weights (same keys as --weights)
    #[arg(long)]
    out: PathBuf,
    /// Optimizer steps (default 100 unless --epochs)
    #[arg(long, conflicts_with = "epochs")]
    steps: Option<usize>,
    /// Passes over the batch axis
    #[arg(long)]
    epochs: Option<usize>,
    /// Minibatch size along B, shuffled from --seed (default: the whole batch, in order)
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f32,
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    /// SGD momentum
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    momentum: f32,
    /// Weight decay (default 0, or 0.01 for adamw, as in PyTorch)
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f32>,
    /// Clip the total gradient norm (clip_grad_norm_)
    #[arg(long, allow_negative_numbers = true)]
    clip_norm: Option<f32>,
    /// Dropout between LSTM layers, in training (nn.LSTM(dropout=P))
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    dropout: f32,
    /// Dropout on the LSTM's input (after the embedding), in training
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    input_dropout: f32,
    /// Dropout on the top layer's output before the head, in training
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    output_dropout: f32,
    /// Tie the head's weight to the embedding's (word_language_model --tied): a head [V,
    /// H_out] over an embedding [V, I] with I = H_out; both keys are written, equal
    #[arg(long)]
    tie_weights: bool,
    #[arg(long, value_enum, default_value = "gpu")]
    device: Device,
    #[command(flatten)]
    gpu: GpuArgs,
    #[command(flatten)]
    cpu: CpuArgs,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write step,loss rows here (CSV)
    #[arg(long)]
    log: Option<PathBuf>,
    /// Draw the loss curve here (PNG)
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn options(args: &Args) -> TrainOptions {
    let kind = match args.optimizer {
        OptimizerArg::Sgd => OptimizerKind::Sgd,
        OptimizerArg::Adam => OptimizerKind::Adam,
        OptimizerArg::Adamw => OptimizerKind::AdamW,
    };
    let mut optimizer = OptimizerConfig::new(kind, args.lr);
    optimizer.momentum = args.momentum;
    if let Some(wd) = args.weight_decay {
        optimizer.weight_decay = wd;
    }
    let loss = args.data.loss.into();
    TrainOptions {
        loss,
        optimizer,
        clip_norm: args.clip_norm,
        dropout: lstm_wgpu::train::Dropout {
            input: args.input_dropout,
            between: args.dropout,
            output: args.output_dropout,
            seed: args.seed,
        },
        tie_weights: args.tie_weights,
        carry_state: false,
    }
}

/// A batch's model input: token ids, or float values.
enum Input<'a> {
    Ids(&'a Tensor<i64>),
    Values(&'a Tensor),
}

/// Rows `index` of the batch axis (`axis`: 1 for `[T, B, ...]`, 0 for `[B, ...]`).
fn gather<T: Copy>(data: &[T], shape: &[usize], axis: usize, index: &[usize]) -> Result<Tensor<T>> {
    let outer: usize = shape[..axis].iter().product();
    let b = shape[axis];
    let rest: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * index.len() * rest);
    for o in 0..outer {
        for &i in index {
            let at = (o * b + i) * rest;
            out.extend_from_slice(&data[at..at + rest]);
        }
    }
    let mut new_shape = shape.to_vec();
    new_shape[axis] = index.len();
    Tensor::new(new_shape, out)
}

pub fn main(args: Args) -> Result<()> {
    let options = options(&args);
    options.validate()?;
    let weights = safetensors::load(&args.data.weights)?;
    let (x, ids) = crate::eval::read_input(&weights, &args.data.input)?;
    if x.shape().len() != 3 {
        return Err(Error::Input(format!(
            "{}: input must be [T, B, I], got shape {:?}",
            args.data.input.display(),
            x.shape()
        )));
    }
    let target = crate::eval::read_target(options.loss, &args.data.target)?;
    let (seq_len, batch) = (x.shape()[0], x.shape()[1]);
    // per step: [T, B, ...] (mse [T, B, O], classes [T, B]); per sequence: [B, ...]
    let per_step_rank = match options.loss {
        Loss::Mse => 3,
        Loss::CrossEntropy => 2,
    };
    let rank = target.shape().len();
    let batch_axis = if rank == per_step_rank { 1 } else { 0 };
    let leading = if batch_axis == 1 {
        vec![seq_len, batch]
    } else {
        vec![batch]
    };
    if rank + 1 < per_step_rank || target.shape()[..batch_axis + 1] != leading[..] {
        return Err(Error::Input(format!(
            "{}: target shape {:?} must start with the input's [T, B] = [{seq_len}, {batch}] \
             (one per step) or be [B, ...] = [{batch}, ...] (one per sequence)",
            args.data.target.display(),
            target.shape()
        )));
    }
    let lengths = match &args.data.lengths {
        Some(path) => {
            let lengths = npy::read_lengths(path)?;
            if lengths.len() != batch {
                return Err(Error::Input(format!(
                    "{}: {} lengths for B = {batch} sequences",
                    path.display(),
                    lengths.len()
                )));
            }
            Some(lengths)
        }
        None => None,
    };
    let batch_size = args.batch_size.unwrap_or(batch);
    if batch_size == 0 || batch_size > batch {
        return Err(Error::Input(format!(
            "--batch-size must be in 1..={batch} (the batch axis), got {batch_size}"
        )));
    }
    let per_epoch = batch.div_ceil(batch_size);
    let steps = match (args.steps, args.epochs) {
        (_, Some(e)) => e.checked_mul(per_epoch).ok_or_else(|| {
            Error::Input(format!(
                "--epochs {e} × {per_epoch} steps per epoch overflows the step count"
            ))
        })?,
        (Some(s), None) => s,
        (None, None) => 100,
    };

    let (mut trainer, adapter): (Box<dyn Trainer>, String) = match args.device {
        Device::Gpu => {
            let ctx = args.gpu.context()?;
            let name = ctx.adapter_name();
            (Box::new(GpuTrainer::new(&ctx, &weights, options)?), name)
        }
        Device::Cpu => {
            let threads = args.cpu.threads()?;
            (
                Box::new(CpuTrainer::new(&weights, options)?.with_threads(threads)?),
                format!("CPU f32, {threads} threads"),
            )
        }
    };

    let bar = ProgressBar::new(steps as u64);
    if let Ok(style) =
        ProgressStyle::with_template("train [{bar:30}] {pos}/{len} {msg} ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut order: Vec<usize> = (0..batch).collect();
    let mut losses: Vec<StepLoss> = Vec::with_capacity(steps.min(1 << 16));
    // a token model's log adds perplexity
    let token_model = ids.is_some();
    let mut failure = None;
    let start = Instant::now();
    for step in 0..steps {
        let k = step % per_epoch;
        if k == 0 && args.batch_size.is_some() {
            order.shuffle(&mut rng);
        }
        let index = &order[k * batch_size..((k + 1) * batch_size).min(batch)];
        // the whole batch in order is used as it is; a minibatch gathers its rows along B
        let whole = index.len() == batch && args.batch_size.is_none();
        let (gathered_ids, gathered_x, gathered_target, gathered_lengths);
        let (tb, lb) = if whole {
            (&target, lengths.as_deref())
        } else {
            gathered_target = match &target {
                Target::Values(t) => {
                    Target::Values(gather(t.data(), t.shape(), batch_axis, index)?)
                }
                Target::Classes(t) => {
                    Target::Classes(gather(t.data(), t.shape(), batch_axis, index)?)
                }
            };
            gathered_lengths = lengths
                .as_ref()
                .map(|l| index.iter().map(|&i| l[i]).collect::<Vec<_>>());
            (&gathered_target, gathered_lengths.as_deref())
        };
        // a token model's input is its ids, the float input only the others'
        let input = match &ids {
            Some(ids) if whole => Input::Ids(ids),
            Some(ids) => {
                gathered_ids = gather(ids.data(), ids.shape(), 1, index)?;
                Input::Ids(&gathered_ids)
            }
            None if whole => Input::Values(&x),
            None => {
                gathered_x = gather(x.data(), x.shape(), 1, index)?;
                Input::Values(&gathered_x)
            }
        };
        // the GPU returns the previous step's loss: it ran while this step was prepared
        let done = match input {
            Input::Ids(ids) => trainer.submit_ids(ids, lb, tb)?,
            Input::Values(xb) => {
                trainer.submit_with(&lstm_wgpu::Inputs::new(xb).lengths(lb), tb)?
            }
        };
        if let Some(bad) = record(&mut losses, done, &bar, token_model) {
            trainer.restore_last_good(bad)?;
            failure = Some(bad);
            break;
        }
    }
    if failure.is_none() {
        let rest = trainer.flush()?;
        if let Some(bad) = record(&mut losses, rest, &bar, token_model) {
            trainer.restore_last_good(bad)?;
            failure = Some(bad);
        }
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();

    let trained = trainer.weights()?;
    let mut files: Vec<(&Path, Vec<u8>)> = vec![(&args.out, safetensors::encode(&trained)?)];
    if let Some(path) = &args.log {
        files.push((path, log_csv(&losses, token_model).into_bytes()));
    }
    if let Some(path) = &args.plot {
        let values: Vec<f32> = losses.iter().map(|s| s.loss).collect();
        files.push((
            path,
            lstm_wgpu::plot::loss_png(
                &values,
                &format!("training loss ({:?}, {})", args.optimizer, adapter),
            )?,
        ));
    }
    let files: Vec<(&Path, &[u8])> = files.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    write_all_atomic(&files)?;

    if let Some(step) = failure {
        let kept = if step == 1 {
            "the initial weights".to_string()
        } else {
            format!(
                "the weights of step {}, the last with a finite loss",
                step - 1
            )
        };
        return Err(Error::Input(format!(
            "the loss became NaN or infinite at step {step}; {} holds {kept}",
            args.out.display()
        )));
    }
    let done = losses.len();
    let (first, last) = (losses.first(), losses.last());
    let span = |f: &dyn Fn(&StepLoss) -> Option<f32>, name: &str| match (
        first.and_then(f),
        last.and_then(f),
    ) {
        (Some(a), Some(b)) => format!(", {name} {a:.4} -> {b:.4}"),
        _ => String::new(),
    };
    let perplexity = |s: &StepLoss| s.accuracy.filter(|_| token_model).map(|_| s.loss.exp());
    outln!(
        "trained {done} steps on {adapter}: loss {:.6} -> {:.6}{}{}, {:.1} steps/s ({seconds:.2} s)",
        first.map_or(f32::NAN, |s| s.loss),
        last.map_or(f32::NAN, |s| s.loss),
        span(&|s| s.accuracy, "accuracy"),
        span(&perplexity, "perplexity"),
        done as f64 / seconds.max(1e-9)
    )?;
    // the trained weights on the whole training set, scored as `eval` scores
    let metrics = crate::eval::score(
        args.device,
        &args.gpu,
        args.cpu,
        &trained,
        (&x, ids.as_ref(), lengths.as_deref()),
        (options.loss, &target),
    )?;
    outln!(
        "training set after training: {}",
        crate::eval::describe(&metrics)
    )?;
    Ok(())
}

/// Adds finished steps to `losses` (and the progress bar) up to the first whose loss is not
/// finite, whose step it returns.
fn record(
    losses: &mut Vec<StepLoss>,
    done: Vec<StepLoss>,
    bar: &ProgressBar,
    token_model: bool,
) -> Option<u64> {
    for score in done {
        if !score.loss.is_finite() {
            return Some(score.step);
        }
        losses.push(score);
        bar.set_message(describe_step(&score, token_model));
        bar.inc(1);
    }
    None
}

/// `loss 0.12345` with `accuracy 0.9531` for cross-entropy and `perplexity 1.13` for a
/// token model: one step's score as the log prints it.
fn describe_step(score: &StepLoss, token_model: bool) -> String {
    let mut line = format!("loss {:.5}", score.loss);
    if let Some(accuracy) = score.accuracy {
        line.push_str(&format!(" accuracy {accuracy:.4}"));
        if token_model {
            line.push_str(&format!(" perplexity {:.3}", score.loss.exp()));
        }
    }
    line
}

/// The `--log` CSV: `step,loss`, with `accuracy` for cross-entropy and `perplexity` for a
/// token model.
fn log_csv(losses: &[StepLoss], token_model: bool) -> String {
    let classes = losses.iter().any(|s| s.accuracy.is_some());
    let mut csv = String::from("step,loss");
    if classes {
        csv.push_str(",accuracy");
        if token_model {
            csv.push_str(",perplexity");
        }
    }
    csv.push('\n');
    for score in losses {
        csv.push_str(&format!("{},{}", score.step, score.loss));
        if let (true, Some(accuracy)) = (classes, score.accuracy) {
            csv.push_str(&format!(",{accuracy}"));
            if token_model {
                csv.push_str(&format!(",{}", score.loss.exp()));
            }
        }
        csv.push('\n');
    }
    csv
}
