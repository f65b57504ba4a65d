//! `GpuTrainer`: the training state on the GPU and the calls that submit steps, read losses
//! and weights, and roll back to the last good step.

use std::sync::Mutex;

use super::backward::{self};
use super::copies::record_dropout;
use super::losses;
use super::reduce;
use super::relayout;
use crate::error::{Error, Result};
use crate::gpu::device::{
    drop_turn, guarded, lock, read_bytes_async, staging, storage_init, storage_nan, storage_zeros,
    GpuContext, GpuTimer, TurnEnd, TurnStart,
};
use crate::gpu::forward::{build_forward_with, ForwardBuffers, ForwardOptions, GpuLstm};
use crate::gpu::kernels::{
    check_size, elementwise_groups, to_u32, EmbeddingParams, Kernel, KernelChoice, OptParams,
    Recurrence,
};
use crate::gpu::plan::{Plan, PlanBuilder};
use crate::gpu::wisdom::Source;
use crate::loss::{check_target, row_weights, valid_steps, Level, Target};
use crate::shape::{Batched, Dims, Inputs};
use crate::tensor::{swap_leading_axes, Tensor};
#[cfg(not(target_arch = "wasm32"))]
use crate::train::Trainer;
use crate::train::{OptimizerKind, ParamLayout, StepLoss, TrainOptions};
use crate::weights::LstmWeights;

/// Where in `scalars` cross-entropy sums the rows it classified right.
pub(super) const HITS_SCALAR: u32 = 4;
/// Where in `scalars` the optimizer reads the step's learning rate.
const LR_SCALAR: u64 = 5;

/// Gradients computed on the GPU, read back.
#[derive(Clone, Debug)]
pub struct GpuGradients {
    /// The loss of the batch before any update.
    pub loss: f32,
    /// Parameter gradients in PyTorch layout (an [`LstmWeights`] holding gradients).
    pub grads: LstmWeights,
    /// Same shape as the input.
    pub dx: Tensor,
    /// `[D*L, B, H_out]` (`[D*L, H_out]` unbatched)
    pub dh0: Tensor,
    /// `[D*L, B, H]` (`[D*L, H]` unbatched)
    pub dc0: Tensor,
}

struct TrainWorkspace {
    dims: Dims,
    /// the recurrent kernel the forward pass runs, and where it came from
    variant: Recurrence,
    source: Source,
    /// where the loss reads the model (the target's shape says)
    level: Level,
    fwd: ForwardBuffers,
    values: wgpu::Buffer,
    classes: wgpu::Buffer,
    /// each loss row's weight in the mean (`loss::row_weights`)
    row_weights: wgpu::Buffer,
    dx: wgpu::Buffer,
    dh0: wgpu::Buffer,
    dc0: wgpu::Buffer,
    /// a model with an embedding: its token buffers and lookup
    tokens: Option<TokenBuffers>,
    /// forward, loss, backward
    grad_plan: Plan,
    /// clip, optimizer, re-layout
    update_plan: Plan,
}

/// What a model with an embedding adds to a workspace: the batch's ids (time-major), the
/// positions sorted by id and where each id's run starts (for the gradient's fixed-order
/// sums), and the lookup that writes the LSTM's input before the forward pass.
struct TokenBuffers {
    ids: wgpu::Buffer,
    order: wgpu::Buffer,
    starts: wgpu::Buffer,
    gather: Plan,
}

/// An LSTM (and head) trained on the GPU; see the module docs.
pub struct GpuTrainer {
    /// first field: takes the device's turn while the others drop (`drop_turn.rs`)
    _turn_start: TurnStart,
    pub(super) model: GpuLstm,
    pub(super) like: LstmWeights,
    pub(super) layout: ParamLayout,
    pub(super) params: wgpu::Buffer,
    /// the parameters at the start of step k are kept in backups[k % 3]: with one step in
    /// flight, the start of step k - 1 is still there when step k's loss comes back
    /// (see Trainer::restore_last_good)
    pub(super) backups: [wgpu::Buffer; 3],
    /// the losses of submitted steps, read back one step behind
    pub(super) losses: losses::LossRing,
    /// made on the first timed step
    timer: Option<GpuTimer>,
    pub(super) grads: wgpu::Buffer,
    pub(super) moment1: wgpu::Buffer,
    pub(super) moment2: wgpu::Buffer,
    /// [loss, grad norm², 1 - β1ᵗ, sqrt(1 - β2ᵗ), rows classified right, learning rate]
    pub(super) scalars: wgpu::Buffer,
    /// the first pass of long sums (reduce.rs)
    pub(super) partials: wgpu::Buffer,
    /// the dropout generator's key: [seed low, seed high, step, 0], written every step
    pub(super) rng: wgpu::Buffer,
    pub(super) options: TrainOptions,
    /// the forward pass's recurrent kernel
    kernel: KernelChoice,
    pub(super) step: u64,
    /// the workspaces of the last shapes used (a last, smaller minibatch has its own)
    workspaces: Vec<TrainWorkspace>,
    /// the weights after step .0: the latest read back to the host
    pub(super) host_copy: Mutex<(u64, LstmWeights)>,
    /// with `carry_state`: the last step's final state, on the GPU
    pub(super) carried: Option<CarriedState>,
    /// last field: gives the turn back
    _turn_end: TurnEnd,
}

