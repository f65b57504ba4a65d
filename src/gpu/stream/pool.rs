//! `GpuStatePool`: many independent streams of one model, each in a slot of a state pool on
//! the GPU, served together one timestep at a time by whichever slots are active.

use crate::error::{Error, Result};
use crate::gpu::device::{
    drop_turn, guarded_now, staging, storage_zeros, submit_and_read, GpuContext, TurnEnd, TurnStart,
};
use crate::gpu::forward::{GpuLstm, PREPARED_SHAPES};
use crate::gpu::kernels::{check_size, elementwise_groups, to_u32, Kernel, RowsParams};
use crate::gpu::plan::{Plan, PlanBuilder};
use crate::gpu::weights::GpuWeights;
use crate::shape::Dims;
use crate::tensor::Tensor;

/// One slot's state on the host: h `[L, H_out]` and c `[L, H]` (a snapshot).
#[derive(Clone, Debug, PartialEq)]
pub struct SlotState {
    /// `[L, H_out]`
    pub h: Tensor,
    /// `[L, H]`
    pub c: Tensor,
}

/// N slots, each the state of one independent stream of a unidirectional model.
///
/// A step serves the slots listed for it, in any order and any number up to the capacity:
/// their states are gathered into a batch (one dispatch for h, one for c), the model steps
/// the batch in its usual dispatches, and the new states are scattered back. The batch is
/// rounded up to a power of two (padding rows use a spare slot that no stream owns), so a
/// few prepared shapes serve every number of active streams.
///
/// Each stream's results match the same stream run alone within the forward tolerance. They
/// are bitwise equal when the same recurrent kernel variant serves both batch sizes: the
/// variant depends on the batch ([`crate::gpu::Recurrence::choose`]); every row's sums run in the
/// same order whatever the batch for a given variant.
pub struct GpuStatePool {
    /// first field: takes the device's turn while the others drop (`drop_turn.rs`)
    _turn_start: TurnStart,
    model: GpuLstm,
    capacity: usize,
    /// `[L, capacity + 1, H_out]`: the last row of each layer is the padding rows' slot
    h: wgpu::Buffer,
    /// `[L, capacity + 1, H]`
    c: wgpu::Buffer,
    /// the batch's slot indices, u32
    slots: wgpu::Buffer,
    /// (batch, gather plan, scatter plan, the workspace's h0 they bind), last first
    plans: Vec<(usize, Plan, Plan, wgpu::Buffer)>,
    /// last field: gives the turn back
    _turn_end: TurnEnd,
}

impl GpuStatePool {
    /// A pool of `capacity` zeroed slots for the model whose weights are `weights` (shared,
    /// not uploaded again).
    pub fn new(ctx: &GpuContext, weights: &GpuWeights, capacity: usize) -> Result<Self> {
        let config = weights.config();
        if config.bidirectional {
            return Err(Error::Config(
                "a state pool streams forward in time; a bidirectional model cannot".into(),
            ));
        }
        if capacity == 0 {
            return Err(Error::Input("a state pool needs at least 1 slot".into()));
        }
        let layers = config.num_layers;
        let (h_out, hidden) = (config.output_size(), config.hidden_size);
        let rows = layers.saturating_mul(capacity.saturating_add(1));
        let limits = ctx.device().limits();
        check_size(
            &limits,
            "the pool's h [L, slots, H_out]",
            rows.saturating_mul(h_out),
        )?;
        check_size(
            &limits,
            "the pool's c [L, slots, H]",
            rows.saturating_mul(hidden),
        )?;
        guarded_now(ctx, "state pool allocation", || {
            let device = ctx.device();
            let (_turn_start, _turn_end) = drop_turn(ctx);
            Ok(Self {
                _turn_start,
                _turn_end,
                model: GpuLstm::with_weights(ctx, weights),
                capacity,
                h: storage_zeros(device, "pool h", rows * h_out),
                c: storage_zeros(device, "pool c", rows * hidden),
                slots: storage_zeros(device, "pool slot list", bucket(capacity)),
                plans: Vec::new(),
            })
        })
    }

