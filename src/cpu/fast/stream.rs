//! Streaming on the CPU: one timestep per call, the state kept between calls, nothing
//! allocated after the first step (so a step can run on an audio thread). Each step runs
//! the fast path's own kernels on one thread, so the LSTM's outputs and state are bitwise
//! those of a forward over the whole sequence.

use pulp::{Simd, WithSimd};

use super::forward::{DirectionJob, GroupQueues, JobParts, Scratch};
use super::kernel::accumulators;
use super::team::{Barrier, Shared, Worker};
use super::FastCpuLstm;
use crate::error::{Error, Result};
use crate::shape::Dims;

/// A unidirectional model stepped one timestep at a time on the CPU.
///
/// Shapes: [`CpuStream::step`] takes `x_t` `[B, I]` and returns `[B, O]` (the head's width
/// `O`, else `H_out`); the state is `h` `[L, B, H_out]` and `c` `[L, B, H]`, zeros at first.
/// After the first step, a step allocates nothing. A step runs on one thread: a step of the
/// models that stream (tens to hundreds of units) is far below what repays waking another.
///
/// ```
/// use lstm_wgpu::{cpu::{CpuStream, FastCpuLstm}, LstmConfig, LstmWeights};
/// # fn main() -> lstm_wgpu::Result<()> {
/// let weights = LstmWeights::init(&LstmConfig::new(1, 40), 0)?;
/// let mut stream = CpuStream::new(FastCpuLstm::new(&weights), 1)?; // B = 1
/// for sample in [0.1f32, -0.2, 0.3] {
///     let y = stream.step(&[sample])?; // x_t [B, I] -> [B, H]
///     assert_eq!(y.len(), 40);
/// }
/// # Ok(()) }
/// ```
pub struct CpuStream {
    model: FastCpuLstm,
    batch: usize,
    /// per layer: its buffers (h_{t-1} in `h[0]`, c in place)
    scratch: Vec<Scratch>,
    /// per layer: its output `[B, H_out]`
    outputs: Vec<Vec<f32>>,
    /// the head's output `[B, O]`
    head_out: Vec<f32>,
    lengths: Vec<usize>,
    /// the SIMD accumulators' memory
    partial: Vec<f32>,
}

impl CpuStream {
    /// A stream of `batch` rows over `model`, its state zero.
    pub fn new(model: FastCpuLstm, batch: usize) -> Result<Self> {
        let cfg = &model.model.config;
        if cfg.bidirectional {
            return Err(Error::Config(
                "CpuStream needs a unidirectional model: a bidirectional one reads the whole \
                 sequence before its first output"
                    .into(),
            ));
        }
        if batch == 0 {
            return Err(Error::Config("CpuStream: batch must be at least 1".into()));
        }
        let dims = Dims { seq_len: 1, batch };
        let (h_out, hidden) = (cfg.output_size(), cfg.hidden_size);
        let (h0, c0) = (vec![0.0; batch * h_out], vec![0.0; batch * hidden]);
        let scratch = model
            .packed
            .iter()
            .map(|p| Scratch::new(p, dims, (&h0, &c0), &super::reuse::Reuse::default()))
            .collect::<Result<Vec<_>>>()?;
        let width = model.model.head.as_ref().map_or(0, |h| h.out_features);
        Ok(Self {
            outputs: vec![vec![0.0; batch * h_out]; cfg.num_layers],
            head_out: vec![0.0; batch * width],
            lengths: vec![1; batch],
            partial: Vec::new(),
            scratch,
            batch,
            model,
        })
    }

    /// The model it steps.
    pub fn model(&self) -> &FastCpuLstm {
        &self.model
    }

    /// Rows per step `B`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// One timestep: `x_t` `[B, I]` (row-major) in, the output `[B, O]` out (the head's,
    /// else the last layer's h). An `x_t` of the wrong length is an error, and the state
    /// is left as it was.
    pub fn step(&mut self, x_t: &[f32]) -> Result<&[f32]> {
        let (input_size, k_len) = {
            let cfg = &self.model.model.config;
            (cfg.input_size, cfg.output_size())
        };
        if x_t.len() != self.batch * input_size {
            return Err(Error::Input(format!(
                "CpuStream::step: x_t has {} values, want [B, I] = [{}, {}]",
                x_t.len(),
                self.batch,
                input_size
            )));
        }
        let isa = self.model.isa;
        isa.dispatch(Step { stream: self, x_t });
        for scratch in &mut self.scratch {
            scratch.carry_state();
        }
        let last = &self.outputs[self.outputs.len() - 1];
        let Some(head) = &self.model.model.head else {
            return Ok(last);
        };
        // head(h) = bias + h · Wᵀ, each output summed in k order
        for (b, out) in self.head_out.chunks_mut(head.out_features).enumerate() {
            let h = &last[b * k_len..(b + 1) * k_len];
            for (o, value) in out.iter_mut().enumerate() {
                let w = &head.weight[o * k_len..(o + 1) * k_len];
                *value = h
                    .iter()
                    .zip(w)
                    .fold(head.bias[o], |acc, (x, w)| x.mul_add(*w, acc));
            }
        }
        Ok(&self.head_out)
    }