/// The final `(h_n, c_n)` of the last step, copied there on the GPU after its forward pass
/// and into the next step's `(h0, c0)` before its own (truncated BPTT; no host round trip).
pub(super) struct CarriedState {
    pub(super) h: wgpu::Buffer,
    pub(super) c: wgpu::Buffer,
    /// their element counts (`[D*L, B, H_out]`, `[D*L, B, H]`)
    pub(super) lens: (usize, usize),
    /// false at the start and after `reset_state`: the next step starts from zeros
    pub(super) live: bool,
}

impl GpuTrainer {
    /// Uploads `weights` and sets up the optimizer state on `ctx`'s device.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(ctx: &GpuContext, weights: &LstmWeights, options: TrainOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(ctx, weights, options))
    }

    /// The async form of [`GpuTrainer::new`].
    pub async fn new_async(
        ctx: &GpuContext,
        weights: &LstmWeights,
        options: TrainOptions,
    ) -> Result<Self> {
        options.validate()?;
        crate::train::check_trainable(weights.config())?;
        let model = GpuLstm::new_async(ctx, weights).await?;
        let tied = crate::train::tie(weights, options.tie_weights)?;
        let weights = &tied;
        let layout = ParamLayout::for_training(weights, options.tie_weights);
        let device = ctx.device();
        check_size(&device.limits(), "the flat parameters", layout.total)?;
        guarded(ctx, "trainer allocation", || {
            let (_turn_start, _turn_end) = drop_turn(ctx);
            Ok(Self {
                _turn_start,
                _turn_end,
                params: storage_init(device, "flat parameters", &layout.flatten(weights)),
                backups: [0, 1, 2]
                    .map(|i| storage_zeros(device, &format!("parameter backup {i}"), layout.total)),
                losses: losses::LossRing::new(device),
                timer: None,
                grads: storage_zeros(device, "flat gradients", layout.total),
                moment1: storage_zeros(device, "optimizer moment 1", layout.total),
                moment2: storage_zeros(device, "optimizer moment 2", layout.total),
                scalars: storage_init(
                    device,
                    "scalars",
                    &[0.0f32, 0.0, 1.0, 1.0, 0.0, options.optimizer.lr],
                ),
                partials: storage_nan(device, "partial sums", reduce::MAX_BLOCKS),
                rng: storage_init(device, "dropout key", &[0u32; 4]),
                model,
                like: weights.clone(),
                layout,
                options,
                kernel: KernelChoice::Auto,
                step: 0,
                workspaces: Vec::new(),
                host_copy: Mutex::new((0, weights.clone())),
                carried: None,
            })
        })
        .await
    }

    /// With [`TrainOptions::carry_state`]: the next step starts from zeros again (see
    /// [`Trainer::reset_state`]).
    pub fn reset_state(&mut self) {
        if let Some(state) = &mut self.carried {
            state.live = false;
        }
    }

    /// Forces the forward pass's recurrent kernel (see [`GpuLstm::set_kernel`]).
    pub fn set_kernel(&mut self, kernel: KernelChoice) {
        self.kernel = kernel;
        self.workspaces.clear();
    }

    /// The recurrent kernel of the shape prepared last (an error before the first step).
    pub fn kernel(&self) -> Result<Recurrence> {
        Ok(self.last_workspace()?.variant)
    }

    /// Where the recurrent kernel of the shape prepared last came from.
    pub fn kernel_source(&self) -> Result<Source> {
        Ok(self.last_workspace()?.source)
    }

    fn last_workspace(&self) -> Result<&TrainWorkspace> {
        self.workspaces.last().ok_or_else(|| {
            Error::Config("no shape trained yet: the kernel is chosen per shape".into())
        })
    }

    /// Forward, loss and backward for `inputs` against `target`, read back in full (for
    /// checking gradients; training uses [`Trainer::step`], which reads back only the loss).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn gradients(&mut self, inputs: &Inputs<'_>, target: &Target) -> Result<GpuGradients> {
        pollster::block_on(self.gradients_async(inputs, target))
    }

    /// The async form of [`GpuTrainer::gradients`].
    pub async fn gradients_async(
        &mut self,
        inputs: &Inputs<'_>,
        target: &Target,
    ) -> Result<GpuGradients> {
        let batched = Batched::new(self.model.config(), inputs)?;
        let dims = batched.dims;
        let ctx = self.model.context().clone();
        let (stages, lens, submission) = guarded(&ctx, "gradients", || {
            let (index, _) = self.write_batch(&batched, None, target)?;
            self.record_gradients(index, dims)
        })
        .await?;
        let pairs: Vec<(&wgpu::Buffer, u64)> = stages
            .iter()
            .zip(lens)
            .map(|(b, n)| (b, n as u64 * 4))
            .collect();
        let read = read_bytes_async(&ctx, "gradients", &pairs, Some(submission)).await?;
        let [loss, grads, dx, dh0, dc0]: [Vec<f32>; 5] = read
            .iter()
            .map(|b| bytemuck::pod_collect_to_vec::<u8, f32>(b))
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| Error::Readback("expected five buffers".into()))?;
        let cfg = self.model.config();
        let (d, h_out, h) = (cfg.num_directions(), cfg.output_size(), cfg.hidden_size);
        let states = d * cfg.num_layers;
        let dx = if cfg.batch_first && inputs.x.shape().len() == 3 {
            swap_leading_axes(&dx, dims.seq_len, dims.batch, cfg.input_size)
        } else {
            dx
        };
        Ok(GpuGradients {
            loss: loss[0],
            grads: self.layout.unflatten(&grads, &self.like)?,
            dx: Tensor::new(inputs.x.shape().to_vec(), dx)?,
            dh0: Tensor::new(batched.state_shape(states, h_out), dh0)?,
            dc0: Tensor::new(batched.state_shape(states, h), dc0)?,
        })
    }

    /// Records and submits the gradient pass of workspace `index` with copies of the loss,
    /// gradients, dx, dh0 and dc0 into fresh staging buffers.
    fn record_gradients(
        &self,
        index: usize,
        dims: Dims,
    ) -> Result<(Vec<wgpu::Buffer>, [usize; 5], wgpu::SubmissionIndex)> {
        let ws = &self.workspaces[index];
        let ctx = self.model.context();
        let device = ctx.device();
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("gradients"),
        });
        if let Some(tokens) = &ws.tokens {
            tokens.gather.encode(&mut encoder);
        }
        ws.grad_plan.encode(&mut encoder);
        let cfg = self.model.config();
        let (d, h_out, h) = (cfg.num_directions(), cfg.output_size(), cfg.hidden_size);
        let rows = dims.seq_len * dims.batch;
        let states = d * cfg.num_layers;
        let lens = [
            1,
            self.layout.total,
            rows * cfg.input_size,
            states * dims.batch * h_out,
            states * dims.batch * h,
        ];
        let sources = [&self.scalars, &self.grads, &ws.dx, &ws.dh0, &ws.dc0];
        let stages: Vec<wgpu::Buffer> = lens
            .iter()
            .map(|&n| staging(device, "gradient readback", n))
            .collect();
        for ((src, dst), &n) in sources.iter().zip(&stages).zip(&lens) {
            encoder.copy_buffer_to_buffer(src, 0, dst, 0, (n * 4) as u64);
        }
        Ok((stages, lens, ctx.submit([encoder.finish()])))
    }

    /// Checks and uploads one batch (time-major on the GPU), preparing buffers for its shape.
    /// Returns the index of the workspace in `self.workspaces`.
    fn write_batch(
        &mut self,
        batched: &Batched<'_, f32>,
        ids: Option<&Tensor<i64>>,
        target: &Target,
    ) -> Result<(usize, usize)> {
        let cfg = self.model.config().clone();
        let Dims { seq_len, batch } = batched.dims;
        let width = self.like.output_width();
        let out_shape = if cfg.batch_first {
            vec![batch, seq_len, width]
        } else {
            vec![seq_len, batch, width]
        };
        let unbatched_target;
        let target = match (batched.is_unbatched(), target) {
            // unbatched: the target has no batch axis either
            (true, Target::Values(t)) if t.shape().len() == 2 => {
                unbatched_target = Target::Values(t.clone().reshape(out_shape.clone())?);
                &unbatched_target
            }
            (true, Target::Classes(t)) if t.shape().len() == 1 => {
                unbatched_target = Target::Classes(t.clone().reshape(out_shape[..2].to_vec())?);
                &unbatched_target
            }
            _ => target,
        };
        let batch_axis = (!batched.is_unbatched()).then_some(batch);
        let level = check_target(self.options.loss, &out_shape, batch_axis, target)?;
        if level == Level::PerSequence && self.options.dropout.output > 0.0 {
            return Err(Error::Config(
                "output dropout applies to the per-step output; a per-sequence target reads \
                 the final state (use dropout between layers)"
                    .into(),
            ));
        }
        let weights = match level {
            Level::PerStep => {
                let valid = valid_steps(&batched.lengths, seq_len, cfg.batch_first);
                row_weights(self.options.loss, target, width, &valid)?
            }
            Level::PerSequence => {
                row_weights(self.options.loss, target, width, &vec![true; batch])?
            }
        };
        let index = match self
            .workspaces
            .iter()
            .position(|ws| ws.dims == batched.dims && ws.level == level)
        {
            Some(i) => i,
            None => {
                if self.workspaces.len() == 2 {
                    self.workspaces.remove(0); // free the older shape first
                }
                let ws = self.build_workspace(batched.dims, level)?;
                self.workspaces.push(ws);
                self.workspaces.len() - 1
            }
        };
        let ws = &self.workspaces[index];
        let queue = self.model.context().queue();
        // per-step rows go time-major on the GPU; per-sequence rows are already [B, ...]
        let time_major = |data: &[f32], rest: usize| {
            if cfg.batch_first && level == Level::PerStep {
                swap_leading_axes(data, batch, seq_len, rest)
            } else {
                data.to_vec()
            }
        };
        match (ids, &ws.tokens) {
            (Some(ids), Some(tokens)) => write_ids(queue, tokens, ids, (seq_len, batch), &cfg),
            _ => queue.write_buffer(
                &ws.fwd.x,
                0,
                bytemuck::cast_slice(&if cfg.batch_first {
                    swap_leading_axes(batched.x.data(), batch, seq_len, cfg.input_size)
                } else {
                    batched.x.data().to_vec()
                }),
            ),
        }
        ws.fwd.write_state(queue, batched);
        queue.write_buffer(
            &ws.row_weights,
            0,
            bytemuck::cast_slice(&time_major(&weights, 1)),
        );
        match target {
            Target::Values(t) => queue.write_buffer(
                &ws.values,
                0,
                bytemuck::cast_slice(&time_major(t.data(), width)),
            ),
            Target::Classes(t) => {
                // an ignored row has weight 0; any class in range keeps its reads in bounds
                let classes: Vec<u32> = t.data().iter().map(|&c| c.max(0) as u32).collect();
                let classes = if cfg.batch_first && level == Level::PerStep {
                    swap_leading_axes(&classes, batch, seq_len, 1)
                } else {
                    classes
                };
                queue.write_buffer(&ws.classes, 0, bytemuck::cast_slice(&classes));
            }
        }
        Ok((index, crate::loss::counted(&weights)))
    }

    /// One step, waited for, with its GPU time in milliseconds (timestamp queries; `None`
    /// without TIMESTAMP_QUERY): for benchmarks.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step_timed(&mut self, x: &Tensor, target: &Target) -> Result<(f32, Option<f64>)> {
        pollster::block_on(self.step_timed_async(x, target))
    }

    /// The async form of [`GpuTrainer::step_timed`].
    pub async fn step_timed_async(
        &mut self,
        x: &Tensor,
        target: &Target,
    ) -> Result<(f32, Option<f64>)> {
        if self.timer.is_none() {
            let ctx = self.model.context();
            self.timer = guarded(ctx, "timer allocation", || Ok(GpuTimer::new(ctx))).await?;
        }
        let mut losses = self
            .submit_step((&Inputs::new(x), None), target, true)
            .await?;
        losses.extend(self.flush_async().await?);
        let loss = losses
            .last()
            .map(|s| s.loss)
            .ok_or_else(|| Error::Readback("no loss came back".into()))?;
        let ms = match &self.timer {
            Some(t) => Some(t.read_ms_async(self.model.context()).await?),
            None => None,
        };
        Ok((loss, ms))
    }

    /// Records and submits step k (between timestamps when `timed`); returns the losses that
    /// came back meanwhile (step k - 1's).
    async fn submit_step(
        &mut self,
        inputs: (&Inputs<'_>, Option<&Tensor<i64>>),
        target: &Target,
        timed: bool,
    ) -> Result<Vec<StepLoss>> {
        let ctx = self.model.context().clone();
        let k = self.step + 1;
        match (self.like.embedding().is_some(), inputs.1.is_some()) {
            (true, false) => {
                return Err(Error::Input(
                    "this model has an embedding: it takes token ids (submit_ids), not float \
                     inputs"
                        .into(),
                ))
            }
            (false, true) => {
                return Err(Error::Input(
                    "this model has no embedding: it takes float inputs, not token ids".into(),
                ))
            }
            _ => {}
        }
        if self.options.carry_state {
            crate::train::check_carry(inputs.0)?;
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let (KernelChoice::Auto, Ok(batched)) =
            (self.kernel, Batched::new(self.model.config(), inputs.0))
        {
            let (config, dims) = (self.model.config(), batched.dims);
            let (_, class) = crate::gpu::forward::tune::shape_and_class(config, dims.batch, true);
            crate::gpu::forward::tune::measure_if_new(&ctx, class, || {
                super::tune::tune_training(&ctx, config, dims, crate::gpu::forward::MEASURE_BUDGET)
            })?;
        }
        let (submission, counted) = guarded(&ctx, "training step", || {
            self.record_step(inputs, target, timed)
        })
        .await?;
        self.step = k;
        if let Some(state) = &mut self.carried {
            state.live = self.options.carry_state;
        }
        let counted = (self.options.loss == crate::loss::Loss::CrossEntropy).then_some(counted);
        self.losses.submitted(k, submission, counted);
        self.losses.drain(&ctx, 1).await
    }

    /// Uploads the batch and records and submits step `self.step + 1`; also returns the rows
    /// its loss counts.
    fn record_step(
        &mut self,
        (inputs, ids): (&Inputs<'_>, Option<&Tensor<i64>>),
        target: &Target,
        timed: bool,
    ) -> Result<(wgpu::SubmissionIndex, usize)> {
        let batched = Batched::new(self.model.config(), inputs)?;
        let k = self.step + 1;
        let (bc1, bc2_sqrt) = self.options.optimizer.bias_corrections(k);
        let (index, counted) = self.write_batch(&batched, ids, target)?;
        if self.options.carry_state {
            self.prepare_carry(index)?;
        }
        let ws = &self.workspaces[index];
        let ctx = self.model.context();
        ctx.queue()
            .write_buffer(&self.scalars, 8, bytemuck::cast_slice(&[bc1, bc2_sqrt]));
        let lr = [self.options.optimizer.lr];
        ctx.queue()
            .write_buffer(&self.scalars, LR_SCALAR * 4, bytemuck::cast_slice(&lr));
        let seed = self.options.dropout.seed;
        let key = [seed as u32, (seed >> 32) as u32, k as u32, 0];
        ctx.queue()
            .write_buffer(&self.rng, 0, bytemuck::cast_slice(&key));
        let device = ctx.device();
        let timer = self.timer.as_ref().filter(|_| timed);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("training step"),
        });
        if let Some(t) = timer {
            t.start(&mut encoder);
        }
        let bytes = (self.layout.total * 4) as u64;
        let backup = &self.backups[(k % 3) as usize];
        encoder.copy_buffer_to_buffer(&self.params, 0, backup, 0, bytes);
        let carried = self.carried.as_ref().filter(|_| self.options.carry_state);
        if let Some(state) = carried.filter(|s| s.live) {
            let (h, c) = state.lens;
            encoder.copy_buffer_to_buffer(&state.h, 0, &ws.fwd.h0, 0, (h * 4) as u64);
            encoder.copy_buffer_to_buffer(&state.c, 0, &ws.fwd.c0, 0, (c * 4) as u64);
            ws.fwd.state_overwritten();
        }
        if let Some(tokens) = &ws.tokens {
            tokens.gather.encode(&mut encoder);
        }
        ws.grad_plan.encode(&mut encoder);
        if let Some(state) = carried {
            // detached: only the values go on, no gradient flows back into this step
            let (h, c) = state.lens;
            encoder.copy_buffer_to_buffer(&ws.fwd.h_n, 0, &state.h, 0, (h * 4) as u64);
            encoder.copy_buffer_to_buffer(&ws.fwd.c_n, 0, &state.c, 0, (c * 4) as u64);
        }
        ws.update_plan.encode(&mut encoder);
        self.losses
            .record_copy(&mut encoder, &self.scalars, k, HITS_SCALAR);
        if let Some(t) = timer {
            t.stop(&mut encoder);
        }
        Ok((ctx.submit([encoder.finish()]), counted))
    }

    /// Makes the carried state's buffers for workspace `index` (the first step), or checks
    /// that they fit it. The step about to be recorded makes the state live.
    fn prepare_carry(&mut self, index: usize) -> Result<()> {
        let (_, h, c) = self.workspaces[index].fwd.lens;
        match &mut self.carried {
            Some(state) if state.lens != (h, c) => Err(Error::Input(format!(
                "carrying the state across steps needs the same batch every step: the state \
                 holds {} elements of h, this batch's {h}",
                state.lens.0
            ))),
            Some(_) => Ok(()),
            None => {
                let device = self.model.context().device();
                self.carried = Some(CarriedState {
                    h: storage_zeros(device, "carried h", h),
                    c: storage_zeros(device, "carried c", c),
                    lens: (h, c),
                    live: false,
                });
                Ok(())
            }
        }
    }

    fn build_workspace(&self, dims: Dims, level: Level) -> Result<TrainWorkspace> {
        let ctx = self.model.context();
        let device = ctx.device();
        let mut plan = PlanBuilder::new(ctx);
        let forward = build_forward_with(
            &mut plan,
            device,
            &self.model.weights,
            dims,
            ForwardOptions {
                cache: true,
                kernel: self.kernel,
                max_chunk_steps: None,
            },
            &mut |plan, site, buffers| {
                let cfg = self.model.config();
                let data = match site {
                    0 => &buffers.x,
                    s => &buffers.y[s - 1],
                };
                let width = match site {
                    0 => cfg.input_size,
                    _ => cfg.num_directions() * cfg.output_size(),
                };
                record_dropout(self, plan, site, (data, dims.seq_len * dims.batch * width))
            },
        )?;
        let (variant, source, fwd) = (forward.variant, forward.source, forward.buffers);
        let back = backward::Backward::new(self, dims, level, &fwd)?.record(&mut plan)?;
        let tokens = match (self.like.embedding(), self.layout.embedding) {
            (Some(embedding), Some(at)) => Some(self.record_tokens(
                &mut plan,
                dims,
                (embedding.vocab(), at),
                &fwd.x,
                &back.dx,
            )?),
            _ => None,
        };
        let grad_plan = plan.finish()?;
        let mut update = PlanBuilder::new(ctx);
        self.record_update(&mut update)?;
        let update_plan = update.finish()?;
        Ok(TrainWorkspace {
            tokens,
            dims,
            variant,
            source,
            level,
            fwd,
            values: back.values,
            classes: back.classes,
            row_weights: back.row_weights,
            dx: back.dx,
            dh0: back.dh0,
            dc0: back.dc0,
            grad_plan,
            update_plan,
        })
    }

    /// Clip, optimizer, and the re-layout of the flat parameters for the forward kernels.
    /// The token buffers of a workspace, the lookup of the table (at `at` in the flat
    /// parameters) into `x`, and, recorded into `plan` after the backward pass, the table's
    /// gradient from `dx`.
    fn record_tokens(
        &self,
        plan: &mut PlanBuilder<'_>,
        dims: Dims,
        (vocab, at): (usize, usize),
        x: &wgpu::Buffer,
        dx: &wgpu::Buffer,
    ) -> Result<TokenBuffers> {
        let ctx = self.model.context();
        let device = ctx.device();
        let dim = self.model.config().input_size;
        let rows = dims.seq_len * dims.batch;
        let ids = storage_init(device, "token ids", &vec![0u32; rows]);
        let order = storage_init(device, "token order", &vec![0u32; rows]);
        let starts = storage_init(device, "token starts", &vec![0u32; vocab + 1]);
        let params = |n: usize| -> Result<EmbeddingParams> {
            Ok(EmbeddingParams {
                n: to_u32("embedding elements", n)?,
                dim: to_u32("embedding width", dim)?,
                offset: to_u32("embedding offset", at)?,
                // tied: the head's gradient is already there; add to it
                accumulate: self.options.tie_weights as u32,
            })
        };
        let mut gather = PlanBuilder::new(ctx);
        let group = gather.group(
            Kernel::EmbeddingGather,
            "embedding lookup",
            &[("ids", &ids), ("table", &self.params), ("x", x)],
        );
        let n = rows * dim;
        gather.dispatch(0, group, &params(n)?, elementwise_groups(n)?)?;
        let group = plan.group(
            Kernel::EmbeddingGrad,
            "embedding gradient",
            &[
                ("order", &order),
                ("starts", &starts),
                ("dx", dx),
                ("grads", &self.grads),
            ],
        );
        let n = vocab * dim;
        plan.dispatch(0, group, &params(n)?, elementwise_groups(n)?)?;
        Ok(TokenBuffers {
            ids,
            order,
            starts,
            gather: gather.finish()?,
        })
    }

    fn record_update(&self, plan: &mut PlanBuilder<'_>) -> Result<()> {
        let n = self.layout.total;
        let opt = &self.options.optimizer;
        let groups = elementwise_groups(n)?;
        if self.options.clip_norm.is_some() {
            reduce::record_sum(
                plan,
                0,
                "grad norm",
                (&self.grads, n),
                true,
                1.0,
                (&self.scalars, 1),
                &self.partials,
            )?;
        }
        let kernel = if opt.kind == OptimizerKind::Sgd {
            Kernel::Sgd
        } else {
            Kernel::Adam
        };
        let group = plan.group(
            kernel,
            "optimizer",
            &[
                ("p", &self.params),
                ("grad", &self.grads),
                ("m", &self.moment1),
                ("v", &self.moment2),
                ("scalars", &self.scalars),
            ],
        );
        plan.dispatch(
            0,
            group,
            &OptParams {
                n: to_u32("parameters", n)?,
                decoupled: (opt.kind == OptimizerKind::AdamW) as u32,
                clip: self.options.clip_norm.is_some() as u32,
                has_momentum: (opt.momentum != 0.0) as u32,
                momentum: opt.momentum,
                weight_decay: opt.weight_decay,
                beta1: opt.beta1,
                beta2: opt.beta2,
                eps: opt.eps,
                max_norm: self.options.clip_norm.unwrap_or(0.0),
                _pad: [0; 2],
            },
            groups,
        )?;
        relayout::record(plan, &self.model, &self.layout, &self.params)
    }

    /// An inference model with the weights of every step submitted so far, copied on the GPU
    /// (no host round trip, no wait): later training steps do not change it. Its weights can
    /// be shared further with [`GpuLstm::gpu_weights`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn inference_model(&self) -> Result<GpuLstm> {
        pollster::block_on(self.inference_model_async())
    }

    /// The async form of [`GpuTrainer::inference_model`].
    pub async fn inference_model_async(&self) -> Result<GpuLstm> {
        let ctx = self.model.context();
        let copy = guarded(ctx, "copying the trained weights", || {
            Ok(self.model.weights.duplicate(ctx))
        })
        .await?;
        let weights = crate::gpu::weights::GpuWeights(std::sync::Arc::new(copy));
        Ok(GpuLstm::with_weights(ctx, &weights))
    }

    /// The latest weights known on the host and the step they follow: those of the last
    /// successful [`Trainer::weights`] (the initial weights before any). After a lost device
    /// or a failed step they are what training can go on from, on a new context.
    pub fn last_host_weights(&self) -> (u64, LstmWeights) {
        lock(&self.host_copy).clone()
    }

    /// The async form of [`Trainer::flush`].
    pub async fn flush_async(&mut self) -> Result<Vec<StepLoss>> {
        let ctx = self.model.context().clone();
        self.losses.drain(&ctx, 0).await
    }

    /// The async form of [`Trainer::submit`].
    pub async fn submit_async(&mut self, x: &Tensor, target: &Target) -> Result<Vec<StepLoss>> {
        self.submit_with_async(&Inputs::new(x), target).await
    }

    /// The async form of [`Trainer::submit_with`].
    pub async fn submit_with_async(
        &mut self,
        inputs: &Inputs<'_>,
        target: &Target,
    ) -> Result<Vec<StepLoss>> {
        self.submit_step((inputs, None), target, false).await
    }

    /// The async form of [`Trainer::submit_ids`].
    pub async fn submit_ids_async(
        &mut self,
        ids: &Tensor<i64>,
        lengths: Option<&[usize]>,
        target: &Target,
    ) -> Result<Vec<StepLoss>> {
        if let Some(embedding) = self.like.embedding() {
            embedding.check_ids(ids)?;
        }
        // the LSTM's input shape, for the shape checks; the GPU looks the values up itself
        let mut shape = ids.shape().to_vec();
        shape.push(self.model.config().input_size);
        let placeholder = Tensor::full(shape, 0.0f32);
        let inputs = Inputs::new(&placeholder).lengths(lengths);
        self.submit_step((&inputs, Some(ids)), target, false).await
    }

    /// The async form of [`Trainer::step`]: one step, waited for; its loss.
    pub async fn step_async(&mut self, x: &Tensor, target: &Target) -> Result<f32> {
        self.step_with_async(&Inputs::new(x), target).await
    }

    /// The async form of [`Trainer::step_with`].
    pub async fn step_with_async(&mut self, inputs: &Inputs<'_>, target: &Target) -> Result<f32> {
        let mut losses = self.submit_with_async(inputs, target).await?;
        losses.extend(self.flush_async().await?);
        losses
            .last()
            .map(|s| s.loss)
            .ok_or_else(|| Error::Readback("no loss came back".into()))
    }

    /// The async form of [`Trainer::restore_last_good`].
    pub async fn restore_last_good_async(&mut self, bad: u64) -> Result<()> {
        if bad == 0 || bad > self.step || self.step > bad + 1 {
            return Err(Error::Input(format!(
                "restore_last_good({bad}) after {} steps: it takes the step whose loss was \
                 not finite, at most one step back",
                self.step
            )));
        }
        self.flush_async().await?; // the step after `bad`, if any, is undone below
                                   // backups[k % 3] holds the start of step k; the start of step 1 is the initial weights
        let source = &self.backups[(bad.saturating_sub(1).max(1) % 3) as usize];
        let ctx = self.model.context();
        guarded(ctx, "rollback", || {
            let device = ctx.device();
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("rollback"),
            });
            let bytes = (self.layout.total * 4) as u64;
            encoder.copy_buffer_to_buffer(source, 0, &self.params, 0, bytes);
            // the forward kernels' layouts follow the restored parameters
            let mut plan = PlanBuilder::new(ctx);
            relayout::record(&mut plan, &self.model, &self.layout, &self.params)?;
            plan.finish()?.encode(&mut encoder);
            ctx.submit([encoder.finish()]);
            Ok(())
        })
        .await
    }

    /// The async form of [`Trainer::weights`] (which also keeps them as
    /// [`GpuTrainer::last_host_weights`]).
    pub async fn weights_async(&self) -> Result<LstmWeights> {
        let ctx = self.model.context();
        let (stage, submission) = guarded(ctx, "weights readback", || {
            let device = ctx.device();
            let stage = staging(device, "weights readback", self.layout.total);
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("weights readback"),
            });
            let bytes = (self.layout.total * 4) as u64;
            encoder.copy_buffer_to_buffer(&self.params, 0, &stage, 0, bytes);
            Ok((stage, ctx.submit([encoder.finish()])))
        })
        .await?;
        let bytes = (self.layout.total * 4) as u64;
        let read = read_bytes_async(
            ctx,
            "weights readback",
            &[(&stage, bytes)],
            Some(submission),
        )
        .await?;
        let flat = bytemuck::pod_collect_to_vec::<u8, f32>(&read[0]);
        let weights = self.layout.unflatten(&flat, &self.like)?;
        *lock(&self.host_copy) = (self.step, weights.clone());
        Ok(weights)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Trainer for GpuTrainer {
    /// Records and submits step k; returns the loss of step k - 1, which ran on the GPU while
    /// step k was uploaded and recorded (the loss of step k comes with step k + 1 or `flush`).
    fn submit_with(&mut self, inputs: &Inputs<'_>, target: &Target) -> Result<Vec<StepLoss>> {
        pollster::block_on(self.submit_with_async(inputs, target))
    }

    fn submit_ids(
        &mut self,
        ids: &Tensor<i64>,
        lengths: Option<&[usize]>,
        target: &Target,
    ) -> Result<Vec<StepLoss>> {
        pollster::block_on(self.submit_ids_async(ids, lengths, target))
    }

    fn flush(&mut self) -> Result<Vec<StepLoss>> {
        pollster::block_on(self.flush_async())
    }

    fn reset_state(&mut self) {
        GpuTrainer::reset_state(self)
    }

    fn set_lr(&mut self, lr: f32) -> Result<()> {
        GpuTrainer::set_lr(self, lr)
    }

    fn snapshot(&mut self) -> Result<crate::train::TrainerSnapshot> {
        pollster::block_on(self.snapshot_async())
    }

    fn restore(&mut self, snapshot: &crate::train::TrainerSnapshot) -> Result<()> {
        pollster::block_on(self.restore_async(snapshot))
    }

    fn inference(&mut self) -> Result<Box<dyn crate::train::Inference>> {
        Ok(Box::new(self.inference_model()?))
    }

    fn restore_last_good(&mut self, bad: u64) -> Result<()> {
        pollster::block_on(self.restore_last_good_async(bad))
    }

    fn weights(&self) -> Result<LstmWeights> {
        pollster::block_on(self.weights_async())
    }
}

