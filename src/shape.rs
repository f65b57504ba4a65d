//! Inputs and outputs of a forward pass, and the checks shared by the CPU and GPU paths.

use std::borrow::Cow;

use crate::config::LstmConfig;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The sizes of one forward call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// `T`
    pub seq_len: usize,
    /// `B`
    pub batch: usize,
}

/// Everything a forward pass takes.
///
/// - `x`: `[T, B, I]` (`[B, T, I]` when `batch_first`), or unbatched `[T, I]`
/// - `h0`: `[D*L, B, H_out]` (`[D*L, H_out]` unbatched); zeros when `None`
/// - `c0`: `[D*L, B, H]` (`[D*L, H]` unbatched); zeros when `None`
/// - `lengths`: `[B]`, each in `1..=T`, as PyTorch's `pack_padded_sequence(...,
///   enforce_sorted=False)`: outputs at `t >= lengths[b]` are zero, `h_n`/`c_n` are each
///   sequence's state at its own last step, the reverse direction starts there. `None` = all `T`.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a, T = f32> {
    /// The input sequence, `[T, B, I]` (see above).
    pub x: &'a Tensor<T>,
    /// The initial hidden state, `[D*L, B, H_out]`.
    pub h0: Option<&'a Tensor<T>>,
    /// The initial cell state, `[D*L, B, H]`.
    pub c0: Option<&'a Tensor<T>>,
    /// Each sequence's length, `[B]`.
    pub lengths: Option<&'a [usize]>,
}

impl<'a, T> Inputs<'a, T> {
    /// Just `x`: zero initial state, every sequence `T` long.
    pub fn new(x: &'a Tensor<T>) -> Self {
        Self {
            x,
            h0: None,
            c0: None,
            lengths: None,
        }
    }

    /// Sets the initial states `h0` `[D*L, B, H_out]` and `c0` `[D*L, B, H]`.
    pub fn state(mut self, h0: Option<&'a Tensor<T>>, c0: Option<&'a Tensor<T>>) -> Self {
        self.h0 = h0;
        self.c0 = c0;
        self
    }

    /// Sets the sequence lengths `[B]`, each in `1..=T`.
    pub fn lengths(mut self, lengths: Option<&'a [usize]>) -> Self {
        self.lengths = lengths;
        self
    }
}

/// What a forward pass returns, as PyTorch's `nn.LSTM` does (plus the head, when present).
#[derive(Clone, Debug, PartialEq)]
pub struct LstmOutput<T = f32> {
    /// `[T, B, D*H_out]` (`[B, T, ...]` when `batch_first`, `[T, ...]` unbatched);
    /// with a head, its output `[T, B, O]` instead
    pub output: Tensor<T>,
    /// `[D*L, B, H_out]`: the last hidden state of every layer and direction
    pub h_n: Tensor<T>,
    /// `[D*L, B, H]`: the last cell state of every layer and direction
    pub c_n: Tensor<T>,
}

/// Inputs in batched form, checked.
pub(crate) struct Batched<'a, T: Clone> {
    pub x: Cow<'a, Tensor<T>>,
    pub h0: Option<Cow<'a, Tensor<T>>>,
    pub c0: Option<Cow<'a, Tensor<T>>>,
    /// Per-sequence lengths, `T` for every row when none were given.
    pub lengths: Vec<usize>,
    pub dims: Dims,
    unbatched: bool,
    /// Axis of B in `x` and the output: 0 when `batch_first`, else 1.
    batch_axis: usize,
}

