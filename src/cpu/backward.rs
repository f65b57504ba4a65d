//! The CPU backward pass (BPTT), written plainly: the reference every GPU gradient is checked
//! against, and (in f64) the one checked against finite differences.

use super::forward::{CpuHead, CpuLayer, CpuLstm, LayerPass, Trace};
use super::products::par_gemm_acc;
use super::real::{gemm, Op, Real};
use crate::error::{Error, Result};
use crate::loss::{
    check_target, loss_and_grad, row_weights, valid_steps, Level, Loss, Scored, Target,
};
use crate::shape::{Batched, Dims, Inputs, LstmOutput};
use crate::tensor::{swap_leading_axes, Tensor};
use crate::train::dropout::DropoutStep;

/// Gradients of a scalar loss with respect to every parameter and input.
#[derive(Clone, Debug)]
pub struct Gradients<T> {
    /// Same shapes as [`CpuLstm::layers`]; `b_ih` and `b_hh` get the same gradient.
    pub layers: Vec<CpuLayer<T>>,
    /// Same shapes as [`CpuLstm::head`]; `None` without a head.
    pub head: Option<CpuHead<T>>,
    /// Same shape as the input `x` (empty, shape `[0]`, from
    /// [`super::FastCpuLstm::loss_parameter_gradients`], which skips it).
    pub dx: Tensor<T>,
    /// Same shape as `h0` (`[D*L, B, H_out]`, or `[D*L, H_out]` unbatched).
    pub dh0: Tensor<T>,
    /// Same shape as `c0`.
    pub dc0: Tensor<T>,
}

impl<T: Real> CpuLstm<T> {
    /// The loss of the model on `inputs` against `target`, and its gradients.
    pub fn loss_gradients(
        &self,
        inputs: &Inputs<'_, T>,
        loss: Loss,
        target: &Target,
    ) -> Result<(T, LstmOutput<T>, Gradients<T>)> {
        let (scored, out, grads) = self.loss_gradients_with(
            inputs,
            loss,
            target,
            (true, None),
            &mut Trace::default(),
            &mut |layer| {
                layer.each(&mut |pass| {
                    self.run_direction(pass);
                    Ok(())
                })
            },
            &mut |pass| Ok(self.backward_direction(pass)),
            &mut loss_and_grad,
        )?;
        Ok((scored.value, out, grads))
    }

    /// [`CpuLstm::loss_gradients`] with training's dropout at step `step` (the masks
    /// [`crate::train::dropout`] draws, the same on both paths): for checking its gradients.
    pub fn loss_gradients_dropout(
        &self,
        inputs: &Inputs<'_, T>,
        loss: Loss,
        target: &Target,
        (dropout, step): (crate::train::Dropout, u32),
    ) -> Result<(T, LstmOutput<T>, Gradients<T>)> {
        dropout.validate()?;
        let (scored, out, grads) = self.loss_gradients_with(
            inputs,
            loss,
            target,
            (true, Some(DropoutStep { dropout, step })),
            &mut Trace::default(),
            &mut |layer| {
                layer.each(&mut |pass| {
                    self.run_direction(pass);
                    Ok(())
                })
            },
            &mut |pass| Ok(self.backward_direction(pass)),
            &mut loss_and_grad,
        )?;
        Ok((scored.value, out, grads))
    }