    /// Slots in the pool.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The model the pool steps (for its configuration and kernel choice).
    pub fn model(&self) -> &GpuLstm {
        &self.model
    }

    /// Grows the pool to `capacity` slots; existing slots keep their states, new ones start
    /// at zero.
    pub fn grow(&mut self, capacity: usize) -> Result<()> {
        if capacity <= self.capacity {
            return Ok(());
        }
        let grown = Self::new(self.model.context(), &self.model.gpu_weights(), capacity)?;
        let (h_out, hidden) = self.widths();
        let ctx = self.model.context();
        guarded_now(ctx, "growing a state pool", || {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            for layer in 0..self.layers() {
                for (from, to, width) in [(&self.h, &grown.h, h_out), (&self.c, &grown.c, hidden)] {
                    let bytes = (self.capacity * width * 4) as u64;
                    let (old_at, new_at) = (
                        (layer * (self.capacity + 1) * width * 4) as u64,
                        (layer * (capacity + 1) * width * 4) as u64,
                    );
                    encoder.copy_buffer_to_buffer(from, old_at, to, new_at, bytes);
                }
            }
            ctx.submit([encoder.finish()]);
            Ok(())
        })?;
        self.capacity = capacity;
        self.h = grown.h;
        self.c = grown.c;
        self.slots = grown.slots;
        self.plans.clear();
        Ok(())
    }

    /// Sets slot `slot` back to zeros (a new stream).
    pub fn reset(&self, slot: usize) -> Result<()> {
        let (h_out, hidden) = self.widths();
        let layers = self.layers();
        self.restore(
            slot,
            &SlotState {
                h: Tensor::new([layers, h_out], vec![0.0; layers * h_out])?,
                c: Tensor::new([layers, hidden], vec![0.0; layers * hidden])?,
            },
        )
    }

    /// Puts a state (from [`GpuStatePool::snapshot`], or any `[L, H_out]`/`[L, H]`) into
    /// slot `slot`.
    pub fn restore(&self, slot: usize, state: &SlotState) -> Result<()> {
        self.check_slot(slot)?;
        let (h_out, hidden) = self.widths();
        let layers = self.layers();
        state
            .h
            .expect_shape("the slot's h [L, H_out]", &[layers, h_out])?;
        state
            .c
            .expect_shape("the slot's c [L, H]", &[layers, hidden])?;
        let ctx = self.model.context();
        guarded_now(ctx, "restoring a slot", || {
            for layer in 0..layers {
                for (buffer, data, width) in
                    [(&self.h, &state.h, h_out), (&self.c, &state.c, hidden)]
                {
                    let at = ((layer * (self.capacity + 1) + slot) * width * 4) as u64;
                    let row = &data.data()[layer * width..(layer + 1) * width];
                    ctx.queue()
                        .write_buffer(buffer, at, bytemuck::cast_slice(row));
                }
            }
            Ok(())
        })
    }

