//! Optimizers with PyTorch's update rules and defaults, and gradient-norm clipping with
//! `torch.nn.utils.clip_grad_norm_` semantics. This is the CPU implementation; the GPU runs
//! the same arithmetic in shaders/optimizer.wgsl.

use crate::error::{Error, Result};

/// Which optimizer updates the parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// `torch.optim.SGD(lr, momentum, weight_decay)` (dampening 0, no Nesterov)
    Sgd,
    /// `torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay)` (L2 in the gradient)
    Adam,
    /// `torch.optim.AdamW(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)` (decoupled)
    AdamW,
}

/// An optimizer and its hyper-parameters, named as in `torch.optim`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerConfig {
    /// The update rule.
    pub kind: OptimizerKind,
    /// Learning rate, > 0.
    pub lr: f32,
    /// SGD only
    pub momentum: f32,
    /// L2 penalty (SGD, Adam) or decoupled decay (AdamW), >= 0.
    pub weight_decay: f32,
    /// Adam/AdamW: decay of the first moment, in [0, 1).
    pub beta1: f32,
    /// Adam/AdamW: decay of the second moment, in [0, 1).
    pub beta2: f32,
    /// Adam/AdamW: added to the second moment's square root.
    pub eps: f32,
}

impl OptimizerConfig {
    /// PyTorch's defaults for `kind` (weight decay 0, or 0.01 for AdamW).
    pub fn new(kind: OptimizerKind, lr: f32) -> Self {
        Self {
            kind,
            lr,
            momentum: 0.0,
            weight_decay: if kind == OptimizerKind::AdamW {
                0.01
            } else {
                0.0
            },
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// Checks every value's range (the ranges the field docs give).
    pub fn validate(&self) -> Result<()> {
        let bad =
            |what: &str, v: f32| Error::Config(format!("{what} must be finite and >= 0, got {v}"));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::Config(format!(
                "learning rate must be > 0, got {}",
                self.lr
            )));
        }
        for (what, v) in [
            ("momentum", self.momentum),
            ("weight_decay", self.weight_decay),
            ("eps", self.eps),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(bad(what, v));
            }
        }
        for (what, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::Config(format!("{what} must be in [0, 1), got {v}")));
            }
        }
        Ok(())
    }

    /// (1 - β1ᵗ, sqrt(1 - β2ᵗ)) for step `t` (from 1).
    pub fn bias_corrections(&self, t: u64) -> (f32, f32) {
        let t = t as i32;
        (1.0 - self.beta1.powi(t), (1.0 - self.beta2.powi(t)).sqrt())
    }
}

/// Optimizer state: step count and the moment buffers.
#[derive(Clone, Debug, Default)]
pub struct OptimizerState {
    /// Updates taken so far.
    pub step: u64,
    /// SGD momentum buffer, or Adam's first moment
    pub m: Vec<f32>,
    /// Adam's second moment
    pub v: Vec<f32>,
}

/// `clip_grad_norm_`'s factor: min(max_norm / (‖g‖₂ + 1e-6), 1).
pub fn clip_coefficient(grads: &[f32], max_norm: f32) -> f32 {
    let norm = grads.iter().map(|g| g * g).sum::<f32>().sqrt();
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// One update of `params` from `grads` (clipped to `clip` total norm first, if given).
pub fn step(
    config: &OptimizerConfig,
    state: &mut OptimizerState,
    params: &mut [f32],
    grads: &[f32],
    clip: Option<f32>,
) {
    let n = params.len();
    state.m.resize(n, 0.0);
    state.v.resize(n, 0.0);
    state.step += 1;
    let coef = clip.map_or(1.0, |c| clip_coefficient(grads, c));
    let (bc1, bc2_sqrt) = config.bias_corrections(state.step);
    for i in 0..n {
        let mut g = grads[i] * coef;
        match config.kind {
            OptimizerKind::Sgd => {
                if config.weight_decay != 0.0 {
                    g += config.weight_decay * params[i];
                }
                if config.momentum != 0.0 {
                    state.m[i] = config.momentum * state.m[i] + g;
                    g = state.m[i];
                }
                params[i] -= config.lr * g;
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let mut p = params[i];
                if config.kind == OptimizerKind::AdamW {
                    p *= 1.0 - config.lr * config.weight_decay;
                } else if config.weight_decay != 0.0 {
                    g += config.weight_decay * p;
                }
                let m = state.m[i] + (1.0 - config.beta1) * (g - state.m[i]);
                let v = config.beta2 * state.v[i] + (1.0 - config.beta2) * g * g;
                state.m[i] = m;
                state.v[i] = v;
                let denom = v.sqrt() / bc2_sqrt + config.eps;
                params[i] = p - (config.lr / bc1) * (m / denom);
            }
        }
    }
}