    /// [`CpuLstm::loss_gradients`] with the recurrences of the forward and backward passes
    /// computed by `forward` and `backward` (one layer and direction each) and the loss by
    /// `score`. Without `want_dx` the input gradient is not computed and `dx` is empty (shape
    /// `[0]`). `trace` is recycled first and holds the forward pass's record afterwards.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn loss_gradients_with(
        &self,
        inputs: &Inputs<'_, T>,
        loss: Loss,
        target: &Target,
        (want_dx, dropout): (bool, Option<DropoutStep>),
        trace: &mut Trace<T>,
        forward: &mut dyn FnMut(LayerPass<'_, T>) -> Result<()>,
        backward: &mut BackwardRun<'_, T>,
        score: &mut LossRun<'_, T>,
    ) -> Result<(Scored<T>, LstmOutput<T>, Gradients<T>)> {
        crate::train::check_trainable(&self.config)?;
        let batched = Batched::new(&self.config, inputs)?;
        self.check_host_bytes(batched.dims, true, true)?;
        trace.recycle();
        trace.dropout = dropout;
        let out = self.forward_each_direction(&batched, Some(&mut *trace), forward)?;
        let out = batched.finish(out)?;
        let Dims { seq_len, batch } = batched.dims;
        let batch_axis = (!batched.is_unbatched()).then_some(batch);
        let level = check_target(loss, out.output.shape(), batch_axis, target)?;
        let width = *out.output.shape().last().unwrap_or(&1);
        // the loss gradient's buffer is kept from pass to pass (its pages stay mapped)
        let mut grad = std::mem::take(&mut trace.loss_grad);
        let (scored, d_output, sequence) = match level {
            Level::PerStep => {
                let valid = valid_steps(&batched.lengths, seq_len, self.config.batch_first);
                let weights = row_weights(loss, target, width, &valid)?;
                let scored = score(
                    loss,
                    (out.output.data(), width),
                    target,
                    &weights,
                    &mut grad,
                );
                (
                    scored,
                    Tensor::new(out.output.shape().to_vec(), grad)?,
                    None,
                )
            }
            Level::PerSequence => {
                if dropout.is_some_and(|d| d.dropout.output > 0.0) {
                    return Err(Error::Config(
                        "output dropout applies to the per-step output; a per-sequence target \
                         reads the final state (use dropout between layers)"
                            .into(),
                    ));
                }
                let (scored, sequence) =
                    self.sequence_loss(&out.h_n, batch, (loss, target), score)?;
                grad.clear();
                grad.resize(out.output.data().len(), T::ZERO);
                let zeros = Tensor::new(out.output.shape().to_vec(), grad)?;
                (scored, zeros, Some(sequence))
            }
        };
        let grads = self.backward_traced(
            inputs.x.shape(),
            &batched,
            trace,
            &out,
            &d_output,
            sequence,
            want_dx,
            backward,
        )?;
        trace.loss_grad = d_output.into_data();
        Ok((scored, out, grads))
    }

    /// A per-sequence loss: on the head (if any) applied to the top layer's final hidden
    /// state, both directions concatenated, `[B, D*H_out]`. Returns the loss and the gradients
    /// it gives that state and the head.
    fn sequence_loss(
        &self,
        h_n: &Tensor<T>,
        batch: usize,
        (loss, target): (Loss, &Target),
        score: &mut LossRun<'_, T>,
    ) -> Result<(Scored<T>, SequenceGrad<T>)> {
        let cfg = &self.config;
        let (d, h_out) = (cfg.num_directions(), cfg.output_size());
        let width = d * h_out;
        // features[b, dir * H_out + k] = h_n[top + dir, b, k]
        let features = crate::train::metrics::final_features_of(cfg, h_n.data(), batch);
        let (logits, out_width) = match &self.head {
            Some(head) => (self.apply_head(head, &features, batch), head.out_features),
            None => (features.clone(), width),
        };
        let weights = row_weights(loss, target, out_width, &vec![true; batch])?;
        let mut d_logits = Vec::new();
        let scored = score(loss, (&logits, out_width), target, &weights, &mut d_logits);
        let (d_features, head) = match &self.head {
            Some(head) => {
                let o = head.out_features;
                let mut weight = vec![T::ZERO; o * width];
                gemm(
                    o,
                    width,
                    batch,
                    &d_logits,
                    Op::T,
                    &features,
                    Op::N,
                    T::ZERO,
                    &mut weight,
                );
                let mut bias = vec![T::ZERO; o];
                for row in d_logits.chunks(o) {
                    for (b, &g) in bias.iter_mut().zip(row) {
                        *b += g;
                    }
                }
                let mut d_features = vec![T::ZERO; batch * width];
                gemm(
                    batch,
                    width,
                    o,
                    &d_logits,
                    Op::N,
                    &head.weight,
                    Op::N,
                    T::ZERO,
                    &mut d_features,
                );
                let grad = CpuHead {
                    weight,
                    bias,
                    out_features: o,
                };
                (d_features, Some(grad))
            }
            None => (d_logits, None),
        };
        // dh_top[dir, b, k] = d_features[b, dir * H_out + k]
        let mut dh_top = vec![T::ZERO; d * batch * h_out];
        for dir in 0..d {
            for b in 0..batch {
                let to = (dir * batch + b) * h_out;
                dh_top[to..to + h_out].copy_from_slice(
                    &d_features[b * width + dir * h_out..b * width + (dir + 1) * h_out],
                );
            }
        }
        Ok((scored, SequenceGrad { dh_top, head }))
    }