/// Writes a batch's ids (time-major on the GPU), the positions sorted by id (stably) and where
/// each id's run starts: a counting sort, so that the gradient's sums have a fixed order.
fn write_ids(
    queue: &wgpu::Queue,
    tokens: &TokenBuffers,
    ids: &Tensor<i64>,
    (seq_len, batch): (usize, usize),
    cfg: &crate::LstmConfig,
) {
    let ids: Vec<u32> = ids.data().iter().map(|&id| id as u32).collect();
    let ids = if cfg.batch_first && batch > 1 {
        swap_leading_axes(&ids, batch, seq_len, 1)
    } else {
        ids
    };
    let vocab = (tokens.starts.size() / 4) as usize - 1;
    let mut starts = vec![0u32; vocab + 1];
    for &id in &ids {
        starts[id as usize + 1] += 1;
    }
    for v in 0..vocab {
        starts[v + 1] += starts[v];
    }
    let mut next = starts.clone();
    let mut order = vec![0u32; ids.len()];
    for (position, &id) in ids.iter().enumerate() {
        order[next[id as usize] as usize] = position as u32;
        next[id as usize] += 1;
    }
    queue.write_buffer(&tokens.ids, 0, bytemuck::cast_slice(&ids));
    queue.write_buffer(&tokens.order, 0, bytemuck::cast_slice(&order));
    queue.write_buffer(&tokens.starts, 0, bytemuck::cast_slice(&starts));
}
