//! The CPU forward pass, written to read as the specification.

use super::products::par_gemm_acc;
use super::real::{gemm, sigmoid, Op, Real};
use crate::config::LstmConfig;
use crate::error::Result;
use crate::host::try_filled;
use crate::host::HostBytes;
use crate::shape::{Batched, Dims, Inputs, LstmOutput};
use crate::tensor::{swap_leading_axes, Tensor};
use crate::weights::LstmWeights;

/// One layer and direction's parameters converted to `T`.
#[derive(Clone, Debug)]
pub struct CpuLayer<T> {
    /// `[4H, in]`
    pub w_ih: Vec<T>,
    /// `[4H, H_out]`
    pub w_hh: Vec<T>,
    /// `[4H]` (zeros when the model has no bias)
    pub b_ih: Vec<T>,
    /// `[4H]` (zeros when the model has no bias)
    pub b_hh: Vec<T>,
    /// `[P, H]` when projecting
    pub w_hr: Option<Vec<T>>,
    /// `[3H]` peepholes (i, f, o) with `cell.peephole`
    pub w_p: Option<Vec<T>>,
}

/// What one layer and direction's forward pass leaves for the backward pass, by time `t`.
#[derive(Clone, Debug)]
pub(crate) struct DirCache<T> {
    /// `[T, B, 4H]`: i, f, g, o after their nonlinearities
    pub gates: Vec<T>,
    /// `[T, B, H]`: c before the step at `t`
    pub c_before: Vec<T>,
    /// `[T, B, H_out]`: h before the step at `t`
    pub h_before: Vec<T>,
    /// `[T, B, H]`: o ⊙ tanh(c_t) (the input of the projection)
    pub h_full: Vec<T>,
}

impl<T: Real> DirCache<T> {
    pub(crate) fn new(cfg: &LstmConfig, dims: Dims) -> Result<Self> {
        let [gates, c_before, h_before, h_full] = Self::lens_for(cfg, dims);
        let zeros =
            |what: &str, len| try_filled(&format!("trace {what} [T*B*width]"), len, T::ZERO);
        Ok(Self {
            gates: zeros("gates", gates)?,
            c_before: zeros("c_before", c_before)?,
            h_before: zeros("h_before", h_before)?,
            h_full: zeros("h_full", h_full)?,
        })
    }

    /// The lengths of (gates, c_before, h_before, h_full) for `cfg` at `dims`.
    fn lens_for(cfg: &LstmConfig, Dims { seq_len, batch }: Dims) -> [usize; 4] {
        let rows = seq_len * batch;
        let (hidden, h_out) = (cfg.hidden_size, cfg.output_size());
        [
            rows * 4 * hidden,
            rows * hidden,
            rows * h_out,
            rows * hidden,
        ]
    }

    fn buffers_mut(&mut self) -> [&mut Vec<T>; 4] {
        [
            &mut self.gates,
            &mut self.c_before,
            &mut self.h_before,
            &mut self.h_full,
        ]
    }

    fn lens(&self) -> [usize; 4] {
        [&self.gates, &self.c_before, &self.h_before, &self.h_full].map(|b| b.len())
    }
}

/// One layer in one direction over all timesteps. `input` is time-major `[T, B, in]`;
/// `h`/`c` hold the initial state and end as the final state; this direction's slice of
/// `output` (`[T, B, D*H_out]`) is written. Row `b` only advances while `t < lengths[b]`;
/// past that its state holds and its output is zero. `cache` records what backward needs.
pub(crate) struct DirectionPass<'a, T> {
    pub layer: usize,
    pub direction: usize,
    pub dims: Dims,
    pub lengths: &'a [usize],
    pub input: &'a [T],
    /// `[B, H_out]`
    pub h: &'a mut [T],
    /// `[B, H]`
    pub c: &'a mut [T],
    pub output: &'a mut [T],
    pub cache: Option<&'a mut DirCache<T>>,
}

/// One layer's directions over all timesteps, to be run in turn or side by side: each
/// direction writes its own columns of `output` (`[T, B, D*H_out]`) and its own state.
pub(crate) struct LayerPass<'a, T> {
    pub layer: usize,
    pub dims: Dims,
    pub lengths: &'a [usize],
    pub input: &'a [T],
    pub output: &'a mut [T],
    /// direction `d`'s state and record, in order of direction
    pub directions: Vec<DirectionState<'a, T>>,
}