    /// Backpropagates `d_output` (the loss gradient with respect to the model output, same
    /// shape as the output) through the head, every layer and direction, and every timestep.
    pub fn backward(
        &self,
        inputs: &Inputs<'_, T>,
        d_output: &Tensor<T>,
    ) -> Result<(LstmOutput<T>, Gradients<T>)> {
        let batched = Batched::new(&self.config, inputs)?;
        self.check_host_bytes(batched.dims, true, true)?;
        let (out, trace) = self.forward_traced(&batched)?;
        let out = batched.finish(out)?;
        let grads = self.backward_traced(
            inputs.x.shape(),
            &batched,
            &trace,
            &out,
            d_output,
            None,
            true,
            &mut |pass| Ok(self.backward_direction(pass)),
        )?;
        Ok((out, grads))
    }

    /// The backward pass from a traced forward pass; `run` computes one layer and direction.
    /// `x_shape` is the caller's input shape (the shape of `dx`, empty without `want_dx`).
    /// With `sequence` (a per-sequence loss), `d_output` is zero and the head's gradient and
    /// the top layer's final-state gradient come from it.
    #[allow(clippy::too_many_arguments)]
    fn backward_traced(
        &self,
        x_shape: &[usize],
        batched: &Batched<'_, T>,
        trace: &Trace<T>,
        out: &LstmOutput<T>,
        d_output: &Tensor<T>,
        sequence: Option<SequenceGrad<T>>,
        want_dx: bool,
        run: &mut BackwardRun<'_, T>,
    ) -> Result<Gradients<T>> {
        let cfg = &self.config;
        d_output.expect_shape("d_output (the output's shape)", out.output.shape())?;
        let Dims { seq_len, batch } = batched.dims;
        let (d, h_out, hidden) = (cfg.num_directions(), cfg.output_size(), cfg.hidden_size);
        let rows = seq_len * batch;

        // The output gradient, time-major [T, B, W].
        let width = d_output.data().len() / rows;
        let mut dy: std::borrow::Cow<'_, [T]> = if cfg.batch_first {
            swap_leading_axes(d_output.data(), batch, seq_len, width).into()
        } else {
            d_output.data().into()
        };

        let (mut head_grad, dh_top) = match sequence {
            Some(s) => {
                dy = vec![T::ZERO; rows * d * h_out].into();
                (s.head, Some(s.dh_top))
            }
            None => (None, None),
        };
        if let (Some(head), None) = (&self.head, &dh_top) {
            let lstm_width = d * h_out;
            let mut weight = vec![T::ZERO; head.out_features * lstm_width];
            par_gemm_acc(
                self.product_threads,
                (head.out_features, lstm_width, rows),
                (&dy, Op::T),
                (&trace.lstm_output, Op::N),
                &mut weight,
            );
            let mut bias = vec![T::ZERO; head.out_features];
            for row in dy.chunks(head.out_features) {
                for (b, &g) in bias.iter_mut().zip(row) {
                    *b += g;
                }
            }
            let mut d_lstm = vec![T::ZERO; rows * lstm_width];
            par_gemm_acc(
                self.product_threads,
                (rows, lstm_width, head.out_features),
                (&dy, Op::N),
                (&head.weight, Op::N),
                &mut d_lstm,
            );
            head_grad = Some(CpuHead {
                weight,
                bias,
                out_features: head.out_features,
            });
            dy = d_lstm.into();
        }

