//! `LstmWeights`: every parameter of an `nn.LSTM`, in PyTorch's layout and naming.
//!
//! For layer `k` and direction `d` (suffix `_reverse` when `d == 1`):
//!
//! | name              | shape               | notes                                   |
//! |-------------------|---------------------|-----------------------------------------|
//! | `weight_ih_l{k}`  | `[4H, in_k]`        | rows are gates i, f, g, o (H rows each) |
//! | `weight_hh_l{k}`  | `[4H, H_out]`       | same gate order                         |
//! | `bias_ih_l{k}`    | `[4H]`              | only when `bias`                        |
//! | `bias_hh_l{k}`    | `[4H]`              | only when `bias`                        |
//! | `weight_hr_l{k}`  | `[P, H]`            | only when `proj_size > 0`               |
//! | `weight_p_l{k}`   | `[3H]`              | peepholes (i, f, o), only with `cell.peephole` (ONNX; not a PyTorch name) |
//!
//! `in_0 = input_size`, `in_k = D * H_out` for `k > 0`.

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::config::LstmConfig;
use crate::embedding::Embedding;
use crate::error::{Error, Result};
use crate::head::Linear;
use crate::host::HostBytes;
use crate::tensor::Tensor;

/// Parameters of one layer in one direction.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// `[4H, in]`
    pub w_ih: Tensor,
    /// `[4H, H_out]`
    pub w_hh: Tensor,
    /// `[4H]`, present when `config.bias`
    pub b_ih: Option<Tensor>,
    /// `[4H]`, present when `config.bias`
    pub b_hh: Option<Tensor>,
    /// `[P, H]`, present when `config.proj_size > 0`
    pub w_hr: Option<Tensor>,
    /// `[3H]` peepholes (i, f, o), present when `config.cell.peephole`
    pub w_p: Option<Tensor>,
}

/// Which parameter of a layer a tensor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// `weight_ih`, `[4H, in]`.
    WeightIh,
    /// `weight_hh`, `[4H, H_out]`.
    WeightHh,
    /// `bias_ih`, `[4H]`.
    BiasIh,
    /// `bias_hh`, `[4H]`.
    BiasHh,
    /// `weight_hr` (projection), `[P, H]`.
    WeightHr,
    /// `weight_p` (peepholes i, f, o; ONNX's `P` reordered), `[3H]`.
    Peephole,
}

impl ParamKind {
    /// Every kind, in PyTorch's state_dict order within a layer.
    pub const ALL: [ParamKind; 6] = [
        ParamKind::WeightIh,
        ParamKind::WeightHh,
        ParamKind::BiasIh,
        ParamKind::BiasHh,
        ParamKind::WeightHr,
        ParamKind::Peephole,
    ];

    fn stem(self) -> &'static str {
        match self {
            ParamKind::WeightIh => "weight_ih",
            ParamKind::WeightHh => "weight_hh",
            ParamKind::BiasIh => "bias_ih",
            ParamKind::BiasHh => "bias_hh",
            ParamKind::WeightHr => "weight_hr",
            ParamKind::Peephole => "weight_p",
        }
    }
}

/// PyTorch's state_dict name, e.g. `weight_hh_l1_reverse`.
pub fn param_name(kind: ParamKind, layer: usize, direction: usize) -> String {
    let suffix = if direction == 1 { "_reverse" } else { "" };
    format!("{}_l{layer}{suffix}", kind.stem())
}

/// The shape PyTorch gives `kind` of `layer`, or `None` when the config has no such parameter.
pub fn param_shape(config: &LstmConfig, kind: ParamKind, layer: usize) -> Option<Vec<usize>> {
    let gates = 4 * config.hidden_size;
    match kind {
        ParamKind::WeightIh => Some(vec![gates, config.layer_input_size(layer)]),
        ParamKind::WeightHh => Some(vec![gates, config.output_size()]),
        ParamKind::BiasIh | ParamKind::BiasHh => config.bias.then(|| vec![gates]),
        ParamKind::WeightHr => {
            (config.proj_size > 0).then(|| vec![config.proj_size, config.hidden_size])
        }
        ParamKind::Peephole => config.cell.peephole.then(|| vec![3 * config.hidden_size]),
    }
}

