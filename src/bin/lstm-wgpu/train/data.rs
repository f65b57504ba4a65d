//! The training run's data from the command line: .npy sequences (minibatches along B, or
//! windows along T with --bptt) or a text file's bytes as token streams, and the validation
//! data (files, or the tail of the training data).

use std::path::Path;

use lstm_wgpu::io::npy;
use lstm_wgpu::loss::Loss;
use lstm_wgpu::train::batches::{
    held_out, Batches, DataInput, Minibatches, SequenceData, SequenceWindows, TokenWindows,
};
use lstm_wgpu::train::bptt::batchify;
use lstm_wgpu::train::validation::Validation;
use lstm_wgpu::{Error, LstmWeights, Result};

use super::Args;

/// Bytes are tokens: a text model's vocabulary.
pub const BYTES: usize = 256;

/// What a run trains and validates on.
pub struct Data {
    pub batches: Box<dyn Batches>,
    pub validation: Option<Validation>,
    /// the sequences trained on, scored after training (not for a text file)
    pub train_set: Option<SequenceData>,
    /// a model of bytes (--text): perplexity and bits per byte are reported
    pub text: bool,
    /// a model with an embedding
    pub tokens: bool,
}

/// Reads the data the arguments name and cuts it into batches.
pub fn read(args: &Args, weights: &LstmWeights, loss: Loss) -> Result<Data> {
    if let Some(path) = &args.text {
        return text(args, weights, path);
    }
    let (Some(input), Some(target)) = (&args.input, &args.target) else {
        return Err(Error::Config(
            "train needs --input and --target (.npy), or --text".into(),
        ));
    };
    let all = sequences(weights, loss, input, target, args.lengths.as_deref())?;
    let (train, held) = match args.val_fraction {
        Some(f) => {
            let (train, val) = all.split_tail(f)?;
            (train, Some(val))
        }
        None => (all, None),
    };
    let validation = match (&args.val_input, &args.val_target, held) {
        (Some(input), Some(target), None) => Some(sequences(
            weights,
            loss,
            input,
            target,
            args.val_lengths.as_deref(),
        )?),
        (None, None, held) => held,
        (Some(_), None, _) | (None, Some(_), _) => {
            return Err(Error::Config(
                "--val-input and --val-target come together".into(),
            ))
        }
        (Some(_), Some(_), Some(_)) => {
            return Err(Error::Config(
                "--val-fraction holds out part of the training data; --val-input gives other \
                 data: use one"
                    .into(),
            ))
        }
    };
    let batches: Box<dyn Batches> = match args.bptt {
        Some(k) => Box::new(
            SequenceWindows::new(train.clone(), k)
                .map_err(|e| Error::Input(format!("--bptt {k}: {e}")))?,
        ),
        None => {
            let b = train.dims().1;
            let batch_size = args.batch_size.unwrap_or(b);
            let shuffle = args.batch_size.is_some().then_some(args.seed);
            Box::new(
                Minibatches::new(train.clone(), batch_size, shuffle)
                    .map_err(|e| Error::Input(format!("--batch-size {batch_size}: {e}")))?,
            )
        }
    };
    Ok(Data {
        batches,
        validation: validation.map(Validation::Sequences),
        train_set: Some(train),
        text: false,
        tokens: weights.embedding().is_some(),
    })
}

/// Input, target and lengths files as sequences the model takes.
fn sequences(
    weights: &LstmWeights,
    loss: Loss,
    input: &Path,
    target: &Path,
    lengths: Option<&Path>,
) -> Result<SequenceData> {
    let input_data = match weights.embedding() {
        Some(_) => DataInput::Ids(npy::read_i64(input).map_err(|e| {
            Error::Input(format!(
                "this model has an embedding, so its input is int64 token ids: {e}"
            ))
        })?),
        None => DataInput::Values(npy::read_f32(input)?),
    };
    let target_data = crate::eval::read_target(loss, target)?;
    let lengths_data = lengths.map(npy::read_lengths).transpose()?;
    let files = match lengths {
        Some(l) => format!(
            "{}, {} and {}",
            input.display(),
            target.display(),
            l.display()
        ),
        None => format!("{} and {}", input.display(), target.display()),
    };
    let data = SequenceData::new(input_data, target_data, lengths_data)
        .map_err(|e| Error::Input(format!("{files}: {e}")))?;
    if let (DataInput::Ids(ids), Some(embedding)) = (&data.input, weights.embedding()) {
        embedding
            .check_ids(ids)
            .map_err(|e| Error::Input(format!("{}: {e}", input.display())))?;
    }
    Ok(data)
}

/// A text file's bytes as `--streams` token streams, the tail held out for validation.
fn text(args: &Args, weights: &LstmWeights, path: &Path) -> Result<Data> {
    let vocabulary = weights.embedding().map(|e| e.weight.shape().to_vec());
    let head = weights.head().map(|h| h.weight.shape()[0]);
    if vocabulary.as_ref().map(|v| v[0]) != Some(BYTES) || head != Some(BYTES) {
        return Err(Error::Input(format!(
            "--text trains a model of bytes: it needs an embedding of {BYTES} rows and a \
             {BYTES}-wide head (init --embedding {BYTES} --head {BYTES}); this model has \
             embedding {} and head {}",
            vocabulary.map_or("none".into(), |v| format!("{v:?}")),
            head.map_or("none".into(), |o| format!("[{o}, ...]"))
        )));
    }
    let bytes = lstm_wgpu::io::read_file(path)?;
    let streams = args.streams;
    let k = args.bptt.unwrap_or(35);
    let (train, val) = match args.val_fraction {
        Some(f) => {
            // the held-out tail is cut into the same number of streams
            let held = held_out(bytes.len(), f, "bytes")?;
            (
                &bytes[..bytes.len() - held],
                Some(&bytes[bytes.len() - held..]),
            )
        }
        None => (&bytes[..], None),
    };
    let tokens =
        batchify(train, streams).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    let validation = match val {
        Some(val) => Some(Validation::Streams {
            tokens: batchify(val, streams).map_err(|e| {
                Error::Input(format!("{} (the validation tail): {e}", path.display()))
            })?,
            window: k,
        }),
        None => None,
    };
    Ok(Data {
        batches: Box::new(TokenWindows::new(tokens, k)?),
        validation,
        train_set: None,
        text: true,
        tokens: true,
    })
}

/// For checks before reading anything: the training target is needed per step for --bptt.
pub fn loss_for(args: &Args) -> Result<Loss> {
    match (&args.text, args.loss) {
        (Some(_), Some(super::LossArg::Mse)) => Err(Error::Config(
            "--text trains with cross-entropy on the next byte: --loss mse does not apply".into(),
        )),
        (Some(_), _) => Ok(Loss::CrossEntropy),
        (None, loss) => Ok(loss.unwrap_or(super::LossArg::Mse).into()),
    }
}
