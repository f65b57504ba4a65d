//! Where a training job's batches come from: a set of sequences in minibatches along B
//! (shuffled per epoch from a seed, or in order), consecutive windows of long sequences
//! (truncated BPTT), or windows of token streams with next-token targets (a language model).
//! Each source says how many steps an epoch has and gives any step's batch from
//! (epoch, index) alone, so that a resumed run takes exactly the batches it would have.

use std::borrow::Cow;

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

use super::bptt::{next_token_windows, windows};
use super::{StepLoss, Trainer};
use crate::error::{Error, Result};
use crate::loss::Target;
use crate::shape::Inputs;
use crate::tensor::Tensor;

/// A model's input: token ids `[T, B]` (a model with an embedding) or values `[T, B, I]`.
#[derive(Clone, Debug, PartialEq)]
pub enum DataInput {
    /// Token ids, time-major `[T, B]`.
    Ids(Tensor<i64>),
    /// Float values, time-major `[T, B, I]`.
    Values(Tensor),
}

impl DataInput {
    /// `[T, B, ...]`.
    pub fn shape(&self) -> &[usize] {
        match self {
            DataInput::Ids(t) => t.shape(),
            DataInput::Values(t) => t.shape(),
        }
    }
}

/// Sequences and their targets, time-major: input `[T, B, ...]`, target per step
/// (`[T, B, O]` values, `[T, B]` classes) or per sequence (`[B, O]`, `[B]`), lengths `[B]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceData {
    /// The model's input.
    pub input: DataInput,
    /// What the loss compares the model with.
    pub target: Target,
    /// Each sequence's length (all `T` when none).
    pub lengths: Option<Vec<usize>>,
}

/// One step's batch, borrowed from its source where it is the whole of it.
#[derive(Clone, Debug)]
pub struct Batch<'a> {
    /// Ids or values.
    pub input: Cow<'a, DataInput>,
    /// The target.
    pub target: Cow<'a, Target>,
    /// The lengths, if any.
    pub lengths: Option<Cow<'a, [usize]>>,
}

impl Batch<'_> {
    /// Submits the batch as the trainer's next step.
    pub fn submit(&self, trainer: &mut dyn Trainer) -> Result<Vec<StepLoss>> {
        let lengths = self.lengths.as_deref();
        match self.input.as_ref() {
            DataInput::Ids(ids) => trainer.submit_ids(ids, lengths, &self.target),
            DataInput::Values(x) => {
                trainer.submit_with(&Inputs::new(x).lengths(lengths), &self.target)
            }
        }
    }
}

/// A source of batches, an epoch at a time.
pub trait Batches {
    /// Steps in one epoch (at least 1).
    fn per_epoch(&self) -> usize;

    /// The batch of step `index` (in `0..per_epoch`) of epoch `epoch` (from 0).
    fn batch(&self, epoch: u64, index: usize) -> Result<Batch<'_>>;

    /// Whether each step starts from the state the step before ended in (truncated BPTT),
    /// from zeros at the start of each epoch.
    fn carries_state(&self) -> bool;

    /// What a checkpoint records of the data, to refuse resuming on other data: shapes and a
    /// hash of every value.
    fn fingerprint(&self) -> String;
}

impl SequenceData {
    /// Checks the shapes against each other: the input `[T, B, ...]`, the target per step or
    /// per sequence (rank says which), `B` lengths in `1..=T`.
    pub fn new(input: DataInput, target: Target, lengths: Option<Vec<usize>>) -> Result<Self> {
        let shape = input.shape();
        let rank = match input {
            DataInput::Ids(_) => 2,
            DataInput::Values(_) => 3,
        };
        if shape.len() != rank || shape[0] == 0 || shape[1] == 0 {
            return Err(Error::Input(format!(
                "input must be {} with T, B >= 1, got {shape:?}",
                if rank == 2 { "ids [T, B]" } else { "[T, B, I]" }
            )));
        }
        let (t, b) = (shape[0], shape[1]);
        let data = Self {
            input,
            target,
            lengths,
        };
        let per_step = data.target_is_per_step();
        let leading: &[usize] = if per_step { &[t, b] } else { &[b] };
        let tshape = data.target.shape();
        if tshape.len() < leading.len() || tshape[..leading.len()] != *leading {
            return Err(Error::Input(format!(
                "target shape {tshape:?} must start with the input's [T, B] = [{t}, {b}] (one \
                 per step) or be [B, ...] = [{b}, ...] (one per sequence)"
            )));
        }
        if let Some(lengths) = &data.lengths {
            if lengths.len() != b {
                return Err(Error::Input(format!(
                    "{} lengths for B = {b} sequences",
                    lengths.len()
                )));
            }
            if let Some(bad) = lengths.iter().find(|&&l| l == 0 || l > t) {
                return Err(Error::Input(format!("length {bad} is outside 1..={t} (T)")));
            }
        }
        Ok(data)
    }

