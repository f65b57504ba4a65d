//! What a batch scores, as training computes it: the loss (the same weighted mean, with
//! lengths and ignored classes) and, for cross-entropy, the accuracy and the perplexity. From
//! a forward pass on either path, so that a model is evaluated the way it is trained.

use crate::error::Result;
use crate::loss::{check_target, row_weights, valid_steps, Level, Loss, Target};
use crate::shape::LstmOutput;
use crate::weights::LstmWeights;

/// A batch's score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// The loss training minimises, on this batch.
    pub loss: f32,
    /// Cross-entropy only: the fraction of counted rows whose largest logit is the target
    /// class (ties: the first).
    pub accuracy: Option<f32>,
    /// Cross-entropy only: `exp(loss)`.
    pub perplexity: Option<f32>,
    /// The rows the mean counted (per step: valid and not ignored; per sequence: B).
    pub counted: usize,
}

/// The top layer's final hidden state of every sequence, both directions concatenated:
/// `[B, D*H_out]` from `h_n` `[D*L, B, H_out]` (what a per-sequence loss reads).
pub fn final_features<T: Copy + Default>(weights: &LstmWeights, h_n: &[T], batch: usize) -> Vec<T> {
    final_features_of(weights.config(), h_n, batch)
}

pub(crate) fn final_features_of<T: Copy + Default>(
    cfg: &crate::LstmConfig,
    h_n: &[T],
    batch: usize,
) -> Vec<T> {
    let (d, h_out) = (cfg.num_directions(), cfg.output_size());
    let width = d * h_out;
    let top = (cfg.num_layers - 1) * d;
    let mut features = vec![T::default(); batch * width];
    for dir in 0..d {
        for b in 0..batch {
            let from = ((top + dir) * batch + b) * h_out;
            features[b * width + dir * h_out..b * width + (dir + 1) * h_out]
                .copy_from_slice(&h_n[from..from + h_out]);
        }
    }
    features
}

/// Scores `out` (a forward pass of `weights` on a batch with `lengths`, `unbatched` when
/// the input had no batch axis) against `target`, read at the level its shape says.
pub fn evaluate(
    weights: &LstmWeights,
    out: &LstmOutput,
    lengths: Option<&[usize]>,
    unbatched: bool,
    loss: Loss,
    target: &Target,
) -> Result<Metrics> {
    let cfg = weights.config();
    let shape = out.output.shape();
    let (seq_len, batch) = match (unbatched, cfg.batch_first) {
        (true, _) => (shape[0], 1),
        (false, true) => (shape[1], shape[0]),
        (false, false) => (shape[0], shape[1]),
    };
    let level = check_target(loss, shape, (!unbatched).then_some(batch), target)?;
    let full = vec![seq_len; batch];
    let lengths = lengths.unwrap_or(&full);
    let (logits, width, valid) = match level {
        Level::PerStep => (
            out.output.data().to_vec(),
            *shape.last().unwrap_or(&1),
            valid_steps(lengths, seq_len, cfg.batch_first && !unbatched),
        ),
        Level::PerSequence => {
            let features = final_features(weights, out.h_n.data(), batch);
            let logits = match weights.head() {
                Some(head) => apply_linear(head, &features, batch),
                None => features,
            };
            let width = logits.len() / batch;
            (logits, width, vec![true; batch])
        }
    };
    let row_weight = row_weights(loss, target, width, &valid)?;
    let logits: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    let scored =
        crate::loss::loss_and_grad(loss, (&logits, width), target, &row_weight, &mut Vec::new());
    let accuracy = scored.accuracy();
    let loss_value = scored.value as f32;
    Ok(Metrics {
        loss: loss_value,
        perplexity: accuracy.map(|_| loss_value.exp()),
        accuracy,
        counted: scored.counted,
    })
}

/// `rows · weightᵀ + bias` for `rows` `[n, in]`.
fn apply_linear(head: &crate::Linear, rows: &[f32], n: usize) -> Vec<f32> {
    let o = head.weight.shape()[0];
    let width = head.weight.shape()[1];
    let w = head.weight.data();
    let mut out = Vec::with_capacity(n * o);
    for r in 0..n {
        let row = &rows[r * width..(r + 1) * width];
        for k in 0..o {
            let mut sum = head.bias.as_ref().map_or(0.0f64, |b| b.data()[k] as f64);
            for (x, wv) in row.iter().zip(&w[k * width..(k + 1) * width]) {
                sum += *x as f64 * *wv as f64;
            }
            out.push(sum as f32);
        }
    }
    out
}
