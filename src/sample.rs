//! Text from a byte-level language model: a seeded [`Sampler`] turns one step's logits into a
//! byte, and [`generate`] drives a model through the streaming path one byte at a time.
//!
//! A **byte-level model** is a unidirectional LSTM with an embedding of [`VOCAB`] = 256 rows
//! (`embedding.weight` `[256, I]`) and a 256-wide head (`head.weight` `[256, D*H_out]`): its
//! tokens are a file's bytes, and the head's output at step t is the logits of byte t + 1
//! ([`check_byte_model`]). `lstm-wgpu init --embedding 256 --head 256` makes one.
//!
//! [`generate`] feeds the prime's bytes one per step (B = 1, the state carried between steps,
//! on the GPU with [`GpuStepper`], on the CPU with [`CpuStepper`]), then repeatedly picks a
//! byte from the last logits, emits it and feeds it back. With no prime the model starts from
//! [`START`], a newline: a text model's natural "start of a line".
//!
//! ```no_run
//! use lstm_wgpu::sample::{generate, CpuStepper, Sampler};
//! # fn main() -> lstm_wgpu::Result<()> {
//! let weights = lstm_wgpu::io::safetensors::load("lm.safetensors".as_ref())?;
//! let mut model = CpuStepper::new(&weights, 1)?;
//! let mut sampler = Sampler::new(0.8, Some(40), 0)?;
//! let mut text = b"The ".to_vec();
//! generate(&mut model, &mut sampler, b"The ", 100, |byte| {
//!     text.push(byte);
//!     Ok(())
//! })?;
//! # Ok(()) }
//! ```

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::cpu::FastCpuLstm;
use crate::embedding::Embedding;
use crate::error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::{GpuContext, GpuLstm, GpuState};
use crate::tensor::Tensor;
use crate::weights::LstmWeights;

/// The vocabulary of a byte-level model: every byte value.
pub const VOCAB: usize = 256;

/// The byte a model starts from when [`generate`] is given no prime: `b'\n'`.
pub const START: u8 = b'\n';

/// Picks one index from a step's logits: the argmax at temperature 0, otherwise a draw from
/// `softmax(logits / T)` (restricted to the `k` largest logits with top-k), from a generator
/// seeded once, so the same seed and logits give the same picks.
#[derive(Clone, Debug)]
pub struct Sampler {
    temperature: f32,
    top_k: Option<usize>,
    rng: StdRng,
}

