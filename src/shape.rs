//! Input checks shared by the CPU and GPU paths.

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

/// Optional initial state: `h0` `[D*L, B, H_out]`, `c0` `[D*L, B, H]`. Missing means zeros.
#[derive(Clone, Copy, Debug, Default)]
pub struct InitialState<'a> {
    pub h0: Option<&'a Tensor>,
    pub c0: Option<&'a Tensor>,
}

/// What a forward pass returns, as PyTorch's `nn.LSTM` does.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmOutput<T = f32> {
    /// `[T, B, D*H_out]`, or `[B, T, D*H_out]` when `batch_first`
    pub output: Tensor<T>,
    /// `[D*L, B, H_out]`: the last hidden state of every layer and direction
    pub h_n: Tensor<T>,
    /// `[D*L, B, H]`: the last cell state of every layer and direction
    pub c_n: Tensor<T>,
}

/// Checks `x` (`[T, B, I]`, or `[B, T, I]` when `batch_first`) and the initial state.
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
            "input must be {layout} with I = {}, got shape {shape:?}",
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