/// One direction's part of a [`LayerPass`]: as in [`DirectionPass`].
pub(crate) struct DirectionState<'a, T> {
    /// `[B, H_out]`
    pub h: &'a mut [T],
    /// `[B, H]`
    pub c: &'a mut [T],
    pub cache: Option<&'a mut DirCache<T>>,
}

impl<'a, T> LayerPass<'a, T> {
    /// Runs the directions one after the other through `run`.
    pub fn each(self, run: &mut dyn FnMut(DirectionPass<'_, T>) -> Result<()>) -> Result<()> {
        let LayerPass {
            layer,
            dims,
            lengths,
            input,
            output,
            directions,
        } = self;
        for (direction, state) in directions.into_iter().enumerate() {
            run(DirectionPass {
                layer,
                direction,
                dims,
                lengths,
                input,
                h: state.h,
                c: state.c,
                output: &mut *output,
                cache: state.cache,
            })?;
        }
        Ok(())
    }
}

/// Everything a forward pass records for backward.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trace<T> {
    /// Each layer's input, time-major `[T, B, in]`.
    pub inputs: Vec<Vec<T>>,
    /// `dirs[layer * D + direction]`
    pub dirs: Vec<DirCache<T>>,
    /// The last layer's output, time-major `[T, B, D*H_out]` (the head's input).
    pub lstm_output: Vec<T>,
    pub lengths: Vec<usize>,
    pub dims: Option<Dims>,
    /// The caches of an earlier pass, reused by the next one when their sizes fit.
    pub spare: Vec<DirCache<T>>,
    /// The loss gradient's buffer (the output's size), kept for the next pass.
    pub loss_grad: Vec<T>,
    /// Training with dropout: what this pass drops (applied to each layer's input and the
    /// top layer's output, recorded dropped).
    pub dropout: Option<crate::train::dropout::DropoutStep>,
}

impl<T: Real> Trace<T> {
    /// Empties the trace for a new pass, keeping its per-direction buffers for reuse (their
    /// pages stay mapped, which saves a page fault per 4 KiB on every pass).
    pub(crate) fn recycle(&mut self) {
        self.spare.append(&mut self.dirs);
        self.inputs.clear();
        self.lstm_output.clear();
        self.dims = None;
    }

    /// A cache for one direction at `dims`: a spare one when it fits, zeroed where the pass
    /// may not write it (rows past their length, when some sequence is shorter than `dims`).
    fn cache(&mut self, cfg: &LstmConfig, dims: Dims, ragged: bool) -> Result<DirCache<T>> {
        match self.spare.pop() {
            Some(mut spare) if spare.lens() == DirCache::<T>::lens_for(cfg, dims) => {
                if ragged {
                    for buffer in spare.buffers_mut() {
                        buffer.fill(T::ZERO);
                    }
                }
                Ok(spare)
            }
            _ => DirCache::new(cfg, dims),
        }
    }
}

/// The Linear head converted to `T`.
#[derive(Clone, Debug)]
pub struct CpuHead<T> {
    /// `[O, D*H_out]`
    pub weight: Vec<T>,
    /// `[O]` (zeros when the head has no bias)
    pub bias: Vec<T>,
    /// The head's width `O`.
    pub out_features: usize,
}

/// An LSTM (and its optional head) on the CPU, computing in `T` (f32 for speed, f64 as the
/// reference).
#[derive(Clone, Debug)]
pub struct CpuLstm<T> {
    /// The sizes and options the weights were made for.
    pub config: LstmConfig,
    /// `layers[layer * D + direction]`
    pub layers: Vec<CpuLayer<T>>,
    /// The Linear head applied to every output row, if any.
    pub head: Option<CpuHead<T>>,
    /// Threads the head's products are split over (1 here; the fast path sets its own).
    pub(crate) product_threads: usize,
}