    /// `(T, B)`.
    pub fn dims(&self) -> (usize, usize) {
        let shape = self.input.shape();
        (shape[0], shape[1])
    }

    /// Whether the target has one value (or class) per step rather than per sequence.
    pub fn target_is_per_step(&self) -> bool {
        let per_step_rank = match self.target {
            Target::Values(_) => 3,
            Target::Classes(_) => 2,
        };
        self.target.shape().len() == per_step_rank
    }

    /// Sequences `index` (along B), in that order.
    pub fn select(&self, index: &[usize]) -> Result<SequenceData> {
        let target_axis = if self.target_is_per_step() { 1 } else { 0 };
        Ok(SequenceData {
            input: match &self.input {
                DataInput::Ids(t) => DataInput::Ids(gather(t, 1, index)?),
                DataInput::Values(t) => DataInput::Values(gather(t, 1, index)?),
            },
            target: match &self.target {
                Target::Values(t) => Target::Values(gather(t, target_axis, index)?),
                Target::Classes(t) => Target::Classes(gather(t, target_axis, index)?),
            },
            lengths: self
                .lengths
                .as_ref()
                .map(|l| index.iter().map(|&i| l[i]).collect()),
        })
    }

    /// Steps `start..start + len` (along T) of per-step data without lengths.
    pub fn steps(&self, start: usize, len: usize) -> Result<SequenceData> {
        if !self.target_is_per_step() || self.lengths.is_some() {
            return Err(Error::Input(
                "windows along T (truncated BPTT) need a target per step and no lengths".into(),
            ));
        }
        Ok(SequenceData {
            input: match &self.input {
                DataInput::Ids(t) => DataInput::Ids(rows(t, start, len)?),
                DataInput::Values(t) => DataInput::Values(rows(t, start, len)?),
            },
            target: match &self.target {
                Target::Values(t) => Target::Values(rows(t, start, len)?),
                Target::Classes(t) => Target::Classes(rows(t, start, len)?),
            },
            lengths: None,
        })
    }

    /// The first sequences for training and the last `fraction` of B for validation (at
    /// least one of each).
    pub fn split_tail(&self, fraction: f64) -> Result<(SequenceData, SequenceData)> {
        let (_, b) = self.dims();
        let held = held_out(b, fraction, "sequences (B)")?;
        let train: Vec<usize> = (0..b - held).collect();
        let val: Vec<usize> = (b - held..b).collect();
        Ok((self.select(&train)?, self.select(&val)?))
    }

    fn hash(&self) -> String {
        let mut hash = Fnv::new();
        match &self.input {
            DataInput::Ids(t) => t.data().iter().for_each(|v| hash.add(&v.to_le_bytes())),
            DataInput::Values(t) => t.data().iter().for_each(|v| hash.add(&v.to_le_bytes())),
        }
        match &self.target {
            Target::Values(t) => t.data().iter().for_each(|v| hash.add(&v.to_le_bytes())),
            Target::Classes(t) => t.data().iter().for_each(|v| hash.add(&v.to_le_bytes())),
        }
        for l in self.lengths.iter().flatten() {
            hash.add(&(*l as u64).to_le_bytes());
        }
        format!(
            "input {:?}, target {:?}, lengths {}, hash {:016x}",
            self.input.shape(),
            self.target.shape(),
            self.lengths.is_some(),
            hash.0
        )
    }
}

/// How many of `n` items the last `fraction` holds: at least 1, leaving at least 1.
pub fn held_out(n: usize, fraction: f64, what: &str) -> Result<usize> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::Config(format!(
            "the validation fraction must be in (0, 1), got {fraction}"
        )));
    }
    let held = ((n as f64) * fraction).round() as usize;
    if n < 2 {
        return Err(Error::Input(format!(
            "{n} {what}: at least 2 are needed to hold some out for validation"
        )));
    }
    Ok(held.clamp(1, n - 1))
}