    /// Slot `slot`'s state, copied to the host (blocks; see [`GpuStatePool::snapshot_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn snapshot(&self, slot: usize) -> Result<SlotState> {
        pollster::block_on(self.snapshot_async(slot))
    }

    /// The async form of [`GpuStatePool::snapshot`].
    pub async fn snapshot_async(&self, slot: usize) -> Result<SlotState> {
        self.check_slot(slot)?;
        let (h_out, hidden) = self.widths();
        let layers = self.layers();
        let ctx = self.model.context();
        let len = layers * (h_out + hidden);
        let stage = guarded_now(ctx, "slot snapshot", || {
            Ok(staging(ctx.device(), "slot snapshot", len))
        })?;
        let mut h = submit_and_read(ctx, "slot snapshot", &stage, len, |encoder| {
            let mut at = 0;
            for (buffer, width) in [(&self.h, h_out), (&self.c, hidden)] {
                for layer in 0..layers {
                    let from = ((layer * (self.capacity + 1) + slot) * width * 4) as u64;
                    encoder.copy_buffer_to_buffer(buffer, from, &stage, at, (width * 4) as u64);
                    at += (width * 4) as u64;
                }
            }
            Ok(())
        })
        .await?;
        let c = h.split_off(layers * h_out);
        Ok(SlotState {
            h: Tensor::new([layers, h_out], h)?,
            c: Tensor::new([layers, hidden], c)?,
        })
    }

    /// One timestep of the streams in `slots` (distinct, each below the capacity): `x`
    /// `[B, I]` holds their inputs in the order of `slots` (B = `slots.len()`); returns their
    /// outputs `[B, O]` in the same order and advances their states (blocks; see
    /// [`GpuStatePool::step_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step(&mut self, slots: &[usize], x: &Tensor) -> Result<Tensor> {
        pollster::block_on(self.step_async(slots, x))
    }

    /// The async form of [`GpuStatePool::step`].
    pub async fn step_async(&mut self, slots: &[usize], x: &Tensor) -> Result<Tensor> {
        let input = self.model.config().input_size;
        x.expect_shape("the pool step's x [B, I]", &[slots.len(), input])?;
        let batch = self.select_async(slots).await?;
        let ctx = self.model.context().clone();
        let ws = self.model.workspace()?;
        let width = ws.buffers.lens.0 / batch;
        let y_len = slots.len() * width;
        let y = submit_and_read(&ctx, "pool step", &ws.readback, y_len, |encoder| {
            ctx.queue()
                .write_buffer(&ws.buffers.x, 0, bytemuck::cast_slice(x.data()));
            self.encode_selected(encoder, batch)?;
            let bytes = (y_len * 4) as u64;
            encoder.copy_buffer_to_buffer(ws.buffers.output(), 0, &ws.readback, 0, bytes);
            Ok(())
        })
        .await?;
        Tensor::new([slots.len(), width], y)
    }

    /// Records one timestep of the streams in `slots` into the caller's `encoder`, all on
    /// the GPU: `input` holds their inputs `[B, I]` (f32, COPY_SRC) in the order of `slots`,
    /// `output` receives their outputs `[B, O]` (COPY_DST). The slot list itself is written
    /// through the queue, so it is in place before the encoder's commands run. The first step
    /// at a new padded batch size prepares that shape, which waits for the device.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn encode_step(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        slots: &[usize],
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        pollster::block_on(self.encode_step_async(encoder, slots, input, output))
    }

    /// The async form of [`GpuStatePool::encode_step`].
    pub async fn encode_step_async(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        slots: &[usize],
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        let batch = self.select_async(slots).await?;
        let ws = self.model.workspace()?;
        let x_bytes = (slots.len() * self.model.config().input_size * 4) as u64;
        let y_bytes = (slots.len() * (ws.buffers.lens.0 / batch) * 4) as u64;
        self.model
            .encode_between(encoder, (input, x_bytes), (output, y_bytes), |encoder| {
                self.encode_selected(encoder, batch)
            })
    }

    /// Checks `slots`, prepares the padded batch's shape and plans, and writes the slot list;
    /// returns the padded batch.
    async fn select_async(&mut self, slots: &[usize]) -> Result<usize> {
        if slots.is_empty() {
            return Err(Error::Input("a pool step needs at least one slot".into()));
        }
        let mut seen = vec![false; self.capacity];
        for &slot in slots {
            self.check_slot(slot)?;
            if std::mem::replace(&mut seen[slot], true) {
                return Err(Error::Input(format!(
                    "slot {slot} is listed twice in one step"
                )));
            }
        }
        let batch = bucket(slots.len()).min(bucket(self.capacity));
        self.model.prepare_async(Dims { seq_len: 1, batch }).await?;
        let mut list: Vec<u32> = slots.iter().map(|&s| s as u32).collect();
        list.resize(batch, to_u32("capacity", self.capacity)?);
        let ctx = self.model.context().clone();
        guarded_now(&ctx, "selecting pool slots", || {
            self.plans_for(batch)?;
            ctx.queue()
                .write_buffer(&self.slots, 0, bytemuck::cast_slice(&list));
            Ok(batch)
        })
    }

    /// Gather, the model's pass, scatter, for the prepared `batch`.
    fn encode_selected(&self, encoder: &mut wgpu::CommandEncoder, batch: usize) -> Result<()> {
        let (_, gather, scatter, _) = self
            .plans
            .first()
            .filter(|p| p.0 == batch)
            .ok_or_else(|| Error::Input("no plan prepared for this batch".into()))?;
        gather.encode(encoder);
        self.model.workspace()?.buffers.state_overwritten();
        self.model.encode(encoder)?;
        scatter.encode(encoder);
        Ok(())
    }

    /// Makes the gather and scatter plans of `batch` current (built when missing, or when the
    /// model's workspace for it was rebuilt).
    fn plans_for(&mut self, batch: usize) -> Result<()> {
        let h0 = self.model.workspace()?.buffers.h0.clone();
        if let Some(at) = self.plans.iter().position(|p| p.0 == batch && p.3 == h0) {
            let plans = self.plans.remove(at);
            self.plans.insert(0, plans);
            return Ok(());
        }
        let (gather, scatter) = self.build_plans(batch)?;
        self.plans.truncate(PREPARED_SHAPES - 1);
        self.plans.insert(0, (batch, gather, scatter, h0));
        Ok(())
    }

    fn build_plans(&self, batch: usize) -> Result<(Plan, Plan)> {
        let ws = self.model.workspace()?;
        let b = &ws.buffers;
        let (h_out, hidden) = self.widths();
        let ctx = self.model.context();
        let mut plans = Vec::new();
        for (mode, moves) in [
            (0, [(&self.h, &b.h0, h_out), (&self.c, &b.c0, hidden)]),
            (1, [(&b.h_n, &self.h, h_out), (&b.c_n, &self.c, hidden)]),
        ] {
            let mut plan = PlanBuilder::new(ctx);
            for (src, dst, width) in moves {
                let label = if mode == 0 { "gather" } else { "scatter" };
                let group = plan.group(
                    Kernel::Rows,
                    label,
                    &[("slot", &self.slots), ("src", src), ("dst", dst)],
                );
                let params = RowsParams {
                    rows: to_u32("batch", batch)?,
                    width: to_u32("width", width)?,
                    planes: to_u32("layers", self.layers())?,
                    slots: to_u32("slots", self.capacity + 1)?,
                    mode,
                    _pad: [0; 3],
                };
                let groups = elementwise_groups(self.layers() * batch * width)?;
                plan.dispatch(0, group, &params, groups)?;
            }
            plans.push(plan.finish()?);
        }
        let scatter = plans
            .pop()
            .ok_or_else(|| Error::Input("no scatter plan".into()))?;
        let gather = plans
            .pop()
            .ok_or_else(|| Error::Input("no gather plan".into()))?;
        Ok((gather, scatter))
    }

    fn check_slot(&self, slot: usize) -> Result<()> {
        if slot >= self.capacity {
            return Err(Error::Input(format!(
                "slot {slot} is out of range: the pool has {} slots (grow it first)",
                self.capacity
            )));
        }
        Ok(())
    }

    fn layers(&self) -> usize {
        self.model.config().num_layers
    }

    /// (H_out, H)
    fn widths(&self) -> (usize, usize) {
        let cfg = self.model.config();
        (cfg.output_size(), cfg.hidden_size)
    }
}

/// The batch a step of `active` streams runs at: the next power of two.
fn bucket(active: usize) -> usize {
    active.max(1).next_power_of_two()
}
