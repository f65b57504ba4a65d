//! Scoring a trainer's current weights on held-out data, without dropout and without
//! touching the training state: a set of sequences in one forward pass, or token streams
//! window by window with the state carried (a language model's validation, as
//! `word_language_model`'s `evaluate`).

use super::batches::{rows, DataInput, SequenceData};
use super::metrics::{evaluate, Metrics};
use super::Trainer;
use crate::error::{Error, Result};
use crate::loss::{Loss, Target};
use crate::shape::Inputs;
use crate::tensor::Tensor;
use crate::weights::LstmWeights;

/// Held-out data.
#[derive(Clone, Debug)]
pub enum Validation {
    /// Sequences scored in one forward pass, as training scores a batch.
    Sequences(SequenceData),
    /// Token streams `[N, B]`, each target the next token, in windows of `window` steps with
    /// the state carried from window to window (the loss the mean over every prediction).
    Streams {
        /// `[N, B]`, N >= 2.
        tokens: Tensor<i64>,
        /// Steps per forward pass (memory, not the result: the state is carried).
        window: usize,
    },
}

/// The trainer's current weights scored on `data` with `loss` (a forward pass on the
/// trainer's device).
pub fn validate(trainer: &mut dyn Trainer, loss: Loss, data: &Validation) -> Result<Metrics> {
    let weights = trainer.weights()?;
    let mut model = trainer.inference()?;
    match data {
        Validation::Sequences(data) => {
            let x = values(&weights, &data.input)?;
            let lengths = data.lengths.as_deref();
            let out = model.forward_with(&Inputs::new(&x).lengths(lengths))?;
            evaluate(&weights, &out, lengths, false, loss, &data.target)
        }
        Validation::Streams { tokens, window } => {
            if loss != Loss::CrossEntropy {
                return Err(Error::Config(
                    "token streams are scored with cross-entropy".into(),
                ));
            }
            streams(model.as_mut(), &weights, tokens, *window)
        }
    }
}

/// The model's float input: ids looked up in the weights' embedding.
fn values<'a>(weights: &LstmWeights, input: &'a DataInput) -> Result<std::borrow::Cow<'a, Tensor>> {
    Ok(match input {
        DataInput::Values(x) => std::borrow::Cow::Borrowed(x),
        DataInput::Ids(ids) => match weights.embedding() {
            Some(embedding) => std::borrow::Cow::Owned(embedding.lookup(ids)?),
            None => {
                return Err(Error::Input(
                    "token ids for a model without an embedding".into(),
                ))
            }
        },
    })
}

fn streams(
    model: &mut dyn super::Inference,
    weights: &LstmWeights,
    tokens: &Tensor<i64>,
    window: usize,
) -> Result<Metrics> {
    let n = tokens.shape().first().copied().unwrap_or(0);
    if tokens.shape().len() != 2 || n < 2 {
        return Err(Error::Input(format!(
            "validation streams must be [N, B] with N >= 2, got {:?}",
            tokens.shape()
        )));
    }
    let (mut loss_sum, mut hits, mut counted) = (0.0f64, 0.0f64, 0usize);
    let mut state: Option<(Tensor, Tensor)> = None;
    for (start, len) in super::bptt::next_token_windows(n, window.max(1)) {
        let input = DataInput::Ids(rows(tokens, start, len)?);
        let target = Target::Classes(rows(tokens, start + 1, len)?);
        let x = values(weights, &input)?;
        let inputs = match &state {
            Some((h, c)) => Inputs::new(&x).state(Some(h), Some(c)),
            None => Inputs::new(&x),
        };
        let out = model.forward_with(&inputs)?;
        let m = evaluate(weights, &out, None, false, Loss::CrossEntropy, &target)?;
        loss_sum += m.loss as f64 * m.counted as f64;
        hits += m.accuracy.unwrap_or(0.0) as f64 * m.counted as f64;
        counted += m.counted;
        state = Some((out.h_n, out.c_n));
    }
    let loss = (loss_sum / counted.max(1) as f64) as f32;
    Ok(Metrics {
        loss,
        accuracy: Some((hits / counted.max(1) as f64) as f32),
        perplexity: Some(loss.exp()),
        counted,
    })
}