impl LayerWeights {
    /// The tensor of `kind`, or `None` when this layer has none (no bias, no projection).
    pub fn get(&self, kind: ParamKind) -> Option<&Tensor> {
        match kind {
            ParamKind::WeightIh => Some(&self.w_ih),
            ParamKind::WeightHh => Some(&self.w_hh),
            ParamKind::BiasIh => self.b_ih.as_ref(),
            ParamKind::BiasHh => self.b_hh.as_ref(),
            ParamKind::WeightHr => self.w_hr.as_ref(),
            ParamKind::Peephole => self.w_p.as_ref(),
        }
    }

    /// The tensor of `kind`, writable; `None` when this layer has none.
    pub fn get_mut(&mut self, kind: ParamKind) -> Option<&mut Tensor> {
        match kind {
            ParamKind::WeightIh => Some(&mut self.w_ih),
            ParamKind::WeightHh => Some(&mut self.w_hh),
            ParamKind::BiasIh => self.b_ih.as_mut(),
            ParamKind::BiasHh => self.b_hh.as_mut(),
            ParamKind::WeightHr => self.w_hr.as_mut(),
            ParamKind::Peephole => self.w_p.as_mut(),
        }
    }
}

/// All parameters of an LSTM (`layers[layer * D + direction]`), and an optional Linear head
/// applied to its output at every timestep.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmWeights {
    config: LstmConfig,
    layers: Vec<LayerWeights>,
    head: Option<Linear>,
    embedding: Option<Embedding>,
}

impl LstmWeights {
    /// PyTorch's initialisation: every parameter drawn from U(-1/sqrt(H), 1/sqrt(H)),
    /// from a seeded generator (the numbers differ from PyTorch's generator).
    ///
    /// Sizes the host cannot hold are [`Error::HostMemory`] naming the bytes, before any
    /// parameter is allocated.
    pub fn init(config: &LstmConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        Self::host_bytes(config).check(|| {
            format!(
                "LSTM weights (input_size {}, hidden_size {}, proj_size {}, {} layers x {} \
                 directions)",
                config.input_size,
                config.hidden_size,
                config.proj_size,
                config.num_layers,
                config.num_directions()
            )
        })?;
        let bound = 1.0 / (config.hidden_size as f32).sqrt();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut draw = |shape: Vec<usize>| {
            Tensor::try_from_fn("LSTM parameter", shape, |_| {
                rng.random_range(-bound..=bound)
            })
        };
        let mut layers = Vec::new();
        for layer in 0..config.num_layers {
            for _direction in 0..config.num_directions() {
                let mut make = |kind| param_shape(config, kind, layer).map(&mut draw).transpose();
                layers.push(LayerWeights {
                    w_ih: make(ParamKind::WeightIh)?.ok_or_else(missing)?,
                    w_hh: make(ParamKind::WeightHh)?.ok_or_else(missing)?,
                    b_ih: make(ParamKind::BiasIh)?,
                    b_hh: make(ParamKind::BiasHh)?,
                    w_hr: make(ParamKind::WeightHr)?,
                    w_p: make(ParamKind::Peephole)?,
                });
            }
        }
        Ok(Self {
            config: config.clone(),
            layers,
            head: None,
            embedding: None,
        })
    }

    /// The weights of the ONNX model in `bytes` (one LSTM node; see [`crate::io::onnx`], which
    /// also gives the graph's wiring, ONNX's `reverse` direction and its shapes).
    pub fn from_onnx(bytes: &[u8]) -> Result<Self> {
        let model = crate::io::onnx::read(bytes)?;
        if model.reverse {
            return Err(Error::Input(
                "ONNX model: direction = \"reverse\" runs through io::onnx::OnnxModel::run \
                 (the weights alone would run forward in time)"
                    .into(),
            ));
        }
        Ok(model.weights)
    }

    /// The f32 bytes of every parameter of `config` (a valid one), summed.
    fn host_bytes(config: &LstmConfig) -> HostBytes {
        let mut bytes = HostBytes::new();
        // layer 0, then the L - 1 layers above it (all of one shape), without a loop over L
        let d = config.num_directions();
        let above = d.saturating_mul(config.num_layers - 1);
        for (layer, count) in [(0, d), (1, above)] {
            for kind in ParamKind::ALL {
                if let Some(shape) = param_shape(config, kind, layer) {
                    bytes.add(&shape, 4, count);
                }
            }
        }
        bytes
    }