impl<'a, T: Copy> Batched<'a, T> {
    /// Checks `inputs` against `config` and adds a batch axis of 1 to unbatched inputs.
    pub fn new(config: &LstmConfig, inputs: &Inputs<'a, T>) -> Result<Self> {
        let unbatched = inputs.x.shape().len() == 2;
        let add_batch =
            |t: &'a Tensor<T>, what: &str, batch_axis: usize| -> Result<Cow<'a, Tensor<T>>> {
                if !unbatched {
                    return Ok(Cow::Borrowed(t));
                }
                if t.shape().len() != 2 {
                    return Err(Error::Input(format!(
                        "{what} must be 2-D for unbatched 2-D input, got shape {:?}",
                        t.shape()
                    )));
                }
                let mut shape = t.shape().to_vec();
                shape.insert(batch_axis, 1);
                Ok(Cow::Owned(t.clone().reshape(shape)?))
            };
        let batch_axis = if config.batch_first { 0 } else { 1 };
        let x = add_batch(inputs.x, "x", batch_axis)?;
        let h0 = inputs.h0.map(|t| add_batch(t, "h0", 1)).transpose()?;
        let c0 = inputs.c0.map(|t| add_batch(t, "c0", 1)).transpose()?;
        let dims = check_inputs(config, &x, h0.as_deref(), c0.as_deref())?;
        let lengths = match inputs.lengths {
            Some(lengths) => {
                check_lengths(lengths, dims)?;
                lengths.to_vec()
            }
            None => vec![dims.seq_len; dims.batch],
        };
        Ok(Self {
            x,
            h0,
            c0,
            lengths,
            dims,
            unbatched,
            batch_axis,
        })
    }

    /// True when the caller's input had no batch axis.
    pub fn is_unbatched(&self) -> bool {
        self.unbatched
    }

    /// The caller's shape of a `[D*L, B, width]` state (`[D*L, width]` for unbatched input).
    pub fn state_shape(&self, states: usize, width: usize) -> Vec<usize> {
        if self.unbatched {
            vec![states, width]
        } else {
            vec![states, self.dims.batch, width]
        }
    }

    /// Removes the batch axis again from an unbatched call's outputs.
    pub fn finish(&self, out: LstmOutput<T>) -> Result<LstmOutput<T>> {
        if !self.unbatched {
            return Ok(out);
        }
        let drop_batch = |t: Tensor<T>, axis: usize| {
            let mut shape = t.shape().to_vec();
            shape.remove(axis);
            t.reshape(shape)
        };
        Ok(LstmOutput {
            output: drop_batch(out.output, self.batch_axis)?,
            h_n: drop_batch(out.h_n, 1)?,
            c_n: drop_batch(out.c_n, 1)?,
        })
    }
}

fn check_lengths(lengths: &[usize], Dims { seq_len, batch }: Dims) -> Result<()> {
    if lengths.len() != batch {
        return Err(Error::Input(format!(
            "lengths has {} entries but the batch has B = {batch}",
            lengths.len()
        )));
    }
    if let Some((b, &len)) = lengths
        .iter()
        .enumerate()
        .find(|(_, &l)| l == 0 || l > seq_len)
    {
        return Err(Error::Input(format!(
            "lengths[{b}] = {len} is outside 1..={seq_len} (T)"
        )));
    }
    Ok(())
}

/// Checks batched `x` (`[T, B, I]`, or `[B, T, I]` when `batch_first`) and the initial state.
pub fn check_inputs<T: Copy>(
    config: &LstmConfig,
    x: &Tensor<T>,
    h0: Option<&Tensor<T>>,
    c0: Option<&Tensor<T>>,
) -> Result<Dims> {
    let shape = x.shape();
    let layout = if config.batch_first {
        "[B, T, I]"
    } else {
        "[T, B, I]"
    };
    if shape.len() != 3 || shape[2] != config.input_size {
        return Err(Error::Input(format!(
            "input must be {layout} or [T, I] with I = {}, got shape {shape:?}",
            config.input_size
        )));
    }
    let (seq_len, batch) = if config.batch_first {
        (shape[1], shape[0])
    } else {
        (shape[0], shape[1])
    };
    if seq_len == 0 || batch == 0 {
        return Err(Error::Input(format!(
            "input {layout} must have T >= 1 and B >= 1, got shape {shape:?}"
        )));
    }
    let states = config.num_directions() * config.num_layers;
    if let Some(h0) = h0 {
        h0.expect_shape("h0 [D*L, B, H_out]", &[states, batch, config.output_size()])?;
    }
    if let Some(c0) = c0 {
        c0.expect_shape("c0 [D*L, B, H]", &[states, batch, config.hidden_size])?;
    }
    Ok(Dims { seq_len, batch })
}
