//! The flat parameter vector that training updates (on both paths), and where each
//! parameter lives in it. Per layer: W_ih of every direction (`[D*4H, in]`), then W_hh
//! (`[D*4H, H_out]`), b_ih (`[D*4H]`), b_hh, W_hr (`[D*P, H]`); then head.weight, head.bias.
//! Each tensor is in PyTorch's layout, directions stacked along the first axis.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::weights::{LstmWeights, ParamKind};

/// Offsets (in f32 elements) of one layer's parameters; each spans every direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerOffsets {
    /// `W_ih`, `[D*4H, in]`.
    pub w_ih: usize,
    /// `W_hh`, `[D*4H, H_out]`.
    pub w_hh: usize,
    /// `b_ih`, `[D*4H]`; `None` without biases.
    pub b_ih: Option<usize>,
    /// `b_hh`, `[D*4H]`; `None` without biases.
    pub b_hh: Option<usize>,
    /// `W_hr`, `[D*P, H]`; `None` without a projection.
    pub w_hr: Option<usize>,
}

/// Where every parameter of a model lives in the flat vector (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    /// One entry per layer.
    pub layers: Vec<LayerOffsets>,
    /// The head's weight `[O, D*H_out]`; `None` without a head.
    pub head_weight: Option<usize>,
    /// The head's bias `[O]`; `None` without a head or its bias.
    pub head_bias: Option<usize>,
    /// The embedding `[V, I]`, last; `None` without one.
    pub embedding: Option<usize>,
    /// The vector's length in f32 elements.
    pub total: usize,
}

impl ParamLayout {
    /// The layout a trainer uses: with `tied`, the head's weight is the embedding's (the
    /// same offset: one parameter), else [`ParamLayout::new`].
    pub fn for_training(weights: &LstmWeights, tied: bool) -> Self {
        let mut layout = Self::new(weights);
        if let (true, Some(_), Some(embedding)) = (tied, layout.head_weight, layout.embedding) {
            // the head's weight leaves the vector (the head's bias and the embedding, after
            // it, move down) and reads the embedding's place
            let head_len = weights.head().map_or(0, |h| h.weight.data().len());
            if let Some(bias) = layout.head_bias.as_mut() {
                *bias -= head_len;
            }
            layout.embedding = Some(embedding - head_len);
            layout.head_weight = layout.embedding;
            layout.total -= head_len;
        }
        layout
    }

    /// The layout of `weights`' parameters.
    pub fn new(weights: &LstmWeights) -> Self {
        let cfg = weights.config();
        let d = cfg.num_directions();
        let mut total = 0;
        let mut take = |len: usize| {
            let at = total;
            total += len;
            at
        };
        let mut layers = Vec::new();
        for layer in 0..cfg.num_layers {
            let len = |kind| {
                weights
                    .layer(layer, 0)
                    .get(kind)
                    .map(|t| d * t.data().len())
            };
            let w_ih = take(len(ParamKind::WeightIh).unwrap_or(0));
            let w_hh = take(len(ParamKind::WeightHh).unwrap_or(0));
            let b_ih = len(ParamKind::BiasIh).map(&mut take);
            let b_hh = len(ParamKind::BiasHh).map(&mut take);
            let w_hr = len(ParamKind::WeightHr).map(&mut take);
            layers.push(LayerOffsets {
                w_ih,
                w_hh,
                b_ih,
                b_hh,
                w_hr,
            });
        }
        let head_weight = weights.head().map(|h| take(h.weight.data().len()));
        let head_bias = weights
            .head()
            .and_then(|h| h.bias.as_ref())
            .map(|b| take(b.data().len()));
        let embedding = weights.embedding().map(|e| take(e.weight.data().len()));
        Self {
            layers,
            head_weight,
            head_bias,
            embedding,
            total,
        }
    }

    fn offset(&self, kind: ParamKind, layer: usize) -> Option<usize> {
        let l = &self.layers[layer];
        match kind {
            ParamKind::WeightIh => Some(l.w_ih),
            ParamKind::WeightHh => Some(l.w_hh),
            ParamKind::BiasIh => l.b_ih,
            ParamKind::BiasHh => l.b_hh,
            ParamKind::WeightHr => l.w_hr,
            // training runs PyTorch's cell only (`crate::train::check_trainable`)
            ParamKind::Peephole => None,
        }
    }

    /// Every tensor of `weights` in this layout.
    pub fn flatten(&self, weights: &LstmWeights) -> Vec<f32> {
        let mut flat = vec![0.0; self.total];
        self.visit(weights, |at, t| {
            flat[at..at + t.data().len()].copy_from_slice(t.data())
        });
        flat
    }

    /// A copy of `like` with every tensor read from `flat`.
    pub fn unflatten(&self, flat: &[f32], like: &LstmWeights) -> Result<LstmWeights> {
        if flat.len() != self.total {
            return Err(Error::Input(format!(
                "flat parameters have {} elements, the layout {}",
                flat.len(),
                self.total
            )));
        }
        let mut out = like.clone();
        let cfg = like.config().clone();
        for layer in 0..cfg.num_layers {
            for dir in 0..cfg.num_directions() {
                for kind in ParamKind::ALL {
                    let Some(base) = self.offset(kind, layer) else {
                        continue;
                    };
                    if let Some(t) = out.layer_mut(layer, dir).get_mut(kind) {
                        let at = base + dir * t.data().len();
                        *t = Tensor::new(
                            t.shape().to_vec(),
                            flat[at..at + t.data().len()].to_vec(),
                        )?;
                    }
                }
            }
        }
        if let Some(head) = out.head_mut() {
            if let Some(at) = self.head_weight {
                let n = head.weight.data().len();
                head.weight = Tensor::new(head.weight.shape().to_vec(), flat[at..at + n].to_vec())?;
            }
            if let (Some(at), Some(bias)) = (self.head_bias, head.bias.as_mut()) {
                let n = bias.data().len();
                *bias = Tensor::new(bias.shape().to_vec(), flat[at..at + n].to_vec())?;
            }
        }
        if let (Some(at), Some(embedding)) = (self.embedding, out.embedding_mut()) {
            let t = &mut embedding.weight;
            let n = t.data().len();
            *t = Tensor::new(t.shape().to_vec(), flat[at..at + n].to_vec())?;
        }
        Ok(out)
    }

    /// Calls `f(offset, tensor)` for every tensor of `weights`.
    fn visit(&self, weights: &LstmWeights, mut f: impl FnMut(usize, &Tensor)) {
        let cfg = weights.config();
        for layer in 0..cfg.num_layers {
            for dir in 0..cfg.num_directions() {
                for kind in ParamKind::ALL {
                    if let (Some(base), Some(t)) = (
                        self.offset(kind, layer),
                        weights.layer(layer, dir).get(kind),
                    ) {
                        f(base + dir * t.data().len(), t);
                    }
                }
            }
        }
        if let (Some(head), Some(at)) = (weights.head(), self.head_weight) {
            f(at, &head.weight);
            if let (Some(bias), Some(at)) = (&head.bias, self.head_bias) {
                f(at, bias);
            }
        }
        if let (Some(embedding), Some(at)) = (weights.embedding(), self.embedding) {
            f(at, &embedding.weight);
        }
    }
}