impl<T: Real> CpuLstm<T> {
    /// The model of `weights`, converted to `T` (absent biases become zeros).
    pub fn new(weights: &LstmWeights) -> Self {
        let config = weights.config().clone();
        let convert = |t: &crate::Tensor| t.data().iter().map(|&x| T::from_f32(x)).collect();
        let zeros = vec![T::ZERO; 4 * config.hidden_size];
        let mut layers = Vec::new();
        for layer in 0..config.num_layers {
            for direction in 0..config.num_directions() {
                let w = weights.layer(layer, direction);
                layers.push(CpuLayer {
                    w_ih: convert(&w.w_ih),
                    w_hh: convert(&w.w_hh),
                    b_ih: w.b_ih.as_ref().map_or(zeros.clone(), convert),
                    b_hh: w.b_hh.as_ref().map_or(zeros.clone(), convert),
                    w_hr: w.w_hr.as_ref().map(convert),
                    w_p: w.w_p.as_ref().map(convert),
                });
            }
        }
        let head = weights.head().map(|h| CpuHead {
            weight: convert(&h.weight),
            bias: h
                .bias
                .as_ref()
                .map_or(vec![T::ZERO; h.out_features()], convert),
            out_features: h.out_features(),
        });
        Self {
            config,
            layers,
            head,
            product_threads: 1,
        }
    }

    /// Runs the model on `x` with optional `h0`/`c0`; see [`CpuLstm::forward_with`].
    pub fn forward(
        &self,
        x: &Tensor<T>,
        h0: Option<&Tensor<T>>,
        c0: Option<&Tensor<T>>,
    ) -> Result<LstmOutput<T>> {
        self.forward_with(&Inputs::new(x).state(h0, c0))
    }

    /// Runs the model; shapes as in [`Inputs`]. Returns what `nn.LSTM` returns, with the
    /// output passed through the head when there is one.
    pub fn forward_with(&self, inputs: &Inputs<'_, T>) -> Result<LstmOutput<T>> {
        let batched = Batched::new(&self.config, inputs)?;
        let out = self.forward_batched(&batched)?;
        batched.finish(out)
    }

    /// Forward pass that also records what the backward pass needs (see [`Trace`]).
    pub(crate) fn forward_traced(
        &self,
        inputs: &Batched<'_, T>,
    ) -> Result<(LstmOutput<T>, Trace<T>)> {
        let mut trace = Trace::default();
        let out = self.forward_impl(inputs, Some(&mut trace))?;
        Ok((out, trace))
    }

    fn forward_batched(&self, inputs: &Batched<'_, T>) -> Result<LstmOutput<T>> {
        self.forward_impl(inputs, None)
    }

    fn forward_impl(
        &self,
        inputs: &Batched<'_, T>,
        trace: Option<&mut Trace<T>>,
    ) -> Result<LstmOutput<T>> {
        self.forward_each_direction(inputs, trace, &mut |layer| {
            layer.each(&mut |pass| {
                self.run_direction(pass);
                Ok(())
            })
        })
    }

    /// [`Error::HostMemory`](crate::Error::HostMemory) naming the pass when the host cannot
    /// hold [`CpuLstm::host_bytes`]: the one check before a pass allocates its buffers.
    pub(crate) fn check_host_bytes(&self, dims: Dims, traced: bool, backward: bool) -> Result<()> {
        self.host_bytes(dims, traced, backward).check(|| {
            let cfg = &self.config;
            format!(
                "CPU {} of input [T, B, I] = [{}, {}, {}] (hidden_size {}, {} layers x {} \
                 directions)",
                if backward {
                    "forward and backward"
                } else {
                    "forward"
                },
                dims.seq_len,
                dims.batch,
                cfg.input_size,
                cfg.hidden_size,
                cfg.num_layers,
                cfg.num_directions()
            )
        })
    }

