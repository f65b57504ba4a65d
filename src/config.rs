//! `LstmConfig`: the sizes and options of an `nn.LSTM`.

use crate::cell::Cell;
use crate::error::{Error, Result};

/// The hyper-parameters of an LSTM, with PyTorch `nn.LSTM`'s meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LstmConfig {
    /// Features per input timestep (`I`).
    pub input_size: usize,
    /// Hidden units per direction (`H`).
    pub hidden_size: usize,
    /// Stacked layers (`L`).
    pub num_layers: usize,
    /// Run a second, time-reversed direction and concatenate (`D` = 2).
    pub bidirectional: bool,
    /// Whether `bias_ih`/`bias_hh` exist.
    pub bias: bool,
    /// Projection size `P`; 0 means no projection. When set, `h` has `P` features.
    pub proj_size: usize,
    /// Input and output are `[B, T, F]` instead of `[T, B, F]`.
    pub batch_first: bool,
    /// The cell's variant (ONNX's peepholes, clip, coupled gates, activations); the default
    /// is PyTorch's cell. Inference only; no projection with a variant.
    pub cell: Cell,
}

impl LstmConfig {
    /// One unidirectional layer with bias, no projection, time-major.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        Self {
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            bias: true,
            proj_size: 0,
            batch_first: false,
            cell: Cell::default(),
        }
    }

    /// Sets the cell's variant.
    pub fn cell(mut self, cell: Cell) -> Self {
        self.cell = cell;
        self
    }

    /// Sets the number of stacked layers `L`.
    pub fn num_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// Sets whether a time-reversed second direction runs (`D` = 2).
    pub fn bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// Sets whether `bias_ih`/`bias_hh` exist.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets the projection size `P` (0: none).
    pub fn proj_size(mut self, proj_size: usize) -> Self {
        self.proj_size = proj_size;
        self
    }

    /// Sets whether input and output are `[B, T, F]` instead of `[T, B, F]`.
    pub fn batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    /// `D`: 2 when bidirectional, else 1.
    pub fn num_directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// `H_out`: the width of `h` (proj_size when projecting, else hidden_size).
    pub fn output_size(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    /// Input width of `layer`: `input_size` for layer 0, `D * H_out` above it.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.num_directions() * self.output_size()
        }
    }

    /// Checks every field against PyTorch's rules.
    pub fn validate(&self) -> Result<()> {
        if self.input_size == 0 {
            return Err(Error::Config("input_size must be at least 1".into()));
        }
        if self.hidden_size == 0 {
            return Err(Error::Config("hidden_size must be at least 1".into()));
        }
        if self.num_layers == 0 {
            return Err(Error::Config("num_layers must be at least 1".into()));
        }
        // the gate rows 4H of every weight (products of sizes are checked where allocated)
        if self.hidden_size.checked_mul(4).is_none() {
            return Err(Error::Config(format!(
                "hidden_size ({}) is too large: 4 * hidden_size overflows usize",
                self.hidden_size
            )));
        }
        if self.proj_size >= self.hidden_size && self.proj_size != 0 {
            return Err(Error::Config(format!(
                "proj_size ({}) must be smaller than hidden_size ({})",
                self.proj_size, self.hidden_size
            )));
        }
        self.cell.validate()?;
        if !self.cell.is_standard() && self.proj_size > 0 {
            return Err(Error::Config(format!(
                "a projection (proj_size {}) with a cell variant ({}): ONNX's LSTM has no \
                 projection, and the engine runs the variants without one",
                self.proj_size,
                self.cell.describe()
            )));
        }
        Ok(())
    }
}
