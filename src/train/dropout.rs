//! Dropout in training, inverted as PyTorch's (kept values scaled by 1 / (1 - p)), at three
//! sites: the LSTM's input (`input`, after an embedding: word_language_model's first
//! `self.drop`), between layers (`between`: `nn.LSTM(dropout=p)`, on the input of every layer
//! above the first) and the top layer's per-step output before the head (`output`: the second
//! `self.drop`). Evaluation, `run` and `stream` never drop.
//!
//! The masks come from a counter-based generator: element `i` of site `s` at step `k` is kept
//! when `hash(seed, k, s, i) < (1 - p) · 2³²`, an integer hash computed the same way on the
//! CPU and in shaders/dropout.wgsl, so both paths draw the same masks (PyTorch's CPU and CUDA
//! masks differ; ours do not). Sites are numbered 0 (the input), `l` (the input of layer
//! `l >= 1`) and `L` (the output); elements in the time-major order `(t * B + b) * W + k`.

use crate::cpu::Real;
use crate::error::{Error, Result};

/// Dropout probabilities per site (0: none) and the masks' seed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dropout {
    /// On the LSTM's input.
    pub input: f32,
    /// Between LSTM layers (`nn.LSTM(dropout=p)`).
    pub between: f32,
    /// On the top layer's per-step output, before the head.
    pub output: f32,
    /// Seeds the masks (with the step number, the site and the element).
    pub seed: u64,
}

impl Dropout {
    /// Checks that every probability is in [0, 1).
    pub fn validate(&self) -> Result<()> {
        for (what, p) in [
            ("input dropout", self.input),
            ("dropout between layers", self.between),
            ("output dropout", self.output),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::Config(format!("{what} must be in [0, 1), got {p}")));
            }
        }
        Ok(())
    }

    /// True when some site drops.
    pub fn any(&self) -> bool {
        self.input > 0.0 || self.between > 0.0 || self.output > 0.0
    }

    /// The probability at `site` of a model of `layers` layers (see the module docs).
    pub fn rate(&self, site: usize, layers: usize) -> f32 {
        match site {
            0 => self.input,
            s if s == layers => self.output,
            _ => self.between,
        }
    }
}

/// One integer mixing round (a bias-tested 32-bit hash finaliser).
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The generator: a u32 from (seed, step, site, index), as shaders/dropout.wgsl computes it.
pub fn draw(seed: u64, step: u32, site: u32, index: u32) -> u32 {
    mix(index ^ site_key(seed, step, site))
}

/// The part of [`draw`] that does not depend on the element.
fn site_key(seed: u64, step: u32, site: u32) -> u32 {
    let seeded = mix((seed >> 32) as u32 ^ mix(seed as u32));
    mix(site ^ mix(step ^ seeded))
}

/// Elements with a draw below this are kept: (1 - p) · 2³², in u32.
pub fn keep_below(p: f32) -> u32 {
    ((1.0 - p as f64) * 4_294_967_296.0).min(u32::MAX as f64) as u32
}

/// The kept values' factor, 1 / (1 - p), in f32 (the GPU's too).
pub fn scale(p: f32) -> f32 {
    1.0 / (1.0 - p)
}

/// `data[i] ← keep(i) ? data[i] · scale : 0` for site `site` at `step`: the dropout, and, the
/// map being linear, its gradient.
pub(crate) fn apply<T: Real>(data: &mut [T], p: f32, seed: u64, step: u32, site: u32) {
    if p <= 0.0 {
        return;
    }
    let (below, factor) = (keep_below(p), T::from_f32(scale(p)));
    let key = site_key(seed, step, site);
    for (i, v) in data.iter_mut().enumerate() {
        *v = if mix(i as u32 ^ key) < below {
            *v * factor
        } else {
            T::ZERO
        };
    }
}

/// What a training step drops: the probabilities and seed, and the step number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct DropoutStep {
    pub dropout: Dropout,
    pub step: u32,
}

impl DropoutStep {
    /// Drops site `site` of `data` (a model of `layers` layers).
    pub fn apply<T: Real>(&self, data: &mut [T], site: usize, layers: usize) {
        let p = self.dropout.rate(site, layers);
        apply(data, p, self.dropout.seed, self.step, site as u32);
    }
}