    /// Copies the state into `h` `[L, B, H_out]` and `c` `[L, B, H]` (without allocating).
    pub fn state_into(&self, h: &mut [f32], c: &mut [f32]) -> Result<()> {
        let (h_chunk, c_chunk) = self.layer_state_lens(h.len(), c.len())?;
        let layers = self.scratch.iter().zip(&self.model.packed);
        let states = h.chunks_mut(h_chunk).zip(c.chunks_mut(c_chunk));
        for ((scratch, packed), (h, c)) in layers.zip(states) {
            scratch.store_state(packed, self.batch, h, c);
        }
        Ok(())
    }

    /// Sets the state from `h` `[L, B, H_out]` and `c` `[L, B, H]`.
    pub fn set_state(&mut self, h: &[f32], c: &[f32]) -> Result<()> {
        let (h_chunk, c_chunk) = self.layer_state_lens(h.len(), c.len())?;
        let layers = self.scratch.iter_mut().zip(&self.model.packed);
        for ((scratch, packed), (h, c)) in layers.zip(h.chunks(h_chunk).zip(c.chunks(c_chunk))) {
            scratch.load_state(packed, self.batch, h, c);
        }
        Ok(())
    }

    /// Zeros the state, as at the start.
    pub fn reset(&mut self) {
        for scratch in &mut self.scratch {
            scratch.zero_state();
        }
    }

    /// One layer's h and c lengths, when `h` and `c` values are a whole state.
    fn layer_state_lens(&self, h: usize, c: usize) -> Result<(usize, usize)> {
        let cfg = &self.model.model.config;
        let (h_layer, c_layer) = (self.batch * cfg.output_size(), self.batch * cfg.hidden_size);
        let layers = cfg.num_layers;
        if h != layers * h_layer || c != layers * c_layer {
            return Err(self.state_error(h, c));
        }
        Ok((h_layer, c_layer))
    }

    fn state_error(&self, h: usize, c: usize) -> Error {
        let cfg = &self.model.model.config;
        Error::Input(format!(
            "CpuStream state: h has {h} values and c {c}, want h [L, B, H_out] = [{}, {}, {}] \
             and c [L, B, H] = [{}, {}, {}]",
            cfg.num_layers,
            self.batch,
            cfg.output_size(),
            cfg.num_layers,
            self.batch,
            cfg.hidden_size
        ))
    }
}

/// One step of every layer, on the machine's SIMD.
struct Step<'a> {
    stream: &'a mut CpuStream,
    x_t: &'a [f32],
}

impl WithSimd for Step<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let CpuStream {
            model,
            batch,
            scratch,
            outputs,
            lengths,
            partial,
            ..
        } = self.stream;
        let cfg = &model.model.config;
        let dims = Dims {
            seq_len: 1,
            batch: *batch,
        };
        let barrier = Barrier::new(1);
        let worker = Worker::new(0, 1, &barrier);
        for (layer, (packed, scratch)) in model.packed.iter().zip(scratch.iter_mut()).enumerate() {
            let (before, rest) = outputs.split_at_mut(layer);
            let input = match layer {
                0 => self.x_t,
                _ => &before[layer - 1][..],
            };
            let output = Shared::new(&mut rest[0][..]);
            let parts = JobParts {
                direction: 0,
                dims,
                lengths,
                input,
                output: &output,
                out_width: cfg.output_size(),
                cache: None,
            };
            let job = DirectionJob::new(packed, scratch, parts, 1, &cfg.cell);
            let rows = accumulators::<S>(partial, job.partial_rows());
            job.project_inputs(simd, &worker, rows);
            let queues = GroupQueues::new(packed, 1);
            job.recur(simd, &worker, 0..*batch, &queues, rows);
        }
    }
}