        // the output's dropout, applied again: its gradient (the map is linear)
        if let Some(drop) = &trace.dropout {
            drop.apply(dy.to_mut(), cfg.num_layers, cfg.num_layers);
        }
        let states = d * cfg.num_layers;
        let mut dh0 = vec![T::ZERO; states * batch * h_out];
        let mut dc0 = vec![T::ZERO; states * batch * hidden];
        let mut layers: Vec<CpuLayer<T>> = self.layers.iter().map(zeros_like).collect();
        for layer in (0..cfg.num_layers).rev() {
            let in_size = cfg.layer_input_size(layer);
            let wanted = layer > 0 || want_dx;
            let mut d_input = vec![T::ZERO; if wanted { rows * in_size } else { 0 }];
            for dir in 0..d {
                let s = layer * d + dir;
                let (dh, dc) = run(BackwardPass {
                    layer,
                    dir,
                    dims: batched.dims,
                    trace,
                    dy: &dy,
                    dh_last: dh_top
                        .as_ref()
                        .filter(|_| layer == cfg.num_layers - 1)
                        .map(|top| &top[dir * batch * h_out..(dir + 1) * batch * h_out]),
                    grad: &mut layers[s],
                    d_input: wanted.then_some(&mut d_input[..]),
                })?;
                dh0[s * batch * h_out..(s + 1) * batch * h_out].copy_from_slice(&dh);
                dc0[s * batch * hidden..(s + 1) * batch * hidden].copy_from_slice(&dc);
            }
            // this layer's input dropout, applied again: the gradient below it
            if let (Some(drop), true) = (&trace.dropout, wanted) {
                drop.apply(&mut d_input, layer, cfg.num_layers);
            }
            dy = d_input.into();
        }

