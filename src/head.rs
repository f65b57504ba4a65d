//! `Linear`: an optional output layer applied to the LSTM output at every timestep, as
//! PyTorch's `nn.Linear` (`y = x · weightᵀ + bias`).

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::host::HostBytes;
use crate::tensor::Tensor;

/// A Linear layer: `weight` `[O, in]`, optional `bias` `[O]`; maps `[..., in]` to `[..., O]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// `[O, in]`
    pub weight: Tensor,
    /// `[O]`
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Checks that `weight` is 2-D and `bias` matches its rows.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        if weight.shape().len() != 2 || weight.shape().contains(&0) {
            return Err(Error::Config(format!(
                "head.weight must be [O, in] with O, in >= 1, got {:?}",
                weight.shape()
            )));
        }
        if let Some(bias) = &bias {
            bias.expect_shape("head.bias", &[weight.shape()[0]])?;
        }
        Ok(Self { weight, bias })
    }

    /// PyTorch's `nn.Linear` initialisation: weight and bias from U(-1/sqrt(in), 1/sqrt(in)).
    /// Sizes the host cannot hold are [`Error::HostMemory`] naming the bytes.
    pub fn init(in_features: usize, out_features: usize, seed: u64) -> Result<Self> {
        let bound = 1.0 / (in_features.max(1) as f32).sqrt();
        let mut rng = StdRng::seed_from_u64(seed);
        HostBytes::new()
            .add(&[out_features, in_features], 4, 1)
            .add(&[out_features], 4, 1)
            .check(|| format!("Linear head [{out_features}, {in_features}]"))?;
        let mut draw = |shape: Vec<usize>| {
            Tensor::try_from_fn("head parameter", shape, |_| {
                rng.random_range(-bound..=bound)
            })
        };
        let weight = draw(vec![out_features, in_features])?;
        let bias = draw(vec![out_features])?;
        Self::new(weight, Some(bias))
    }

    /// The input width `in` (`D*H_out` for a head on an LSTM).
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// The output width `O`.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }
}