/// Minibatches of `batch_size` sequences along B, the last one smaller when it does not
/// divide B; shuffled each epoch from (seed, epoch) when `shuffle`, else in order.
pub struct Minibatches {
    data: SequenceData,
    batch_size: usize,
    shuffle: Option<u64>,
}

impl Minibatches {
    /// `batch_size` in `1..=B`; `shuffle` the seed, or none for B's order.
    pub fn new(data: SequenceData, batch_size: usize, shuffle: Option<u64>) -> Result<Self> {
        let (_, b) = data.dims();
        if batch_size == 0 || batch_size > b {
            return Err(Error::Input(format!(
                "the batch size must be in 1..={b} (the batch axis), got {batch_size}"
            )));
        }
        Ok(Self {
            data,
            batch_size,
            shuffle,
        })
    }

    /// The sequences.
    pub fn data(&self) -> &SequenceData {
        &self.data
    }

    /// Epoch `epoch`'s order of the sequences.
    fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.data.dims().1).collect();
        if let Some(seed) = self.shuffle {
            // one generator per epoch, so any epoch's order is known without the others
            let mut rng = StdRng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            order.shuffle(&mut rng);
        }
        order
    }
}

impl Batches for Minibatches {
    fn per_epoch(&self) -> usize {
        self.data.dims().1.div_ceil(self.batch_size)
    }

    fn batch(&self, epoch: u64, index: usize) -> Result<Batch<'_>> {
        let b = self.data.dims().1;
        if self.shuffle.is_none() && self.batch_size == b {
            return Ok(Batch {
                input: Cow::Borrowed(&self.data.input),
                target: Cow::Borrowed(&self.data.target),
                lengths: self.data.lengths.as_deref().map(Cow::Borrowed),
            });
        }
        let order = self.order(epoch);
        let end = ((index + 1) * self.batch_size).min(b);
        let part = self.data.select(&order[index * self.batch_size..end])?;
        Ok(Batch {
            input: Cow::Owned(part.input),
            target: Cow::Owned(part.target),
            lengths: part.lengths.map(Cow::Owned),
        })
    }

    fn carries_state(&self) -> bool {
        false
    }

    fn fingerprint(&self) -> String {
        self.data.hash()
    }
}

/// Truncated BPTT over long sequences `[N, B, ...]` with a target per step: consecutive
/// windows of at most `k` steps, the last one shorter; the state carried between them.
pub struct SequenceWindows {
    data: SequenceData,
    windows: Vec<(usize, usize)>,
}

impl SequenceWindows {
    /// Windows of `k >= 1` steps over `data` (a target per step, no lengths).
    pub fn new(data: SequenceData, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::Config("--bptt must be at least 1".into()));
        }
        data.steps(0, 1)?; // per step, no lengths
        let windows = windows(data.dims().0, k);
        Ok(Self { data, windows })
    }
}

impl Batches for SequenceWindows {
    fn per_epoch(&self) -> usize {
        self.windows.len()
    }

    fn batch(&self, _epoch: u64, index: usize) -> Result<Batch<'_>> {
        let (start, len) = self.windows[index];
        let part = self.data.steps(start, len)?;
        Ok(Batch {
            input: Cow::Owned(part.input),
            target: Cow::Owned(part.target),
            lengths: None,
        })
    }

    fn carries_state(&self) -> bool {
        true
    }

    fn fingerprint(&self) -> String {
        format!("{}, windows {:?}", self.data.hash(), self.windows.len())
    }
}

/// A language model's batches: `B` token streams `[N, B]` in windows of at most `k` steps
/// (`word_language_model`'s `get_batch`), each target the next token; the state carried.
pub struct TokenWindows {
    tokens: Tensor<i64>,
    windows: Vec<(usize, usize)>,
}

impl TokenWindows {
    /// Windows of `k >= 1` steps over `tokens` `[N, B]` (N >= 2).
    pub fn new(tokens: Tensor<i64>, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::Config("--bptt must be at least 1".into()));
        }
        if tokens.shape().len() != 2 || tokens.shape()[0] < 2 || tokens.shape()[1] == 0 {
            return Err(Error::Input(format!(
                "token streams must be [N, B] with N >= 2 (an input and its next token), got \
                 {:?}",
                tokens.shape()
            )));
        }
        let windows = next_token_windows(tokens.shape()[0], k);
        Ok(Self { tokens, windows })
    }

    /// The streams `[N, B]`.
    pub fn tokens(&self) -> &Tensor<i64> {
        &self.tokens
    }

    /// Window `index`'s input `[len, B]` and next-token target `[len, B]`.
    pub fn window(&self, index: usize) -> Result<(Tensor<i64>, Tensor<i64>)> {
        let (start, len) = self.windows[index];
        Ok((
            rows(&self.tokens, start, len)?,
            rows(&self.tokens, start + 1, len)?,
        ))
    }
}

