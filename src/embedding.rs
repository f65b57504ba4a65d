//! `Embedding`: PyTorch's `nn.Embedding(V, I)` before the LSTM, for token inputs. Ids are
//! int64 `[T, B]` (`[B, T]` with `batch_first`, `[T]` unbatched); each row of the table is one
//! token's input vector, so the LSTM sees `x = weight[ids]`, `[T, B, I]`.

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::host::HostBytes;
use crate::tensor::Tensor;

/// An embedding table, `weight` `[V, I]` (the state dict's `embedding.weight`).
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// `[V, I]`: row `v` is token `v`'s input.
    pub weight: Tensor,
}

impl Embedding {
    /// Checks that `weight` is `[V, I]` with V, I >= 1.
    pub fn new(weight: Tensor) -> Result<Self> {
        if weight.shape().len() != 2 || weight.shape().contains(&0) {
            return Err(Error::Config(format!(
                "embedding.weight must be [V, I] with V, I >= 1, got {:?}",
                weight.shape()
            )));
        }
        Ok(Self { weight })
    }

    /// PyTorch's `nn.Embedding` initialisation, N(0, 1), from a seeded generator (the
    /// numbers differ from PyTorch's).
    pub fn init(vocab: usize, dim: usize, seed: u64) -> Result<Self> {
        HostBytes::new()
            .add(&[vocab, dim], 4, 1)
            .check(|| format!("embedding [{vocab}, {dim}]"))?;
        let mut rng = StdRng::seed_from_u64(seed);
        // Box-Muller: two uniforms give one standard normal
        let weight = Tensor::try_from_fn("embedding", [vocab, dim], |_| {
            let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            let u2: f64 = rng.random_range(0.0..1.0);
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })?;
        Self::new(weight)
    }

    /// The vocabulary size `V`.
    pub fn vocab(&self) -> usize {
        self.weight.shape()[0]
    }

    /// The vector width `I` (the LSTM's input size).
    pub fn dim(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Checks every id against `0..V`: the first one outside, with its position, is an error.
    pub fn check_ids(&self, ids: &Tensor<i64>) -> Result<()> {
        let vocab = self.vocab() as i64;
        if let Some((i, &id)) = ids
            .data()
            .iter()
            .enumerate()
            .find(|(_, &id)| id < 0 || id >= vocab)
        {
            let mut position = Vec::new();
            let mut rest = i;
            for &n in ids.shape().iter().rev() {
                position.push(rest % n.max(1));
                rest /= n.max(1);
            }
            position.reverse();
            return Err(Error::Input(format!(
                "token id {id} at position {position:?} (flat index {i}) is outside 0..{vocab} (the embedding's vocabulary)"
            )));
        }
        Ok(())
    }

    /// `weight[ids]`: the ids' shape with `I` appended.
    pub fn lookup(&self, ids: &Tensor<i64>) -> Result<Tensor> {
        self.check_ids(ids)?;
        let dim = self.dim();
        let table = self.weight.data();
        let mut shape = ids.shape().to_vec();
        shape.push(dim);
        let mut x = crate::host::try_with_capacity("embedded input", ids.data().len() * dim)?;
        for &id in ids.data() {
            let at = id as usize * dim;
            x.extend_from_slice(&table[at..at + dim]);
        }
        Tensor::new(shape, x)
    }

    /// The table's gradient from the gradient of the looked-up input `dx` (`[N, I]` for `N`
    /// ids, in the ids' order): row `v` is the sum of the rows of `dx` whose id is `v`, in
    /// position order (deterministic, as the GPU sums them).
    pub fn gradient(&self, ids: &[i64], dx: &[f32]) -> Vec<f32> {
        let dim = self.dim();
        let mut grad = vec![0.0f32; self.vocab() * dim];
        for (pos, &id) in ids.iter().enumerate() {
            let row = &mut grad[id as usize * dim..(id as usize + 1) * dim];
            for (g, &d) in row.iter_mut().zip(&dx[pos * dim..(pos + 1) * dim]) {
                *g += d;
            }
        }
        grad
    }
}
