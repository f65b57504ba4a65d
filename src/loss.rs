//! Losses, with PyTorch's definitions:
//! - [`Loss::Mse`]: `mean((y - target)^2)` over every element (`nn.MSELoss()`);
//! - [`Loss::CrossEntropy`]: logits `[..., O]` and int64 classes `[...]`,
//!   `mean(logsumexp(y_row) - y_row[class])` over rows (`nn.CrossEntropyLoss()`), rows whose
//!   class is [`IGNORE_INDEX`] left out of the mean (PyTorch's `ignore_index=-100`).
//!
//! A target is read at one of two [`Level`]s, told apart by its shape (see [`check_target`]):
//! at every step (`[T, B, O]` / `[T, B]`, the model's output), or once per sequence (`[B, O]` /
//! `[B]`): then the loss is taken on the head applied to the top layer's final hidden state,
//! both directions concatenated (`head(torch.cat([h_n[-2], h_n[-1]], 1))`), or on that state
//! itself without a head. With lengths, per-step losses average over each sequence's valid
//! steps only (padded steps give no loss and no gradient), and the final state is each
//! sequence's own (`pack_padded_sequence`).

use crate::cpu::Real;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A training loss, averaged as PyTorch's default `reduction="mean"` does (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Mean squared error, `nn.MSELoss()`; targets are [`Target::Values`].
    Mse,
    /// Softmax cross-entropy over the last axis, `nn.CrossEntropyLoss()`; targets are
    /// [`Target::Classes`].
    CrossEntropy,
}

/// What the model output is compared with.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// For [`Loss::Mse`]: the output's shape.
    Values(Tensor),
    /// For [`Loss::CrossEntropy`]: the output's shape without its last axis; each in `0..O`.
    Classes(Tensor<i64>),
}

impl Target {
    /// The target tensor's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Target::Values(t) => t.shape(),
            Target::Classes(t) => t.shape(),
        }
    }
}

/// The class that cross-entropy leaves out of its mean (PyTorch's default `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// Where a loss reads the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// At every step: the target is shaped like the output (classes: without its last axis).
    PerStep,
    /// Once per sequence, on the top layer's final state (through the head, if any): `[B, O]`
    /// values or `[B]` classes.
    PerSequence,
}

/// Checks `target` against `loss` and the model, and says which [`Level`] it is read at.
/// `output_shape` is the per-step output's shape (in the caller's layout), `batch` the batch
/// size `B` for batched input (`None` for unbatched input, which takes per-step targets only)
/// and `width` the output width `O` (the head's, else `D * H_out`).
pub fn check_target(
    loss: Loss,
    output_shape: &[usize],
    batch: Option<usize>,
    target: &Target,
) -> Result<Level> {
    let width = output_shape[output_shape.len() - 1];
    let per_step_classes = &output_shape[..output_shape.len() - 1];
    let (per_step, per_sequence): (&[usize], Option<Vec<usize>>) = match loss {
        Loss::Mse => (output_shape, batch.map(|b| vec![b, width])),
        Loss::CrossEntropy => (per_step_classes, batch.map(|b| vec![b])),
    };
    let level = if target.shape() == per_step {
        Level::PerStep
    } else if per_sequence.as_deref() == Some(target.shape()) {
        Level::PerSequence
    } else {
        let what = match loss {
            Loss::Mse => "mse targets",
            Loss::CrossEntropy => "cross-entropy classes",
        };
        let sequence = match &per_sequence {
            Some(shape) => format!(" or {shape:?} (one per sequence)"),
            None => " (unbatched input takes per-step targets only)".into(),
        };
        return Err(Error::Input(format!(
            "{what} must be {per_step:?} (one per step){sequence}, got shape {:?}",
            target.shape()
        )));
    };
    match (loss, target) {
        (Loss::Mse, Target::Values(_)) => Ok(level),
        (Loss::CrossEntropy, Target::Classes(t)) => {
            let classes = width as i64;
            if let Some((i, &c)) = t
                .data()
                .iter()
                .enumerate()
                .find(|(_, &c)| (c < 0 || c >= classes) && c != IGNORE_INDEX)
            {
                return Err(Error::Input(format!(
                    "target class {c} at flat index {i} is outside 0..{classes} (the model's output width) and is not the ignore index {IGNORE_INDEX}"
                )));
            }
            Ok(level)
        }
        (Loss::Mse, Target::Classes(_)) => Err(Error::Input(
            "mse needs float targets, got integer classes".into(),
        )),
        (Loss::CrossEntropy, Target::Values(_)) => Err(Error::Input(
            "cross-entropy needs int64 class targets, got floats".into(),
        )),
    }
}