    /// Builds weights from per-layer parameters, checking every shape against `config`.
    /// `layers` is ordered `layer * D + direction`.
    pub fn from_layers(config: &LstmConfig, layers: Vec<LayerWeights>) -> Result<Self> {
        config.validate()?;
        let expected = config.num_layers * config.num_directions();
        if layers.len() != expected {
            return Err(Error::Config(format!(
                "expected {expected} layer/direction weight sets \
                 ({} layers x {} directions), got {}",
                config.num_layers,
                config.num_directions(),
                layers.len()
            )));
        }
        for (index, weights) in layers.iter().enumerate() {
            let (layer, direction) = (
                index / config.num_directions(),
                index % config.num_directions(),
            );
            for kind in ParamKind::ALL {
                let name = param_name(kind, layer, direction);
                match (param_shape(config, kind, layer), weights.get(kind)) {
                    (Some(shape), Some(tensor)) => tensor.expect_shape(&name, &shape)?,
                    (None, None) => {}
                    (Some(shape), None) => {
                        return Err(Error::Config(format!(
                            "{name} {shape:?} is missing for this config"
                        )))
                    }
                    (None, Some(tensor)) => {
                        return Err(Error::Config(format!(
                            "{name} {:?} is given but this config has no such parameter",
                            tensor.shape()
                        )))
                    }
                }
            }
        }
        Ok(Self {
            config: config.clone(),
            layers,
            head: None,
            embedding: None,
        })
    }

    /// Adds a Linear head; its input width must be the LSTM output width `D * H_out`.
    pub fn with_head(mut self, head: Linear) -> Result<Self> {
        let width = self.config.num_directions() * self.config.output_size();
        if head.in_features() != width {
            return Err(Error::Shape {
                what: "head.weight [O, D*H_out]".into(),
                expected: vec![head.out_features(), width],
                actual: head.weight.shape().to_vec(),
            });
        }
        self.head = Some(head);
        Ok(self)
    }

    /// Adds an `nn.Embedding` before the LSTM (token inputs); its width must be the LSTM's
    /// input size.
    pub fn with_embedding(mut self, embedding: Embedding) -> Result<Self> {
        if embedding.dim() != self.config.input_size {
            return Err(Error::Shape {
                what: "embedding.weight [V, input_size]".into(),
                expected: vec![embedding.vocab(), self.config.input_size],
                actual: embedding.weight.shape().to_vec(),
            });
        }
        self.embedding = Some(embedding);
        Ok(self)
    }

    /// The embedding before the LSTM, if any (the model then takes token ids).
    pub fn embedding(&self) -> Option<&Embedding> {
        self.embedding.as_ref()
    }

    /// The embedding, writable, if any.
    pub fn embedding_mut(&mut self) -> Option<&mut Embedding> {
        self.embedding.as_mut()
    }

    /// The Linear head, if any.
    pub fn head(&self) -> Option<&Linear> {
        self.head.as_ref()
    }

    /// The Linear head, writable, if any.
    pub fn head_mut(&mut self) -> Option<&mut Linear> {
        self.head.as_mut()
    }

    /// Width of the model's output: the head's `O`, else `D * H_out`.
    pub fn output_width(&self) -> usize {
        match &self.head {
            Some(head) => head.out_features(),
            None => self.config.num_directions() * self.config.output_size(),
        }
    }

    /// The sizes and options these weights are for.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    /// Sets `batch_first` (it changes no parameter).
    pub fn set_batch_first(&mut self, batch_first: bool) {
        self.config.batch_first = batch_first;
    }

    /// The parameters of `layer` in `direction` (0 forward, 1 reverse).
    pub fn layer(&self, layer: usize, direction: usize) -> &LayerWeights {
        &self.layers[layer * self.config.num_directions() + direction]
    }

    /// The parameters of `layer` in `direction` (0 forward, 1 reverse), writable.
    pub fn layer_mut(&mut self, layer: usize, direction: usize) -> &mut LayerWeights {
        let d = self.config.num_directions();
        &mut self.layers[layer * d + direction]
    }

    /// Every LSTM parameter with its PyTorch name, in state_dict order (the head not included).
    pub fn named_tensors(&self) -> Vec<(String, &Tensor)> {
        let mut out = Vec::new();
        for layer in 0..self.config.num_layers {
            for direction in 0..self.config.num_directions() {
                for kind in ParamKind::ALL {
                    if let Some(tensor) = self.layer(layer, direction).get(kind) {
                        out.push((param_name(kind, layer, direction), tensor));
                    }
                }
            }
        }
        out
    }
}

fn missing() -> Error {
    Error::Config("internal: a required parameter has no shape".into())
}
