//! Losses, with PyTorch's definitions:
//! - [`Loss::Mse`]: `mean((y - target)^2)` over every element (`nn.MSELoss()`);
//! - [`Loss::CrossEntropy`]: logits `[..., O]` and int64 classes `[...]`,
//!   `mean(logsumexp(y_row) - y_row[class])` over rows (`nn.CrossEntropyLoss()`).

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

/// Checks `target` against `loss` and the model output shape.
pub fn check_target(loss: Loss, output_shape: &[usize], target: &Target) -> Result<()> {
    match (loss, target) {
        (Loss::Mse, Target::Values(t)) => t.expect_shape("target (mse)", output_shape),
        (Loss::CrossEntropy, Target::Classes(t)) => {
            let (rows_shape, classes) = output_shape.split_at(output_shape.len() - 1);
            t.expect_shape("target classes (cross-entropy)", rows_shape)?;
            let classes = classes[0] as i64;
            if let Some((i, &c)) = t
                .data()
                .iter()
                .enumerate()
                .find(|(_, &c)| c < 0 || c >= classes)
            {
                return Err(Error::Input(format!(
                    "target class {c} at flat index {i} is outside 0..{classes} (the model's output width)"
                )));
            }
            Ok(())
        }
        (Loss::Mse, Target::Classes(_)) => Err(Error::Input(
            "mse needs float targets shaped like the output, got integer classes".into(),
        )),
        (Loss::CrossEntropy, Target::Values(_)) => Err(Error::Input(
            "cross-entropy needs int64 class targets [T, B], got floats".into(),
        )),
    }
}

/// The loss and its gradient with respect to `output` (rows of `width`), in `T`.
pub fn loss_and_grad<T: Real>(
    loss: Loss,
    output: &[T],
    width: usize,
    target: &Target,
) -> (T, Vec<T>) {
    match (loss, target) {
        (Loss::Mse, Target::Values(t)) => {
            let n = T::from_f32(output.len() as f32);
            let two = T::from_f32(2.0);
            let mut sum = T::ZERO;
            let grad = output
                .iter()
                .zip(t.data())
                .map(|(&y, &want)| {
                    let diff = y - T::from_f32(want);
                    sum += diff * diff;
                    two * diff / n
                })
                .collect();
            (sum / n, grad)
        }
        (Loss::CrossEntropy, Target::Classes(t)) => {
            let rows = output.len() / width;
            let n = T::from_f32(rows as f32);
            let mut grad = vec![T::ZERO; output.len()];
            let mut sum = T::ZERO;
            for (r, &class) in t.data().iter().enumerate() {
                let row = &output[r * width..(r + 1) * width];
                let max = row
                    .iter()
                    .copied()
                    .fold(row[0], |a, b| if b > a { b } else { a });
                let mut z = T::ZERO;
                for &v in row {
                    z += (v - max).exp();
                }
                let log_z = max + z.ln();
                sum += log_z - row[class as usize];
                for (k, &v) in row.iter().enumerate() {
                    let softmax = (v - log_z).exp();
                    let onehot = if k == class as usize { T::ONE } else { T::ZERO };
                    grad[r * width + k] = (softmax - onehot) / n;
                }
            }
            (sum / n, grad)
        }
        // check_target rules these out before any call.
        _ => (T::NAN, vec![T::NAN; output.len()]),
    }
}