impl Sampler {
    /// A sampler at `temperature` (finite, >= 0; 0 = greedy), keeping the `top_k` largest
    /// logits when given (>= 1), drawing from `StdRng::seed_from_u64(seed)`.
    pub fn new(temperature: f32, top_k: Option<usize>, seed: u64) -> Result<Self> {
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(Error::Config(format!(
                "the sampling temperature must be finite and >= 0 (0 = always the most likely), got {temperature}"
            )));
        }
        if top_k == Some(0) {
            return Err(Error::Config(
                "top-k must be at least 1 (1 = always the most likely), got 0".into(),
            ));
        }
        Ok(Self {
            temperature,
            top_k,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// The temperature.
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// The top-k restriction, if any.
    pub fn top_k(&self) -> Option<usize> {
        self.top_k
    }

    /// One index of `logits`.
    ///
    /// - Temperature 0: [`argmax`] (the first of equal maxima); no draw is made, and top-k
    ///   changes nothing (the argmax is always among the k largest).
    /// - Otherwise: one uniform draw `u` in `[0, 1)` per call, and the first index whose
    ///   cumulative weight (in index order, over [`Sampler::probabilities`]' unnormalised
    ///   weights, in f64) exceeds `u` times the total. An index of weight 0 is never picked.
    ///
    /// NaN logits count as `-inf` (never picked). When no index has a positive weight
    /// (every logit `-inf` or NaN) or `logits` is empty, the pick is the argmax rule's.
    pub fn pick(&mut self, logits: &[f32]) -> usize {
        if self.temperature == 0.0 {
            return argmax(logits);
        }
        let weights = self.weights(logits);
        let total: f64 = weights.iter().sum();
        let u: f64 = self.rng.random::<f64>();
        if total <= 0.0 || !total.is_finite() {
            return argmax(logits);
        }
        let target = u * total;
        let mut cumulative = 0.0;
        let mut last = None;
        for (i, &w) in weights.iter().enumerate() {
            if w > 0.0 {
                cumulative += w;
                last = Some(i);
                if cumulative > target {
                    return i;
                }
            }
        }
        // rounding left the target at the very top: the last index that can be picked
        last.unwrap_or_else(|| argmax(logits))
    }

    /// The distribution [`Sampler::pick`] draws from, normalised, in f64: one-hot at the
    /// argmax for temperature 0; otherwise `exp((l_i - max) / T)` over the candidates (the `k`
    /// largest logits with top-k, ties at the k-th broken towards the lower index, so exactly
    /// `k` are kept), zero elsewhere, divided by their sum. A `+inf` logit takes all the
    /// probability (shared equally between equal ones). All zeros when no index can be
    /// picked by weight (see [`Sampler::pick`]).
    pub fn probabilities(&self, logits: &[f32]) -> Vec<f64> {
        if self.temperature == 0.0 {
            let mut p = vec![0.0; logits.len()];
            if let Some(slot) = p.get_mut(argmax(logits)) {
                *slot = 1.0;
            }
            return p;
        }
        let mut p = self.weights(logits);
        let total: f64 = p.iter().sum();
        if total > 0.0 && total.is_finite() {
            p.iter_mut().for_each(|w| *w /= total);
        }
        p
    }

    /// The unnormalised weights at a temperature > 0: `exp((l_i - max) / T)` for the
    /// candidates (shifted by the largest, so the largest weighs 1 and nothing overflows), 0
    /// for the rest and for NaN.
    fn weights(&self, logits: &[f32]) -> Vec<f64> {
        let key = |l: f32| {
            if l.is_nan() {
                f64::NEG_INFINITY
            } else {
                l as f64
            }
        };
        let mut candidate = vec![true; logits.len()];
        if let Some(k) = self.top_k.filter(|&k| k < logits.len()) {
            let mut order: Vec<usize> = (0..logits.len()).collect();
            // stable: equal logits keep index order, so the lower index wins a tie at the k-th
            order.sort_by(|&a, &b| key(logits[b]).total_cmp(&key(logits[a])));
            candidate.iter_mut().for_each(|c| *c = false);
            for &i in &order[..k] {
                candidate[i] = true;
            }
        }
        let max = logits
            .iter()
            .zip(&candidate)
            .filter(|(_, &c)| c)
            .map(|(&l, _)| key(l))
            .fold(f64::NEG_INFINITY, f64::max);
        let t = self.temperature as f64;
        logits
            .iter()
            .zip(&candidate)
            .map(|(&l, &c)| {
                let l = key(l);
                if !c || l == f64::NEG_INFINITY {
                    0.0
                } else if max == f64::INFINITY {
                    if l == f64::INFINITY {
                        1.0
                    } else {
                        0.0
                    }
                } else {
                    ((l - max) / t).exp()
                }
            })
            .collect()
    }
}

/// The index of the largest logit, the first of equal ones (as PyTorch's `argmax`); NaN is
/// never the largest. 0 when `logits` is empty or all NaN.
pub fn argmax(logits: &[f32]) -> usize {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if !l.is_nan() && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// Checks that `weights` is a byte-level model: an embedding of [`VOCAB`] rows, a head
/// [`VOCAB`] wide, unidirectional (a streamed step runs forwards only). The error is
/// [`Error::Config`] naming what the model has, with `name` (a file name, say) for the model.
pub fn check_byte_model(weights: &LstmWeights, name: &str) -> Result<()> {
    let embedding = weights.embedding().map(|e| e.weight.shape().to_vec());
    let head = weights.head().map(|h| h.weight.shape().to_vec());
    let bidirectional = weights.config().bidirectional;
    if embedding.as_ref().map(|s| s[0]) == Some(VOCAB)
        && head.as_ref().map(|s| s[0]) == Some(VOCAB)
        && !bidirectional
    {
        return Ok(());
    }
    let mut has = vec![match &embedding {
        Some(shape) => format!("embedding {shape:?}"),
        None => "no embedding".into(),
    }];
    has.push(match &head {
        Some(shape) => format!("head {shape:?}"),
        None => format!("no head (output {} wide)", weights.output_width()),
    });
    if bidirectional {
        has.push("is bidirectional".into());
    }
    Err(Error::Config(format!(
        "sampling needs a byte-level model: an embedding of {VOCAB} rows and a {VOCAB}-wide \
         head, unidirectional; {name} has {}",
        has.join(", ")
    )))
}

/// One streamed step of a byte-level model at B = 1: feeds one byte, returns the logits of
/// the next (`VOCAB` of them), the state carried inside. [`GpuStepper`] and [`CpuStepper`]
/// implement it; [`generate`] drives either.
pub trait Stepper {
    /// Feeds `byte` (its embedding row) as the next timestep; returns that step's head
    /// output, the next byte's logits.
    fn step(&mut self, byte: u8) -> Result<Vec<f32>>;
}

/// `byte`'s embedding row as one step's input `[1, I]`.
fn embed(embedding: &Embedding, byte: u8) -> Result<Tensor> {
    let dim = embedding.dim();
    let at = byte as usize * dim;
    Tensor::new([1, dim], embedding.weight.data()[at..at + dim].to_vec())
}

/// A step's output `[1, VOCAB]` as the logits, checked.
fn checked_logits(y: Tensor) -> Result<Vec<f32>> {
    y.expect_shape("a byte-level step's output (logits)", &[1, VOCAB])?;
    Ok(y.into_data())
}

/// The CPU path: the fast f32 engine ([`FastCpuLstm`]) run one timestep at a time from the
/// state it left, h `[L, 1, H_out]` and c `[L, 1, H]` kept on the host.
pub struct CpuStepper {
    model: FastCpuLstm,
    embedding: Embedding,
    h: Tensor,
    c: Tensor,
}

impl CpuStepper {
    /// A stepper for the byte-level model `weights` ([`check_byte_model`]) on `threads`
    /// threads, starting from zero state.
    pub fn new(weights: &LstmWeights, threads: usize) -> Result<Self> {
        check_byte_model(weights, "this model")?;
        let config = weights.config();
        let layers = config.num_layers;
        let embedding = weights
            .embedding()
            .cloned()
            .ok_or_else(|| Error::Config("a byte-level model needs an embedding".into()))?;
        Ok(Self {
            model: FastCpuLstm::new(weights).with_threads(threads)?,
            embedding,
            h: Tensor::try_full([layers, 1, config.output_size()], 0.0)?,
            c: Tensor::try_full([layers, 1, config.hidden_size], 0.0)?,
        })
    }
}

impl Stepper for CpuStepper {
    fn step(&mut self, byte: u8) -> Result<Vec<f32>> {
        let x = embed(&self.embedding, byte)?.reshape([1, 1, self.embedding.dim()])?;
        let out = self.model.forward(&x, Some(&self.h), Some(&self.c))?;
        self.h = out.h_n;
        self.c = out.c_n;
        checked_logits(out.output.reshape([1, VOCAB])?)
    }
}

/// The GPU path: [`GpuLstm::step`] with the state in a [`GpuState`] that stays on the GPU;
/// each step uploads one embedding row and reads back the 256 logits.
#[cfg(not(target_arch = "wasm32"))]
pub struct GpuStepper {
    model: GpuLstm,
    state: GpuState,
    embedding: Embedding,
}

#[cfg(not(target_arch = "wasm32"))]
impl GpuStepper {
    /// A stepper for the byte-level model `weights` ([`check_byte_model`]) on `ctx`'s device,
    /// starting from zero state.
    pub fn new(ctx: &GpuContext, weights: &LstmWeights) -> Result<Self> {
        check_byte_model(weights, "this model")?;
        let embedding = weights
            .embedding()
            .cloned()
            .ok_or_else(|| Error::Config("a byte-level model needs an embedding".into()))?;
        Ok(Self {
            model: GpuLstm::new(ctx, weights)?,
            state: GpuState::zeros(ctx, weights.config(), 1)?,
            embedding,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Stepper for GpuStepper {
    fn step(&mut self, byte: u8) -> Result<Vec<f32>> {
        let x = embed(&self.embedding, byte)?;
        checked_logits(self.model.step(&x, &self.state)?)
    }
}

/// Generates `length` bytes after `prime`, calling `emit` with each as soon as it is picked.
///
/// The prime's bytes are fed one per step ([`START`] alone when `prime` is empty); then, each
/// time, the last step's logits give a byte through `sampler`, which is emitted and fed back
/// (the last generated byte is not fed: nothing reads its logits). The prime itself is not
/// emitted. `length` 0 feeds nothing. An error from `emit` stops generation and is returned.
pub fn generate<S: Stepper + ?Sized>(
    model: &mut S,
    sampler: &mut Sampler,
    prime: &[u8],
    length: usize,
    mut emit: impl FnMut(u8) -> Result<()>,
) -> Result<()> {
    if length == 0 {
        return Ok(());
    }
    let context: &[u8] = if prime.is_empty() { &[START] } else { prime };
    let mut logits = Vec::new();
    for &byte in context {
        logits = model.step(byte)?;
    }
    for n in 0..length {
        let byte = u8::try_from(sampler.pick(&logits)).map_err(|_| {
            Error::Input(format!(
                "the model's logits are {} wide, not {VOCAB}",
                logits.len()
            ))
        })?;
        emit(byte)?;
        if n + 1 < length {
            logits = model.step(byte)?;
        }
    }
    Ok(())
}