    /// The host bytes a pass at `dims` holds at once, roughly (its `[T, B, ...]` buffers:
    /// a bound to check before allocating them, not an account): the forward pass, with
    /// `traced` the record for backward, with `backward` the backward pass's buffers too.
    pub(crate) fn host_bytes(&self, dims: Dims, traced: bool, backward: bool) -> HostBytes {
        let cfg = &self.config;
        let Dims { seq_len, batch } = dims;
        let (d, h_out, hidden) = (cfg.num_directions(), cfg.output_size(), cfg.hidden_size);
        // widths saturate: a saturated width makes the total overflow, which is the error
        let (input, width) = (cfg.input_size, d.saturating_mul(h_out));
        let gates = hidden.saturating_mul(4);
        let out = self.head.as_ref().map_or(width, |h| h.out_features);
        let directions = cfg.num_layers.saturating_mul(d);
        let elem = std::mem::size_of::<T>();
        let mut bytes = HostBytes::new();
        let rows = |bytes: &mut HostBytes, width: usize, count: usize| {
            bytes.add(&[seq_len, batch, width], elem, count);
        };
        // the input's copy, a layer's input and output, the input projection (4H padded to
        // whole SIMD vectors on the fast path), the head's output and its batch-first copy
        rows(&mut bytes, input, 1);
        rows(&mut bytes, width, 2);
        rows(&mut bytes, hidden.saturating_add(15).saturating_mul(4), 1);
        rows(&mut bytes, out, 2);
        if traced {
            // each layer's input, each direction's cache, the last layer's output
            rows(&mut bytes, input, 1);
            rows(&mut bytes, width, cfg.num_layers);
            let cache = gates
                .saturating_add(hidden.saturating_mul(2))
                .saturating_add(h_out);
            rows(&mut bytes, cache, directions);
        }
        if backward {
            // the loss gradient and its copy, the head's input gradient, a layer's output
            // and input gradients, the gate gradients, dL/dh_t with a projection, dx
            rows(&mut bytes, out, 2);
            rows(&mut bytes, width, 3);
            rows(&mut bytes, input.max(width), 1);
            rows(&mut bytes, gates.saturating_add(h_out), 1);
            rows(&mut bytes, input, 1);
        }
        bytes
    }

    /// The forward pass around its recurrence: layout (`batch_first`), initial and final
    /// states, layers in turn, the head; `run` computes one layer's directions.
    pub(crate) fn forward_each_direction(
        &self,
        inputs: &Batched<'_, T>,
        mut trace: Option<&mut Trace<T>>,
        run: &mut dyn FnMut(LayerPass<'_, T>) -> Result<()>,
    ) -> Result<LstmOutput<T>> {
        let cfg = &self.config;
        let (x, h0, c0) = (&*inputs.x, inputs.h0.as_deref(), inputs.c0.as_deref());
        let dims = inputs.dims;
        // every [T, B, ...] buffer below fits, checked once before the first is allocated
        self.check_host_bytes(dims, trace.is_some(), false)?;
        let Dims { seq_len, batch } = dims;
        let (d, h_out, hidden) = (cfg.num_directions(), cfg.output_size(), cfg.hidden_size);
        let states = d * cfg.num_layers;

        // layer 0 reads the caller's x in place (time-major); later layers the one before's
        let mut input: std::borrow::Cow<'_, [T]> = if cfg.batch_first {
            swap_leading_axes(x.data(), batch, seq_len, cfg.input_size).into()
        } else {
            x.data().into()
        };
        // each direction's state starts as h0/c0 and ends as h_n/c_n, in place
        let mut h_n = h0.map_or(vec![T::ZERO; states * batch * h_out], |t| t.data().to_vec());
        let mut c_n = c0.map_or(vec![T::ZERO; states * batch * hidden], |t| {
            t.data().to_vec()
        });
        let (mut h_rest, mut c_rest) = (&mut h_n[..], &mut c_n[..]);

        let dropout = trace.as_deref().and_then(|t| t.dropout);
        let ragged = inputs.lengths.iter().any(|&l| l < seq_len);
        for layer in 0..cfg.num_layers {
            let mut output = vec![T::NAN; seq_len * batch * d * h_out];
            if let Some(drop) = &dropout {
                drop.apply(input.to_mut(), layer, cfg.num_layers);
            }
            if let Some(trace) = trace.as_deref_mut() {
                trace.inputs.push(input.to_vec());
            }
            let mut caches = match trace.as_deref_mut() {
                Some(t) => (0..d)
                    .map(|_| t.cache(cfg, dims, ragged).map(Some))
                    .collect::<Result<Vec<_>>>()?,
                None => (0..d).map(|_| None).collect(),
            };
            let mut directions = Vec::with_capacity(d);
            for cache in caches.iter_mut() {
                let (h, h_tail) = std::mem::take(&mut h_rest).split_at_mut(batch * h_out);
                let (c, c_tail) = std::mem::take(&mut c_rest).split_at_mut(batch * hidden);
                (h_rest, c_rest) = (h_tail, c_tail);
                directions.push(DirectionState {
                    h,
                    c,
                    cache: cache.as_mut(),
                });
            }
            run(LayerPass {
                layer,
                dims,
                lengths: &inputs.lengths,
                input: &input,
                output: &mut output,
                directions,
            })?;
            if let Some(trace) = trace.as_deref_mut() {
                trace.dirs.extend(caches.into_iter().flatten());
            }
            input = output.into();
        }
        let mut input = input.into_owned();
        if let Some(drop) = &dropout {
            drop.apply(&mut input, cfg.num_layers, cfg.num_layers);
        }

        if let Some(trace) = trace {
            trace.lstm_output = input.clone();
            trace.lengths = inputs.lengths.clone();
            trace.dims = Some(dims);
        }
        let (input, width) = match &self.head {
            Some(head) => (
                self.apply_head(head, &input, seq_len * batch),
                head.out_features,
            ),
            None => (input, d * h_out),
        };
        let output = if cfg.batch_first {
            Tensor::new(
                [batch, seq_len, width],
                swap_leading_axes(&input, seq_len, batch, width),
            )?
        } else {
            Tensor::new([seq_len, batch, width], input)?
        };
        Ok(LstmOutput {
            output,
            h_n: Tensor::new([states, batch, h_out], h_n)?,
            c_n: Tensor::new([states, batch, hidden], c_n)?,
        })
    }

