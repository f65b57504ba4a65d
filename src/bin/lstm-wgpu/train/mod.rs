//! `lstm-wgpu train`: train a safetensors model on .npy data or a text file, on the GPU or
//! the CPU: minibatches or truncated BPTT, validation and early stopping, a learning-rate
//! schedule, checkpoints and exact resume, Ctrl-C safe. The loop is `lstm_wgpu::train::job`.

mod data;
mod report;
mod signals;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;
use lstm_wgpu::gpu::GpuTrainer;
use lstm_wgpu::io::atomic::write_all_atomic;
use lstm_wgpu::io::safetensors;
use lstm_wgpu::loss::Loss;
use lstm_wgpu::train::job::{Ended, Job, JobOptions};
use lstm_wgpu::train::schedule::{LrSchedule, Schedule};
use lstm_wgpu::train::{
    checkpoint, CpuTrainer, OptimizerConfig, OptimizerKind, TrainOptions, Trainer,
};
use lstm_wgpu::{Error, LstmWeights, Result};

use crate::cpu_args::CpuArgs;
use crate::gpu_args::GpuArgs;
use crate::stdout::outln;
use crate::Device;
use report::{bits_per_byte, describe_metrics, Report};

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
    /// Model weights (nn.LSTM state dict, optional head.* and embedding.weight), safetensors
    #[arg(long)]
    weights: PathBuf,
    /// Inputs [T, B, I], float .npy; for a model with an embedding, int64 token ids [T, B]
    #[arg(long, required_unless_present = "text", conflicts_with = "text")]
    input: Option<PathBuf>,
    /// Targets, .npy: per step [T, B, O] float (mse) or [T, B] int64 classes (cross-entropy,
    /// -100 ignored); or per sequence [B, O] / [B], read on the head applied to the top
    /// layer's final state (both directions)
    #[arg(long, required_unless_present = "text", conflicts_with = "text")]
    target: Option<PathBuf>,
    /// Each sequence's length [B], int64 .npy: steps past it are padding
    #[arg(long, conflicts_with = "text")]
    lengths: Option<PathBuf>,
    /// The loss (default mse; cross-entropy with --text)
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// Train a language model of this file's bytes (V = 256: init --embedding 256 --head
    /// 256), cut into --streams streams, each target the next byte
    #[arg(long)]
    text: Option<PathBuf>,
    /// With --text: parallel streams (the batch B), as word_language_model's batchify
    #[arg(long, default_value_t = 32, requires = "text")]
    streams: usize,
    /// Truncated BPTT: train consecutive windows of K steps, one step each, the state
    /// carried from window to window (detached) and reset each epoch (default 35 with --text)
    #[arg(long)]
    bptt: Option<usize>,
    /// Validation inputs (as --input)
    #[arg(long, requires = "val_target", conflicts_with = "text")]
    val_input: Option<PathBuf>,
    /// Validation targets (as --target)
    #[arg(long, requires = "val_input")]
    val_target: Option<PathBuf>,
    /// Validation lengths (as --lengths)
    #[arg(long, requires = "val_input")]
    val_lengths: Option<PathBuf>,
    /// Hold out the last F of the batch axis (of the text, with --text) for validation
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Evaluate every N steps (default: at the end of each epoch, and after the last step)
    #[arg(long)]
    eval_every: Option<u64>,
    /// Stop after P evaluations in a row without a lower validation loss
    #[arg(long)]
    early_stop: Option<u64>,
    /// Where to write the trained weights (same keys as --weights): with validation, those
    /// of the best evaluation
    #[arg(long)]
    out: PathBuf,
    /// With validation: also write the last weights here
    #[arg(long)]
    out_last: Option<PathBuf>,
    /// Keep a checkpoint here (written atomically every --checkpoint-every steps, at the end
    /// and on Ctrl-C / SIGTERM): everything --resume needs
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long, requires = "checkpoint")]
    checkpoint_every: Option<u64>,
    /// Go on from this checkpoint (the same command line finishes the run, bitwise as if
    /// never stopped on the same device)
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Optimizer steps of the whole run (default 100 unless --epochs)
    #[arg(long, conflicts_with = "epochs")]
    steps: Option<u64>,
    /// Passes over the training data (of every window with --bptt)
    #[arg(long)]
    epochs: Option<u64>,
    /// Minibatch size along B, shuffled each epoch from --seed (default: the whole batch)
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f64,
    /// step:EVERY:GAMMA (StepLR, per epoch), cosine:T_MAX[:ETA_MIN] (CosineAnnealingLR, per
    /// epoch), plateau:FACTOR:PATIENCE (ReduceLROnPlateau on the validation loss)
    #[arg(long, default_value = "constant")]
    lr_schedule: Schedule,
    /// Raise the rate linearly over the first N steps (LinearLR, start_factor 1/N)
    #[arg(long, default_value_t = 0)]
    warmup: u64,
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
    /// Tie the head's weight to the embedding's (word_language_model --tied)
    #[arg(long)]
    tie_weights: bool,
    #[arg(long, value_enum, default_value = "gpu")]
    device: Device,
    #[command(flatten)]
    gpu: GpuArgs,
    #[command(flatten)]
    cpu: CpuArgs,
    /// Seeds the shuffling and the dropout masks
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write one row per step here (CSV): loss, metric, epoch, lr, validation
    #[arg(long)]
    log: Option<PathBuf>,
    /// Draw the training and validation loss curves here (PNG)
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn options(args: &Args, loss: Loss) -> TrainOptions {
    let kind = match args.optimizer {
        OptimizerArg::Sgd => OptimizerKind::Sgd,
        OptimizerArg::Adam => OptimizerKind::Adam,
        OptimizerArg::Adamw => OptimizerKind::AdamW,
    };
    let mut optimizer = OptimizerConfig::new(kind, args.lr as f32);
    optimizer.momentum = args.momentum;
    if let Some(wd) = args.weight_decay {
        optimizer.weight_decay = wd;
    }
    let mut options = TrainOptions::new(loss, optimizer);
    options.clip_norm = args.clip_norm;
    options.dropout = lstm_wgpu::train::Dropout {
        input: args.input_dropout,
        between: args.dropout,
        output: args.output_dropout,
        seed: args.seed,
    };
    options.tie_weights = args.tie_weights;
    options.carry_state = args.bptt.is_some() || args.text.is_some();
    options
}