        let dx = if !want_dx {
            Tensor::new([0], Vec::new())?
        } else if cfg.batch_first {
            Tensor::new(
                x_shape.to_vec(),
                swap_leading_axes(&dy, seq_len, batch, cfg.input_size),
            )?
        } else {
            Tensor::new(x_shape.to_vec(), dy.into_owned())?
        };
        Ok(Gradients {
            layers,
            head: head_grad,
            dx,
            dh0: Tensor::new(batched.state_shape(states, h_out), dh0)?,
            dc0: Tensor::new(batched.state_shape(states, hidden), dc0)?,
        })
    }

    /// BPTT through one layer and direction (see [`BackwardPass`]).
    fn backward_direction(&self, pass: BackwardPass<'_, T>) -> (Vec<T>, Vec<T>) {
        let BackwardPass {
            layer,
            dir,
            dims: Dims { seq_len, batch },
            trace,
            dy,
            dh_last,
            grad,
            d_input,
        } = pass;
        let cfg = &self.config;
        let d = cfg.num_directions();
        let p = &self.layers[layer * d + dir];
        let cache = &trace.dirs[layer * d + dir];
        let (hidden, h_out) = (cfg.hidden_size, cfg.output_size());
        let (gw, in_size, out_width) = (4 * hidden, cfg.layer_input_size(layer), d * h_out);
        let rows = seq_len * batch;

        // dL/dh after the current step (carried): from a per-sequence loss at the start
        let mut dh = dh_last.map_or_else(|| vec![T::ZERO; batch * h_out], <[T]>::to_vec);
        let mut dc = vec![T::ZERO; batch * hidden]; // dL/dc after the current step (carried)
        let mut dz_all = vec![T::ZERO; rows * gw]; // dL/d(gate pre-activations), time-major
        let mut dh_full = vec![T::ZERO; batch * hidden];
        for step in (0..seq_len).rev() {
            let t = if dir == 0 { step } else { seq_len - 1 - step };
            let valid = |b: usize| t < trace.lengths[b];
            // dL/dh_t: the carried part plus this step's output gradient (valid rows only).
            let mut g = dh.clone();
            for b in (0..batch).filter(|&b| valid(b)) {
                let at = (t * batch + b) * out_width + dir * h_out;
                for k in 0..h_out {
                    g[b * h_out + k] += dy[at + k];
                }
            }
            for b in (0..batch).filter(|&b| !valid(b)) {
                g[b * h_out..(b + 1) * h_out].fill(T::ZERO); // no projection happened here
            }
            let h_full_t = &cache.h_full[t * batch * hidden..(t + 1) * batch * hidden];
            match (&p.w_hr, &mut grad.w_hr) {
                (Some(w_hr), Some(dw_hr)) => {
                    // h_t = h_full · W_hrᵀ: dW_hr += gᵀ · h_full, dh_full = g · W_hr
                    gemm(
                        h_out,
                        hidden,
                        batch,
                        &g,
                        Op::T,
                        h_full_t,
                        Op::N,
                        T::ONE,
                        dw_hr,
                    );
                    gemm(
                        batch,
                        hidden,
                        h_out,
                        &g,
                        Op::N,
                        w_hr,
                        Op::N,
                        T::ZERO,
                        &mut dh_full,
                    );
                }
                _ => dh_full.copy_from_slice(&g),
            }
            let dz = &mut dz_all[t * batch * gw..(t + 1) * batch * gw];
            for b in (0..batch).filter(|&b| valid(b)) {
                for j in 0..hidden {
                    let at = (t * batch + b) * gw + j;
                    let [i, f, gg, o] = [0, 1, 2, 3].map(|gate| cache.gates[at + gate * hidden]);
                    let c_prev = cache.c_before[(t * batch + b) * hidden + j];
                    let c_t = f * c_prev + i * gg;
                    let tc = c_t.tanh();
                    let dhf = dh_full[b * hidden + j];
                    let d_o = dhf * tc;
                    let dct = dc[b * hidden + j] + dhf * o * (T::ONE - tc * tc);
                    let (d_i, d_f, d_g) = (dct * gg, dct * c_prev, dct * i);
                    dc[b * hidden + j] = dct * f;
                    let row = b * gw + j;
                    dz[row] = d_i * i * (T::ONE - i);
                    dz[row + hidden] = d_f * f * (T::ONE - f);
                    dz[row + 2 * hidden] = d_g * (T::ONE - gg * gg);
                    dz[row + 3 * hidden] = d_o * o * (T::ONE - o);
                }
            }
            // dW_hh += dzᵀ · h_{t-1}; db += Σ_b dz; dh_{t-1} = dz · W_hh (valid rows; others carry).
            let h_before = &cache.h_before[t * batch * h_out..(t + 1) * batch * h_out];
            gemm(
                gw,
                h_out,
                batch,
                dz,
                Op::T,
                h_before,
                Op::N,
                T::ONE,
                &mut grad.w_hh,
            );
            for row in dz.chunks(gw) {
                for (k, &v) in row.iter().enumerate() {
                    grad.b_ih[k] += v;
                    grad.b_hh[k] += v;
                }
            }
            let carried = dh.clone();
            gemm(
                batch,
                h_out,
                gw,
                dz,
                Op::N,
                &p.w_hh,
                Op::N,
                T::ZERO,
                &mut dh,
            );
            for b in (0..batch).filter(|&b| !valid(b)) {
                dh[b * h_out..(b + 1) * h_out]
                    .copy_from_slice(&carried[b * h_out..(b + 1) * h_out]);
            }
        }
        // dW_ih = Σ_t dz_tᵀ · x_t; d_input += dz · W_ih (both over all timesteps at once).
        let x = &trace.inputs[layer];
        gemm(
            gw,
            in_size,
            rows,
            &dz_all,
            Op::T,
            x,
            Op::N,
            T::ONE,
            &mut grad.w_ih,
        );
        if let Some(d_input) = d_input {
            gemm(
                rows,
                in_size,
                gw,
                &dz_all,
                Op::N,
                &p.w_ih,
                Op::N,
                T::ONE,
                d_input,
            );
        }
        (dh, dc)
    }
}