    /// `head(rows) = rows · weightᵀ + bias` for `rows` `[n, D*H_out]`.
    pub(crate) fn apply_head(&self, head: &CpuHead<T>, rows: &[T], n: usize) -> Vec<T> {
        let mut out: Vec<T> = (0..n).flat_map(|_| head.bias.iter().copied()).collect();
        let width = rows.len() / n.max(1);
        par_gemm_acc(
            self.product_threads,
            (n, head.out_features, width),
            (rows, Op::N),
            (&head.weight, Op::T),
            &mut out,
        );
        out
    }

    /// One layer in one direction over all timesteps (see [`DirectionPass`]).
    pub(crate) fn run_direction(&self, pass: DirectionPass<'_, T>) {
        let DirectionPass {
            layer,
            direction,
            dims: Dims { seq_len, batch },
            lengths,
            input,
            h,
            c,
            output,
            mut cache,
        } = pass;
        let cfg = &self.config;
        let p = &self.layers[layer * cfg.num_directions() + direction];
        let (hidden, h_out) = (cfg.hidden_size, cfg.output_size());
        let (gates_width, in_size) = (4 * hidden, cfg.layer_input_size(layer));
        let out_width = cfg.num_directions() * h_out;

        // Input projection for every timestep at once: xw[T*B, 4H] = x · W_ihᵀ.
        let rows = seq_len * batch;
        let mut xw = vec![T::ZERO; rows * gates_width];
        gemm(
            rows,
            gates_width,
            in_size,
            input,
            Op::N,
            &p.w_ih,
            Op::T,
            T::ZERO,
            &mut xw,
        );

        let standard = cfg.cell.is_standard();
        let mut gates = vec![T::ZERO; batch * gates_width];
        let mut h_full = vec![T::ZERO; batch * hidden];
        let mut h_prev = h.to_vec();
        for step in 0..seq_len {
            let t = if direction == 0 {
                step
            } else {
                seq_len - 1 - step
            };
            // gates = x_t · W_ihᵀ + b_ih + h_{t-1} · W_hhᵀ + b_hh
            gates.copy_from_slice(&xw[t * batch * gates_width..(t + 1) * batch * gates_width]);
            gemm(
                batch,
                gates_width,
                h_out,
                h,
                Op::N,
                &p.w_hh,
                Op::T,
                T::ONE,
                &mut gates,
            );
            h_prev.copy_from_slice(h);
            if let Some(cache) = cache.as_deref_mut() {
                cache.h_before[t * batch * h_out..(t + 1) * batch * h_out].copy_from_slice(h);
                cache.c_before[t * batch * hidden..(t + 1) * batch * hidden].copy_from_slice(c);
            }
            for b in 0..batch {
                if t >= lengths[b] {
                    continue; // past this sequence's end: c holds
                }
                let z = &gates[b * gates_width..(b + 1) * gates_width];
                for j in 0..hidden {
                    let pre = |gate: usize| {
                        z[gate * hidden + j] + p.b_ih[gate * hidden + j] + p.b_hh[gate * hidden + j]
                    };
                    let c_old = c[b * hidden + j];
                    let ([i, f, g, o], cell, h_new) = if standard {
                        let i = sigmoid(pre(0));
                        let f = sigmoid(pre(1));
                        let g = pre(2).tanh();
                        let o = sigmoid(pre(3));
                        let cell = f * c_old + i * g;
                        ([i, f, g, o], cell, o * cell.tanh())
                    } else {
                        let peep = |k: usize| p.w_p.as_ref().map_or(T::ZERO, |w| w[k * hidden + j]);
                        let z = [pre(0), pre(1), pre(2), pre(3)];
                        cfg.cell
                            .step(direction, z, c_old, [peep(0), peep(1), peep(2)])
                    };
                    c[b * hidden + j] = cell;
                    h_full[b * hidden + j] = h_new;
                    if let Some(cache) = cache.as_deref_mut() {
                        let at = (t * batch + b) * gates_width + j;
                        for (gate, value) in [i, f, g, o].into_iter().enumerate() {
                            cache.gates[at + gate * hidden] = value;
                        }
                    }
                }
            }
            if let Some(cache) = cache.as_deref_mut() {
                cache.h_full[t * batch * hidden..(t + 1) * batch * hidden].copy_from_slice(&h_full);
            }
            // h_t = (o ⊙ tanh(c_t)) · W_hrᵀ with a projection, else o ⊙ tanh(c_t).
            match &p.w_hr {
                Some(w_hr) => gemm(
                    batch,
                    h_out,
                    hidden,
                    &h_full,
                    Op::N,
                    w_hr,
                    Op::T,
                    T::ZERO,
                    h,
                ),
                None => h.copy_from_slice(&h_full),
            }
            for (b, &len) in lengths.iter().enumerate() {
                let at = (t * batch + b) * out_width + direction * h_out;
                let row = b * h_out..(b + 1) * h_out;
                if t < len {
                    output[at..at + h_out].copy_from_slice(&h[row]);
                } else {
                    h[row.clone()].copy_from_slice(&h_prev[row]); // h holds too
                    output[at..at + h_out].fill(T::ZERO);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn a_pass_the_host_cannot_hold_is_refused_before_its_buffers_exist() {
        let weights = LstmWeights::init(&LstmConfig::new(1, 1024), 0).unwrap();
        let model = CpuLstm::<f32>::new(&weights);
        // x [4000000, 64, 1] is 1 GB, the pass's buffers over 7 TiB
        let dims = Dims {
            seq_len: 4_000_000,
            batch: 64,
        };
        // Linux refuses a reservation past RAM + swap unless it overcommits always
        let overcommit = std::fs::read_to_string("/proc/sys/vm/overcommit_memory");
        let refuses = cfg!(target_os = "linux") && overcommit.is_ok_and(|mode| mode.trim() != "1");
        for (traced, backward) in [(false, false), (true, false), (true, true)] {
            let bytes = model.host_bytes(dims, traced, backward);
            assert!(bytes.total() > 7 << 40, "{}", bytes.total());
            if !refuses {
                continue;
            }
            let err = model.check_host_bytes(dims, traced, backward).unwrap_err();
            assert!(matches!(err, Error::HostMemory { .. }), "{err}");
            assert!(err.to_string().contains("[4000000, 64, 1]"), "{err}");
        }
        // sizes whose product overflows
        let huge = Dims {
            seq_len: usize::MAX / 2,
            batch: 3,
        };
        let err = model.check_host_bytes(huge, false, false).unwrap_err();
        assert!(
            err.to_string().contains(&format!("{} bytes", u64::MAX)),
            "{err}"
        );
        // a small pass is not reserved at all, and fits
        let small = Dims {
            seq_len: 10,
            batch: 4,
        };
        model.check_host_bytes(small, true, true).unwrap();
    }
}