impl Batches for TokenWindows {
    fn per_epoch(&self) -> usize {
        self.windows.len()
    }

    fn batch(&self, _epoch: u64, index: usize) -> Result<Batch<'_>> {
        let (input, target) = self.window(index)?;
        Ok(Batch {
            input: Cow::Owned(DataInput::Ids(input)),
            target: Cow::Owned(Target::Classes(target)),
            lengths: None,
        })
    }

    fn carries_state(&self) -> bool {
        true
    }

    fn fingerprint(&self) -> String {
        let mut hash = Fnv::new();
        self.tokens
            .data()
            .iter()
            .for_each(|v| hash.add(&v.to_le_bytes()));
        format!(
            "token streams {:?}, windows {}, hash {:016x}",
            self.tokens.shape(),
            self.windows.len(),
            hash.0
        )
    }
}

/// Rows `start..start + len` of the first axis.
pub(crate) fn rows<T: Copy>(t: &Tensor<T>, start: usize, len: usize) -> Result<Tensor<T>> {
    let row: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = len;
    Tensor::new(shape, t.data()[start * row..(start + len) * row].to_vec())
}

/// Items `index` of axis `axis`, in that order.
fn gather<T: Copy>(t: &Tensor<T>, axis: usize, index: &[usize]) -> Result<Tensor<T>> {
    let shape = t.shape();
    let outer: usize = shape[..axis].iter().product();
    let b = shape[axis];
    let rest: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * index.len() * rest);
    for o in 0..outer {
        for &i in index {
            let at = (o * b + i) * rest;
            out.extend_from_slice(&t.data()[at..at + rest]);
        }
    }
    let mut new_shape = shape.to_vec();
    new_shape[axis] = index.len();
    Tensor::new(new_shape, out)
}

/// 64-bit FNV-1a: a data fingerprint for checkpoints (not a defence against tampering).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(b: usize) -> SequenceData {
        let x = Tensor::new([2, b, 1], (0..2 * b).map(|v| v as f32).collect()).unwrap();
        let y = Target::Classes(Tensor::new([b], (0..b as i64).collect()).unwrap());
        SequenceData::new(DataInput::Values(x), y, Some(vec![1; b])).unwrap()
    }

    fn classes(batch: &Batch<'_>) -> Vec<i64> {
        match batch.target.as_ref() {
            Target::Classes(t) => t.data().to_vec(),
            Target::Values(_) => unreachable!(),
        }
    }

    #[test]
    fn an_epoch_takes_every_sequence_once_and_each_epoch_is_reproducible() {
        let batches = Minibatches::new(data(7), 3, Some(5)).unwrap();
        assert_eq!(batches.per_epoch(), 3);
        let epoch = |e| -> Vec<i64> {
            (0..3)
                .flat_map(|k| classes(&batches.batch(e, k).unwrap()))
                .collect()
        };
        let mut seen = epoch(0);
        assert_ne!(seen, (0..7).collect::<Vec<_>>(), "shuffled");
        assert_ne!(epoch(0), epoch(1), "a new order each epoch");
        assert_eq!(epoch(1), epoch(1));
        seen.sort();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        assert_eq!(batches.batch(0, 2).unwrap().lengths.unwrap().len(), 1);
    }

    #[test]
    fn token_windows_pair_each_token_with_the_next() {
        let tokens = Tensor::new([5, 2], (0..10).collect()).unwrap();
        let w = TokenWindows::new(tokens, 3).unwrap();
        assert_eq!(w.per_epoch(), 2);
        let (x, y) = w.window(1).unwrap();
        assert_eq!(x.shape(), &[1, 2]);
        assert_eq!(x.data(), &[6, 7]);
        assert_eq!(y.data(), &[8, 9]);
    }

    #[test]
    fn the_validation_tail_holds_the_last_sequences() {
        let (train, val) = data(10).split_tail(0.2).unwrap();
        assert_eq!(train.dims().1, 8);
        match val.target {
            Target::Classes(t) => assert_eq!(t.data(), &[8, 9]),
            Target::Values(_) => unreachable!(),
        }
        assert!(data(10).split_tail(1.0).is_err());
        assert!(data(1).split_tail(0.5).is_err());
    }
}