/// The weight of each row of the loss's input in the mean (rows of `width` in the target's
/// order): 1 / (the number of counted items) for a counted row, 0 for a row past its sequence's
/// length (`valid` false) or whose class is [`IGNORE_INDEX`]. MSE counts elements, so its
/// weight is 1 / (rows counted × width); cross-entropy counts rows. An error when nothing
/// is counted (PyTorch's mean would be NaN).
pub fn row_weights(loss: Loss, target: &Target, width: usize, valid: &[bool]) -> Result<Vec<f32>> {
    let counted: Vec<bool> = match target {
        Target::Classes(t) => valid
            .iter()
            .zip(t.data())
            .map(|(&v, &c)| v && c != IGNORE_INDEX)
            .collect(),
        Target::Values(_) => valid.to_vec(),
    };
    let rows = counted.iter().filter(|&&c| c).count();
    if rows == 0 {
        return Err(Error::Input(
            "no target counts in this batch (every step padded or ignored): the mean is undefined"
                .into(),
        ));
    }
    let items = match loss {
        Loss::Mse => rows * width,
        Loss::CrossEntropy => rows,
    };
    let weight = 1.0 / items as f64;
    Ok(counted
        .iter()
        .map(|&c| if c { weight as f32 } else { 0.0 })
        .collect())
}

/// Which per-step rows are within their sequence's length, in the output's order
/// (`[B, T]` when `batch_first`, else `[T, B]`).
pub fn valid_steps(lengths: &[usize], seq_len: usize, batch_first: bool) -> Vec<bool> {
    let batch = lengths.len();
    (0..seq_len * batch)
        .map(|r| {
            let (t, b) = if batch_first {
                (r % seq_len, r / seq_len)
            } else {
                (r / batch, r % batch)
            };
            t < lengths[b]
        })
        .collect()
}

/// A batch's loss as a training step reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored<T> {
    /// The weighted mean the step minimises.
    pub value: T,
    /// Cross-entropy only: how many counted rows the model classified right, its largest
    /// logit (the first of equal ones, as `argmax`) being the target class.
    pub correct: Option<usize>,
    /// The rows the mean counts (weight > 0).
    pub counted: usize,
}

impl<T> Scored<T> {
    /// Cross-entropy only: the fraction of counted rows classified right.
    pub fn accuracy(&self) -> Option<f32> {
        self.correct.map(|c| c as f32 / self.counted.max(1) as f32)
    }
}

/// The rows a mean with these row weights counts.
pub(crate) fn counted(weights: &[f32]) -> usize {
    weights.iter().filter(|&&w| w > 0.0).count()
}

/// Whether `class` holds the first largest value of `row`, whose largest value is `max`.
pub(crate) fn is_first_max<T: PartialOrd + Copy>(row: &[T], max: T, class: usize) -> bool {
    row[class] == max && !row[..class].contains(&max)
}

/// The loss of `output` (rows of `width`) against `target`, each row weighted as
/// [`row_weights`] says (`weights` has one entry per row), in `T`; its gradient with respect
/// to `output` goes into `grad` (resized to `output`'s length; a buffer kept from an earlier
/// call saves its page faults). Rows are summed in order.
pub fn loss_and_grad<T: Real>(
    loss: Loss,
    (output, width): (&[T], usize),
    target: &Target,
    weights: &[f32],
    grad: &mut Vec<T>,
) -> Scored<T> {
    let rows = output.len() / width.max(1);
    debug_assert_eq!(weights.len(), rows);
    grad.resize(output.len(), T::ZERO);
    match (loss, target) {
        (Loss::Mse, Target::Values(t)) => {
            let two = T::from_f32(2.0);
            let mut sum = T::ZERO;
            for (i, (&y, &want)) in output.iter().zip(t.data()).enumerate() {
                let w = T::from_f32(weights[i / width]);
                let diff = y - T::from_f32(want);
                sum += w * diff * diff;
                grad[i] = two * diff * w;
            }
            Scored {
                value: sum,
                correct: None,
                counted: counted(weights),
            }
        }
        (Loss::CrossEntropy, Target::Classes(t)) => {
            let mut sum = T::ZERO;
            let mut correct = 0;
            for (r, &class) in t.data().iter().enumerate() {
                let out = &mut grad[r * width..(r + 1) * width];
                if weights[r] == 0.0 {
                    out.fill(T::ZERO); // padded or ignored: no loss, no gradient
                    continue;
                }
                let class = class as usize;
                let w = T::from_f32(weights[r]);
                let row = &output[r * width..(r + 1) * width];
                let max = row
                    .iter()
                    .copied()
                    .fold(row[0], |a, b| if b > a { b } else { a });
                correct += is_first_max(row, max, class) as usize;
                // exp(v - max) once per logit, kept in the gradient's row
                let mut z = T::ZERO;
                for (e, &v) in out.iter_mut().zip(row) {
                    *e = (v - max).exp();
                    z += *e;
                }
                sum += w * (max + z.ln() - row[class]);
                let scale = w / z;
                for e in out.iter_mut() {
                    *e = *e * scale; // softmax · w
                }
                out[class] = out[class] - w;
            }
            Scored {
                value: sum,
                correct: Some(correct),
                counted: counted(weights),
            }
        }
        // check_target rules these out before any call.
        _ => {
            grad.fill(T::NAN);
            Scored {
                value: T::NAN,
                correct: None,
                counted: counted(weights),
            }
        }
    }
}
