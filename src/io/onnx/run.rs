//! Running an [`OnnxModel`] on either path with ONNX's shapes: the graph's inputs in, the
//! graph's outputs out, in its order, exactly as ONNX Runtime returns them.

use super::{OnnxModel, OutputKind};
use crate::error::{Error, Result};
use crate::shape::{Inputs, LstmOutput};
use crate::tensor::Tensor;

/// The graph's inputs, in ONNX's shapes.
#[derive(Clone, Debug)]
pub struct OnnxInputs {
    /// `X`: `[T, B, I]`, or `[B, T, I]` with `layout = 1`.
    pub x: Tensor,
    /// `sequence_lens`, each in `1..=T`.
    pub sequence_lens: Option<Vec<usize>>,
    /// `initial_h`: `[D, B, H]`, or `[B, D, H]` with `layout = 1`.
    pub initial_h: Option<Tensor>,
    /// `initial_c`: as `initial_h`.
    pub initial_c: Option<Tensor>,
}

/// Swaps the two leading axes of a rank-3 tensor (`[a, b, c]` to `[b, a, c]`).
fn swap01(t: &Tensor, what: &str) -> Result<Tensor> {
    let s = t.shape();
    if s.len() != 3 {
        return Err(Error::Input(format!(
            "{what}: shape {s:?}, expected rank 3"
        )));
    }
    let (a, b, c) = (s[0], s[1], s[2]);
    let mut out = vec![0.0; a * b * c];
    for i in 0..a {
        for j in 0..b {
            let from = &t.data()[(i * b + j) * c..][..c];
            out[(j * a + i) * c..][..c].copy_from_slice(from);
        }
    }
    Tensor::new([b, a, c], out)
}

/// Reverses each sequence in time within its length: `x` is `[T, B, F]` (`batch_first`:
/// `[B, T, F]`); steps past a length stay where they are.
fn reverse_within(x: &Tensor, lengths: &[usize], batch_first: bool) -> Tensor {
    let s = x.shape();
    let (t_len, batch, f) = if batch_first {
        (s[1], s[0], s[2])
    } else {
        (s[0], s[1], s[2])
    };
    let at = |t: usize, b: usize| {
        if batch_first {
            (b * t_len + t) * f
        } else {
            (t * batch + b) * f
        }
    };
    let mut out = x.data().to_vec();
    for (b, &len) in lengths.iter().enumerate().take(batch) {
        for t in 0..len.min(t_len) {
            let (from, to) = (at(len - 1 - t, b), at(t, b));
            out[to..to + f].copy_from_slice(&x.data()[from..from + f]);
        }
    }
    Tensor::new(s.to_vec(), out).expect("same shape")
}

impl OnnxModel {
    /// The graph's outputs, in its order, for `inputs`; `forward` runs the engine (a
    /// `CpuLstm`, `FastCpuLstm` or `GpuLstm` of [`OnnxModel::weights`]).
    pub fn run(
        &self,
        inputs: &OnnxInputs,
        forward: &mut dyn FnMut(&Inputs<'_>) -> Result<LstmOutput>,
    ) -> Result<Vec<(String, Tensor)>> {
        let cfg = self.weights.config();
        let layout1 = cfg.batch_first;
        let x = &inputs.x;
        if x.shape().len() != 3 {
            return Err(Error::Input(format!(
                "X: shape {:?}, expected [T, B, I]{}",
                x.shape(),
                if layout1 {
                    " as [B, T, I] (layout 1)"
                } else {
                    ""
                }
            )));
        }
        let (t_len, batch) = if layout1 {
            (x.shape()[1], x.shape()[0])
        } else {
            (x.shape()[0], x.shape()[1])
        };
        let constant = |name: &Option<String>| name.as_ref().and_then(|n| self.constants.get(n));
        let lengths: Option<Vec<usize>> =
            match (&inputs.sequence_lens, constant(&self.io.sequence_lens)) {
                (Some(l), _) => Some(l.clone()),
                (None, Some(t)) => Some(t.data().iter().map(|&v| v.max(0.0) as usize).collect()),
                (None, None) => None,
            };
        let state =
            |given: &Option<Tensor>, name: &Option<String>, what: &str| -> Result<Option<Tensor>> {
                match given.as_ref().or(constant(name)) {
                    Some(t) if layout1 => swap01(t, what).map(Some),
                    Some(t) => Ok(Some(t.clone())),
                    None => Ok(None),
                }
            };
        let h0 = state(&inputs.initial_h, &self.io.initial_h, "initial_h")?;
        let c0 = state(&inputs.initial_c, &self.io.initial_c, "initial_c")?;
        let full = vec![t_len; batch];
        let order = lengths.as_deref().unwrap_or(&full);
        let x_run = if self.reverse {
            if order.iter().any(|&l| l > t_len) {
                return Err(Error::Input(format!(
                    "sequence_lens {order:?}: each must be at most T = {t_len}"
                )));
            }
            reverse_within(x, order, layout1)
        } else {
            x.clone()
        };
        let out = forward(
            &Inputs::new(&x_run)
                .state(h0.as_ref(), c0.as_ref())
                .lengths(lengths.as_deref()),
        )?;
        let state_out = |t: &Tensor, what: &str| {
            if layout1 {
                swap01(t, what)
            } else {
                Ok(t.clone())
            }
        };
        self.io
            .outputs
            .iter()
            .map(|(name, kind)| {
                let value = match kind {
                    OutputKind::Output => out.output.clone(),
                    OutputKind::HN => out.h_n.clone(),
                    OutputKind::CN => out.c_n.clone(),
                    OutputKind::Y => self.onnx_y(&out.output, order, (t_len, batch))?,
                    OutputKind::YH => state_out(&out.h_n, "Y_h")?,
                    OutputKind::YC => state_out(&out.c_n, "Y_c")?,
                };
                Ok((name.clone(), value))
            })
            .collect()
    }

    /// ONNX's `Y` from the engine's output: ours is `[T, B, D*H]` (layout 1: `[B, T, D*H]`),
    /// ONNX's `[T, D, B, H]` (layout 1: `[B, T, D, H]`); a reverse model's steps back in time
    /// order within each length.
    fn onnx_y(
        &self,
        output: &Tensor,
        order: &[usize],
        (t_len, batch): (usize, usize),
    ) -> Result<Tensor> {
        let cfg = self.weights.config();
        let (d, h, layout1) = (cfg.num_directions(), cfg.hidden_size, cfg.batch_first);
        let y = if self.reverse {
            reverse_within(output, order, layout1)
        } else {
            output.clone()
        };
        if layout1 {
            return y.reshape([batch, t_len, d, h]);
        }
        let mut data = vec![0.0; t_len * d * batch * h];
        for t in 0..t_len {
            for b in 0..batch {
                for dir in 0..d {
                    let from = &y.data()[((t * batch + b) * d + dir) * h..][..h];
                    data[((t * d + dir) * batch + b) * h..][..h].copy_from_slice(from);
                }
            }
        }
        Tensor::new([t_len, d, batch, h], data)
    }
}