/// What computes one [`BackwardPass`]: it returns the gradients of (h0, c0).
/// The loss of a pass and its gradient: [`loss_and_grad`]'s arguments and result (the fast
/// path computes cross-entropy with its own kernels).
pub(crate) type LossRun<'r, T> =
    dyn FnMut(Loss, (&[T], usize), &Target, &[f32], &mut Vec<T>) -> Scored<T> + 'r;

pub(crate) type BackwardRun<'r, T> =
    dyn FnMut(BackwardPass<'_, T>) -> Result<(Vec<T>, Vec<T>)> + 'r;

/// BPTT through one layer and direction. `dy` is the gradient of this layer's output
/// (time-major `[T, B, D*H_out]`); the pass adds this direction's input gradient to
/// `d_input` (when wanted) and its parameter gradients to `grad`, and returns the gradients
/// of (h0, c0).
pub(crate) struct BackwardPass<'a, T> {
    pub layer: usize,
    pub dir: usize,
    pub dims: Dims,
    pub trace: &'a Trace<T>,
    pub dy: &'a [T],
    /// The gradient of this direction's final hidden state `[B, H_out]` (from a per-sequence
    /// loss, top layer only): where the carried gradient starts.
    pub dh_last: Option<&'a [T]>,
    pub grad: &'a mut CpuLayer<T>,
    pub d_input: Option<&'a mut [T]>,
}

/// What a per-sequence loss gives the backward pass: the gradient of the top layer's final
/// hidden state `[D, B, H_out]`, and the head's gradient.
pub(crate) struct SequenceGrad<T> {
    dh_top: Vec<T>,
    head: Option<CpuHead<T>>,
}

fn zeros_like<T: Real>(l: &CpuLayer<T>) -> CpuLayer<T> {
    let z = |v: &Vec<T>| vec![T::ZERO; v.len()];
    CpuLayer {
        w_ih: z(&l.w_ih),
        w_hh: z(&l.w_hh),
        b_ih: z(&l.b_ih),
        b_hh: z(&l.b_hh),
        w_hr: l.w_hr.as_ref().map(z),
        w_p: l.w_p.as_ref().map(z),
    }
}

impl<T: Real> Gradients<T> {
    /// The parameter gradients as f32 tensors in PyTorch layout (an [`crate::LstmWeights`]
    /// whose values are gradients), for comparing with the GPU path.
    pub fn to_weights(&self, like: &crate::LstmWeights) -> Result<crate::LstmWeights> {
        let mut out = like.clone();
        let cfg = like.config().clone();
        for layer in 0..cfg.num_layers {
            for dir in 0..cfg.num_directions() {
                let g = &self.layers[layer * cfg.num_directions() + dir];
                let w = out.layer_mut(layer, dir);
                let set = |t: &mut Tensor, v: &[T]| -> Result<()> {
                    *t = Tensor::new(t.shape().to_vec(), v.iter().map(|x| x.to_f32()).collect())?;
                    Ok(())
                };
                set(&mut w.w_ih, &g.w_ih)?;
                set(&mut w.w_hh, &g.w_hh)?;
                if let Some(b) = w.b_ih.as_mut() {
                    set(b, &g.b_ih)?;
                }
                if let Some(b) = w.b_hh.as_mut() {
                    set(b, &g.b_hh)?;
                }
                if let (Some(t), Some(v)) = (w.w_hr.as_mut(), &g.w_hr) {
                    set(t, v)?;
                }
            }
        }
        match (out.head_mut(), &self.head) {
            (Some(h), Some(g)) => {
                h.weight = Tensor::new(
                    h.weight.shape().to_vec(),
                    g.weight.iter().map(|x| x.to_f32()).collect(),
                )?;
                if let Some(b) = h.bias.as_mut() {
                    *b = Tensor::new(
                        b.shape().to_vec(),
                        g.bias.iter().map(|x| x.to_f32()).collect(),
                    )?;
                }
            }
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "gradient and model disagree on the head".into(),
                ))
            }
        }
        Ok(out)
    }
}