/// What a checkpoint must match to be resumed by this command line: the model's shapes and
/// every option that changes a step (not --steps/--epochs, the outputs or the device).
fn identity(
    args: &Args,
    weights: &LstmWeights,
    options: &TrainOptions,
) -> BTreeMap<String, String> {
    let shape =
        |t: Option<&lstm_wgpu::Tensor>| t.map_or("none".into(), |t| format!("{:?}", t.shape()));
    let cfg = weights.config();
    let entries = [
        (
            "model",
            format!(
                "input {} hidden {} layers {} bidirectional {} proj {} bias {}",
                cfg.input_size,
                cfg.hidden_size,
                cfg.num_layers,
                cfg.bidirectional,
                cfg.proj_size,
                cfg.bias
            ),
        ),
        ("embedding", shape(weights.embedding().map(|e| &e.weight))),
        ("head", shape(weights.head().map(|h| &h.weight))),
        ("loss", format!("{:?}", options.loss)),
        ("optimizer", format!("{:?}", options.optimizer)),
        ("clip_norm", format!("{:?}", options.clip_norm)),
        ("dropout", format!("{:?}", options.dropout)),
        ("tie_weights", options.tie_weights.to_string()),
        ("batch_size", format!("{:?}", args.batch_size)),
        ("bptt", format!("{:?}", args.bptt)),
        ("lr_schedule", args.lr_schedule.to_string()),
        ("warmup", args.warmup.to_string()),
        ("eval_every", format!("{:?}", args.eval_every)),
        ("early_stop", format!("{:?}", args.early_stop)),
        ("val_fraction", format!("{:?}", args.val_fraction)),
    ];
    entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

pub fn main(args: Args) -> Result<()> {
    if args.bptt.is_some() && args.batch_size.is_some() {
        return Err(Error::Config(
            "--bptt trains consecutive windows of every sequence in order (the state carried \
             from one to the next); --batch-size shuffles minibatches along B: use one"
                .into(),
        ));
    }
    let loss = data::loss_for(&args)?;
    let options = options(&args, loss);
    options.validate()?;
    let weights = crate::weights_arg::load(&args.weights)?;
    let data = data::read(&args, &weights, loss)?;
    let per_epoch = data.batches.per_epoch() as u64;
    let steps = match (args.steps, args.epochs) {
        (_, Some(e)) => e.checked_mul(per_epoch).ok_or_else(|| {
            Error::Input(format!(
                "--epochs {e} × {per_epoch} steps per epoch overflows the step count"
            ))
        })?,
        (Some(s), None) => s,
        (None, None) => 100,
    };
    let schedule = LrSchedule::new(args.lr, args.lr_schedule, args.warmup)?;
    let job_options = JobOptions {
        steps,
        eval_every: args.eval_every,
        early_stop: args.early_stop,
        checkpoint_every: args.checkpoint_every,
    };
    if args.early_stop.is_some() && data.validation.is_none() {
        return Err(Error::Config(
            "--early-stop watches the validation loss: give --val-fraction or --val-input".into(),
        ));
    }
    if matches!(args.lr_schedule, Schedule::Plateau { .. }) && data.validation.is_none() {
        return Err(Error::Config(
            "--lr-schedule plateau steps on the validation loss: give --val-fraction or \
             --val-input"
                .into(),
        ));
    }
    let identity = identity(&args, &weights, &options);
    let mut job = Job::new(
        job_options,
        schedule,
        (data.batches.as_ref(), data.validation.as_ref()),
        loss,
        identity,
    )?;
    let resumed = match &args.resume {
        Some(path) => Some(checkpoint::load(path)?),
        None => None,
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
    if let (Some(path), Some(checkpoint)) = (&args.resume, &resumed) {
        job.resume(trainer.as_mut(), checkpoint)
            .map_err(|e| Error::Input(format!("--resume {}: {e}", path.display())))?;
    }
    let from = job.state().step;

    let signals = signals::Signals::install()?;
    let mut report = Report::new(
        (steps, from),
        args.checkpoint.clone(),
        signals,
        (data.text, data.tokens),
    );
    let start = Instant::now();
    let ended = job.run(trainer.as_mut(), &mut report);
    report.finish();
    let ended = ended?;
    let seconds = start.elapsed().as_secs_f64();

    // the outputs, all or none: --out (best or last), --out-last, --log, --plot
    let last = trainer.weights()?;
    let state = job.state();
    let best = state.best.as_ref().filter(|_| data.validation.is_some());
    let out_weights = best.map_or(&last, |(_, w)| w);
    let mut files: Vec<(&Path, Vec<u8>)> = vec![(&args.out, safetensors::encode(out_weights)?)];
    if let Some(path) = &args.out_last {
        files.push((path, safetensors::encode(&last)?));
    }
    if let Some(path) = &args.log {
        files.push((
            path,
            report::log_csv(state, data.tokens, data.text).into_bytes(),
        ));
    }
    if let Some(path) = &args.plot {
        let train: Vec<f32> = state.history.iter().map(|s| s.loss).collect();
        let val: Vec<(u64, f32)> = state
            .evals
            .iter()
            .map(|e| (e.step, e.metrics.loss))
            .collect();
        files.push((
            path,
            lstm_wgpu::plot::loss_curves_png(
                &train,
                &val,
                &format!("training loss ({:?}, {})", args.optimizer, adapter),
            )?,
        ));
    }
    let files: Vec<(&Path, &[u8])> = files.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    write_all_atomic(&files)?;

    if let Ended::Diverged(step) = ended {
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
    summary(
        &args,
        &data,
        &job,
        (&adapter, seconds, from),
        (&last, loss),
        ended,
    )?;
    if let (Ended::Interrupted, Some(status)) = (ended, report.signal_status()) {
        let kept = match &args.checkpoint {
            Some(path) => format!("; resume with --resume {}", path.display()),
            None => " (no --checkpoint: it cannot be resumed)".into(),
        };
        eprintln!(
            "interrupted after step {}: {} written{kept}",
            job.state().step,
            args.out.display()
        );
        std::process::exit(status);
    }
    Ok(())
}

/// The lines printed after a run: the training loss's course and speed, the best
/// evaluation, and the score on the training set.
fn summary(
    args: &Args,
    data: &data::Data,
    job: &Job<'_>,
    (adapter, seconds, from): (&str, f64, u64),
    (last, loss): (&LstmWeights, Loss),
    ended: Ended,
) -> Result<()> {
    let state = job.state();
    let history = &state.history;
    let (first, final_step) = (history.first(), history.last());
    let span = |f: &dyn Fn(&lstm_wgpu::train::job::StepRecord) -> Option<f32>, name: &str| match (
        first.and_then(f),
        final_step.and_then(f),
    ) {
        (Some(a), Some(b)) => format!(", {name} {a:.4} -> {b:.4}"),
        _ => String::new(),
    };
    let perplexity = |s: &lstm_wgpu::train::job::StepRecord| {
        s.accuracy.filter(|_| data.tokens).map(|_| s.loss.exp())
    };
    let done = state.step - from;
    outln!(
        "trained {done} steps on {adapter}: loss {:.6} -> {:.6}{}{}, {:.1} steps/s ({seconds:.2} s)",
        first.map_or(f32::NAN, |s| s.loss),
        final_step.map_or(f32::NAN, |s| s.loss),
        span(&|s| s.accuracy, "accuracy"),
        span(&perplexity, "perplexity"),
        done as f64 / seconds.max(1e-9)
    )?;
    if ended == Ended::EarlyStopped {
        outln!(
            "stopped early at step {}: {} evaluations without a lower validation loss",
            state.step,
            state.evals_since_best
        )?;
    }
    if let Some((best, _)) = &state.best {
        outln!(
            "best validation: step {} (epoch {}): {}; {} holds its weights",
            best.step,
            best.epoch + 1,
            describe_metrics(&best.metrics, data.text),
            args.out.display()
        )?;
        if data.text {
            outln!(
                "validation bits per byte: {:.4}",
                bits_per_byte(best.metrics.loss)
            )?;
        }
    }
    if let (Some(train), Ended::Finished | Ended::EarlyStopped) = (&data.train_set, ended) {
        // the last weights on the whole training set, scored as `eval` scores
        let metrics = crate::eval::score(
            args.device,
            &args.gpu,
            args.cpu,
            last,
            (&train.input, train.lengths.as_deref()),
            (loss, &train.target),
        )?;
        outln!(
            "training set after training: {}",
            crate::eval::describe(&metrics)
        )?;
    }
    Ok(())
}
