//! One layer and direction of the fast forward pass: the input projection as one GEMM over
//! all timesteps, then per step the recurrent product fused with the cell update, for a
//! range of rows (a [`super::plan::Group`]), split over the group's workers by unit blocks
//! (and by projection panels with `proj_size`).

use std::ops::Range;

use pulp::Simd;

use super::kernel::{copy_rows, load, panel_product, row_tiles, store, store_partial, Acc, KC, MR};
use super::math::{sigmoid, tanh};
use super::pack::{PackedDirection, PANEL_VECTORS};
use super::reuse::Reuse;
use super::team::{Shared, StealQueue, Worker};
use crate::cell::{Cell, STANDARD_ACTIVATIONS};
use crate::cpu::forward::DirCache;
use crate::error::Result;
use crate::shape::Dims;

/// How one direction's gate math runs, chosen once per pass from its cell.
#[derive(Clone, Copy, Debug)]
pub enum GateMath {
    /// PyTorch's cell, in SIMD.
    Standard,
    /// Peepholes, clip or coupled gates with PyTorch's activations, in SIMD; o waits for the
    /// second pass over the rows, as PyTorch's o does.
    Simd(Cell),
    /// Other activations: lane by lane through [`Cell::step`].
    Lanes(Cell),
}

impl GateMath {
    /// The gate math of `cell`'s direction `direction`.
    pub fn of(cell: &Cell, direction: usize) -> Self {
        if cell.is_standard() {
            GateMath::Standard
        } else if cell.activations[direction] == STANDARD_ACTIVATIONS {
            GateMath::Simd(*cell)
        } else {
            GateMath::Lanes(*cell)
        }
    }
}

/// `x` clamped to `[-clip, clip]` (unchanged without a clip).
#[inline(always)]
fn clipped<S: Simd>(simd: S, x: S::f32s, clip: Option<f32>) -> S::f32s {
    match clip {
        Some(limit) => simd.min_f32s(
            simd.max_f32s(x, simd.splat_f32s(-limit)),
            simd.splat_f32s(limit),
        ),
        None => x,
    }
}

/// Everything the team shares while running one direction.
pub struct DirectionJob<'a> {
    pub packed: &'a PackedDirection,
    pub direction: usize,
    /// how this direction's gate math runs (the products are SIMD whatever it is)
    pub gates: GateMath,
    pub seq_len: usize,
    pub batch: usize,
    pub lengths: &'a [usize],
    pub input: &'a [f32],
    /// `[T, B, D*H_out]`
    pub out_width: usize,
    output: &'a Shared<'a, f32>,
    /// `[blocks, T·B, 4L]`: bias + x · W_ihᵀ, each unit block's columns for every row
    /// together, so that a step reads one contiguous run per block
    pre: Shared<'a, f32>,
    /// h_{t-1} and h_t in turn, `[B, stride]`
    h: [Shared<'a, f32>; 2],
    h_stride: usize,
    /// `[B, Hp]`
    c: Shared<'a, f32>,
    /// `[B, Hp]`: o ⊙ tanh(c) before the projection
    h_full: Shared<'a, f32>,
    trace: Option<TraceParts<'a>>,
    /// the input projection's (row chunk, unit block) items, over the whole team
    projection: StealQueue,
}

/// What a [`DirectionJob`] works on, besides its buffers.
pub struct JobParts<'a> {
    pub direction: usize,
    pub dims: Dims,
    pub lengths: &'a [usize],
    /// time-major `[T, B, in]`
    pub input: &'a [f32],
    /// the layer's output `[T, B, out_width]`, shared by its directions
    pub output: &'a Shared<'a, f32>,
    pub out_width: usize,
    pub cache: Option<&'a mut DirCache<f32>>,
}

/// A group's queues of the items of each step: unit blocks, and the projection's panels.
pub struct GroupQueues {
    blocks: StealQueue,
    panels: StealQueue,
}

impl GroupQueues {
    /// For a group of `threads` running `packed` (nothing allocated for one thread).
    pub fn new(packed: &PackedDirection, threads: usize) -> Self {
        let width = PANEL_VECTORS * packed.gates.lanes;
        Self {
            blocks: StealQueue::new(threads, packed.gates.blocks()),
            panels: StealQueue::new(threads, h_stride(packed) / width),
        }
    }
}

/// Rows per item of the input projection.
pub const PROJECTION_ROWS: usize = 48;

struct TraceParts<'a> {
    gates: Shared<'a, f32>,
    c_before: Shared<'a, f32>,
    h_before: Shared<'a, f32>,
    h_full: Shared<'a, f32>,
}

/// The buffers a [`DirectionJob`] borrows.
pub struct Scratch {
    pre: Vec<f32>,
    h: [Vec<f32>; 2],
    c: Vec<f32>,
    h_full: Vec<f32>,
}

impl Scratch {
    /// Buffers for `packed` at `dims`, holding the initial state `h` `[B, H_out]` and `c`
    /// `[B, H]` ([`crate::Error::HostMemory`] when the host cannot hold the
    /// pre-activations).
    pub fn new(
        packed: &PackedDirection,
        dims: Dims,
        (h, c): (&[f32], &[f32]),
        reuse: &Reuse,
    ) -> Result<Self> {
        let (batch, rows) = (dims.batch, dims.seq_len * dims.batch);
        let hp = packed.gates.padded();
        let stride = h_stride(packed);
        let mut scratch = Self {
            // every element is written by the input projection
            pre: reuse.any("input projection [T*B, 4H]", rows * 4 * hp)?,
            h: [vec![0.0; batch * stride], vec![0.0; batch * stride]],
            c: vec![0.0; batch * hp],
            h_full: vec![0.0; batch * hp],
        };
        scratch.load_state(packed, batch, h, c);
        Ok(scratch)
    }

    /// After a one-step job: its h_t (in `h[1]`) becomes the next job's h_{t-1} (`h[0]`);
    /// c is updated in place.
    pub fn carry_state(&mut self) {
        self.h.swap(0, 1);
    }

    /// Copies the state a job would start from into `h` `[B, H_out]` and `c` `[B, H]`.
    pub fn store_state(
        &self,
        packed: &PackedDirection,
        batch: usize,
        h: &mut [f32],
        c: &mut [f32],
    ) {
        let (hidden, h_out, hp) = (packed.gates.hidden, packed.h_out, packed.gates.padded());
        let stride = h_stride(packed);
        for b in 0..batch {
            h[b * h_out..][..h_out].copy_from_slice(&self.h[0][b * stride..][..h_out]);
            c[b * hidden..][..hidden].copy_from_slice(&self.c[b * hp..][..hidden]);
        }
    }

    /// Zeros the state a job starts from.
    pub fn zero_state(&mut self) {
        self.h[0].fill(0.0);
        self.c.fill(0.0);
    }

    /// Sets the state a job starts from: `h` `[B, H_out]`, `c` `[B, H]`.
    pub fn load_state(&mut self, packed: &PackedDirection, batch: usize, h: &[f32], c: &[f32]) {
        let (hidden, h_out, hp) = (packed.gates.hidden, packed.h_out, packed.gates.padded());
        let stride = h_stride(packed);
        for b in 0..batch {
            self.h[0][b * stride..][..h_out].copy_from_slice(&h[b * h_out..][..h_out]);
            self.c[b * hp..][..hidden].copy_from_slice(&c[b * hidden..][..hidden]);
        }
    }
}

impl Scratch {
    /// Hands the big buffer back for the next pass.
    pub fn give_back(self, reuse: &Reuse) {
        reuse.give(self.pre);
    }
}

/// The row stride of h: whole panels of the projection, else whole unit blocks.
fn h_stride(packed: &PackedDirection) -> usize {
    let width = PANEL_VECTORS * packed.gates.lanes;
    match packed.w_hr {
        Some(_) => packed.h_out.div_ceil(width) * width,
        None => packed.gates.padded(),
    }
}

impl<'a> DirectionJob<'a> {
    /// The job of `parts` on `scratch`, its input projection shared by a team of `team`.
    pub fn new(
        packed: &'a PackedDirection,
        scratch: &'a mut Scratch,
        parts: JobParts<'a>,
        team: usize,
        cell: &Cell,
    ) -> Self {
        let [h0, h1] = &mut scratch.h;
        let trace = parts.cache.map(|cache: &'a mut DirCache<f32>| TraceParts {
            gates: Shared::new(&mut cache.gates),
            c_before: Shared::new(&mut cache.c_before),
            h_before: Shared::new(&mut cache.h_before),
            h_full: Shared::new(&mut cache.h_full),
        });
        let Dims { seq_len, batch } = parts.dims;
        Self {
            packed,
            direction: parts.direction,
            gates: GateMath::of(cell, parts.direction),
            seq_len,
            batch,
            lengths: parts.lengths,
            input: parts.input,
            out_width: parts.out_width,
            output: parts.output,
            pre: Shared::new(&mut scratch.pre),
            h: [Shared::new(h0), Shared::new(h1)],
            h_stride: h_stride(packed),
            c: Shared::new(&mut scratch.c),
            h_full: Shared::new(&mut scratch.h_full),
            trace,
            projection: StealQueue::new(
                team,
                (seq_len * batch).div_ceil(PROJECTION_ROWS) * packed.gates.blocks(),
            ),
        }
    }

    /// Copies the final state into the caller's `h` `[B, H_out]` and `c` `[B, H]`.
    pub fn finish(&self, h: &mut [f32], c: &mut [f32]) {
        let last = &self.h[self.seq_len % 2];
        let (hidden, h_out, hp) = (
            self.packed.gates.hidden,
            self.packed.h_out,
            self.packed.gates.padded(),
        );
        // SAFETY: the team has finished; nothing else touches these buffers.
        let (last, state) = unsafe { (last.read(), self.c.read()) };
        for b in 0..self.batch {
            h[b * h_out..][..h_out].copy_from_slice(&last[b * self.h_stride..][..h_out]);
            c[b * hidden..][..hidden].copy_from_slice(&state[b * hp..][..hidden]);
        }
    }

    /// Accumulator rows a worker needs: for the input projection's items, and for every row
    /// of a step.
    pub fn partial_rows(&self) -> usize {
        PROJECTION_ROWS.max(self.batch)
    }

    /// This worker's part of the recurrence of rows `rows`, on the workers of one group
    /// (`worker` numbered within it; `queues` made for it), after the input projection.
    /// `partial` holds [`Self::partial_rows`] rows.
    #[inline(always)]
    pub fn recur<S: Simd>(
        &self,
        simd: S,
        worker: &Worker<'_>,
        rows: Range<usize>,
        queues: &GroupQueues,
        partial: &mut [Acc<S>],
    ) {
        let time = |step: usize| match self.direction {
            0 => step,
            _ => self.seq_len - 1 - step,
        };
        for step in 0..self.seq_len {
            let t = time(step);
            let (prev, next) = (&self.h[step % 2], &self.h[(step + 1) % 2]);
            if worker.id == 0 {
                self.trace_h_before(t, prev, &rows);
            }
            if step > 0 {
                self.write_output(time(step - 1), prev, worker, &rows);
            }
            for block in queues.blocks.claims(worker, step) {
                self.gate_block(simd, t, block, (prev, next), &rows, partial);
            }
            worker.sync();
            if let Some(w_hr) = &self.packed.w_hr {
                for panel in queues.panels.claims(worker, step) {
                    self.projection_panel(simd, t, panel, w_hr, (prev, next), &rows);
                }
                worker.sync();
            }
        }
        if self.seq_len > 0 {
            // the team's join is the barrier after this
            let last = &self.h[self.seq_len % 2];
            self.write_output(time(self.seq_len - 1), last, worker, &rows);
        }
    }

    /// Copies h_t (`[B, stride]`, complete and read-only until the next barrier) into the
    /// output at step `t`, this worker's share of the rows: one run per row, after the step,
    /// instead of one vector per row and unit block from inside the cell update (the
    /// output's lines are cold; filled whole and in order, the prefetcher follows).
    fn write_output(
        &self,
        t: usize,
        h: &Shared<'_, f32>,
        worker: &Worker<'_>,
        rows: &Range<usize>,
    ) {
        let h_out = self.packed.h_out;
        // SAFETY: `h` is only read until the next barrier.
        let h = unsafe { h.read() };
        for b in worker.share(rows.len()).map(|r| rows.start + r) {
            let at = (t * self.batch + b) * self.out_width + self.direction * h_out;
            // SAFETY: this worker alone writes row b of the output at step t.
            let out = unsafe { self.output.part(at, h_out) };
            if t < self.lengths[b] {
                out.copy_from_slice(&h[b * self.h_stride..][..h_out]);
            } else {
                out.fill(0.0);
            }
        }
    }

    /// pre = bias + x · W_ihᵀ (`[blocks, T·B, 4L]`, see `pre`), as items of ([`PROJECTION_ROWS`] rows, one unit
    /// block) handed out over the team, with the same k-chunked panel kernel as the steps.
    #[inline(always)]
    pub fn project_inputs<S: Simd>(&self, simd: S, worker: &Worker<'_>, partial: &mut [Acc<S>]) {
        let p = self.packed;
        let lanes = S::F32_LANES;
        let (in_size, width, blocks) = (p.input_size, PANEL_VECTORS * lanes, p.gates.blocks());
        let rows = self.seq_len * self.batch;
        for item in self.projection.claims(worker, 0) {
            let (chunk, block) = (item / blocks, item % blocks);
            let (row0, chunk_rows) = (
                chunk * PROJECTION_ROWS,
                PROJECTION_ROWS.min(rows - chunk * PROJECTION_ROWS),
            );
            let panel = &p.w_ih[block * in_size * width..][..in_size * width];
            let bias: Acc<S> =
                core::array::from_fn(|v| load::<S>(&p.bias, block * width + v * lanes));
            let x = &self.input[row0 * in_size..(row0 + chunk_rows) * in_size];
            for k0 in (0..in_size.max(1)).step_by(KC) {
                let kc = KC.min(in_size - k0);
                for (r0, tile_rows) in row_tiles(chunk_rows) {
                    let mut acc: [Acc<S>; MR] = [bias; MR];
                    if k0 > 0 {
                        copy_rows(&mut acc, &partial[r0..], tile_rows);
                    }
                    let chunk_w = &panel[k0 * width..(k0 + kc) * width];
                    panel_product(
                        simd,
                        &x[r0 * in_size + k0..],
                        in_size,
                        tile_rows,
                        kc,
                        chunk_w,
                        &mut acc,
                    );
                    if k0 + kc < in_size {
                        copy_rows(&mut partial[r0..], &acc, tile_rows);
                        continue;
                    }
                    for (r, regs) in acc.iter().enumerate().take(tile_rows) {
                        let at = (block * rows + row0 + r0 + r) * width;
                        // SAFETY: this item alone writes these columns of these rows.
                        let out = unsafe { self.pre.part(at, width) };
                        for (v, value) in regs.iter().enumerate() {
                            store::<S>(out, v * lanes, *value);
                        }
                    }
                }
            }
        }
    }

    fn trace_h_before(&self, t: usize, prev: &Shared<'_, f32>, rows: &Range<usize>) {
        let Some(trace) = &self.trace else { return };
        let (batch, h_out) = (self.batch, self.packed.h_out);
        // SAFETY: only the group's worker 0 writes these rows of h_before; `prev` is
        // read-only this step.
        let (out, prev) = unsafe {
            (
                trace
                    .h_before
                    .part((t * batch + rows.start) * h_out, rows.len() * h_out),
                prev.read(),
            )
        };
        for (r, b) in rows.clone().enumerate() {
            out[r * h_out..][..h_out].copy_from_slice(&prev[b * self.h_stride..][..h_out]);
        }
    }

    /// Gates and cell update of one unit block for rows `rows` at step `t`. The sum over k
    /// runs in chunks of [`KC`] so that a chunk of the panel stays in L1 while every row
    /// tile uses it; `partial` holds the rows' sums between chunks, then the complete sums
    /// for the cell update's two passes.
    #[inline(always)]
    fn gate_block<S: Simd>(
        &self,
        simd: S,
        t: usize,
        block: usize,
        (prev, next): (&Shared<'_, f32>, &Shared<'_, f32>),
        rows: &Range<usize>,
        partial: &mut [Acc<S>],
    ) {
        let p = self.packed;
        let lanes = S::F32_LANES;
        let (k_len, width) = (p.h_out, PANEL_VECTORS * lanes);
        let all_rows = self.seq_len * self.batch;
        let panel = &p.w_hh[block * k_len * width..][..k_len * width];
        // SAFETY: between the barriers of this step, `pre` and `prev` are only read.
        let (pre, prev_h) = unsafe { (self.pre.read(), prev.read()) };
        for k0 in (0..k_len).step_by(KC) {
            let kc = KC.min(k_len - k0);
            for (r0, tile_rows) in row_tiles(rows.len()) {
                let b0 = rows.start + r0;
                let mut acc: [Acc<S>; MR] = [[simd.splat_f32s(0.0); PANEL_VECTORS]; MR];
                for (r, regs) in acc.iter_mut().enumerate().take(tile_rows) {
                    *regs = if k0 == 0 {
                        let at = (block * all_rows + t * self.batch + b0 + r) * width;
                        core::array::from_fn(|v| load::<S>(pre, at + v * lanes))
                    } else {
                        partial[r0 + r]
                    };
                }
                let a = &prev_h[b0 * self.h_stride + k0..];
                let chunk = &panel[k0 * width..(k0 + kc) * width];
                panel_product(simd, a, self.h_stride, tile_rows, kc, chunk, &mut acc);
                copy_rows(&mut partial[r0..], &acc, tile_rows);
            }
        }
        // two passes over the rows: each row's chain of a pass is short enough for the core
        // to run several rows at once (in one pass, sigmoid → c → tanh(c) left it waiting)
        for (b, z) in rows.clone().zip(partial.iter_mut()) {
            self.gates_and_cell(simd, t, block, b, z);
        }
        for (b, z) in rows.clone().zip(partial.iter()) {
            self.hidden_state(simd, t, block, b, z, prev_h, next);
        }
    }

    /// Where row `b`'s units `block·L..block·L + L` live at step `t` (L = `lanes`).
    #[inline(always)]
    fn cell_at(&self, t: usize, block: usize, b: usize, lanes: usize) -> CellAt {
        let (hidden, j0) = (self.packed.gates.hidden, block * lanes);
        let row = t * self.batch + b;
        CellAt {
            state: b * self.packed.gates.padded() + j0,
            traced: row * hidden + j0,
            traced_gates: row * 4 * hidden + j0,
            units: lanes.min(hidden - j0),
            hidden,
        }
    }

    /// The gates' nonlinearities and the new cell for row `b` of unit block `block`, from its
    /// pre-activations `z` (i, f, g, o): writes c and the trace's gates, and leaves the
    /// output gate in `z[3]` for [`Self::hidden_state`].
    #[inline(always)]
    fn gates_and_cell<S: Simd>(&self, simd: S, t: usize, block: usize, b: usize, z: &mut Acc<S>) {
        let lanes = S::F32_LANES;
        let cell = self.cell_at(t, block, b, lanes);
        // SAFETY: this worker alone writes columns j0..j0+L of `c` and the trace during this
        // step.
        unsafe {
            let c = self.c.part(cell.state, lanes);
            let c_old = load::<S>(c, 0);
            if let Some(trace) = &self.trace {
                let before = trace.c_before.part(cell.traced, cell.units);
                store_partial(simd, before, 0, c_old);
            }
            if t >= self.lengths[b] {
                return;
            }
            match &self.gates {
                GateMath::Standard => {}
                GateMath::Simd(variant) => {
                    return self.peephole_cell(simd, variant, block, (z, c, c_old), &cell);
                }
                GateMath::Lanes(variant) => {
                    return self.variant_cell(simd, variant, (block, lanes), (z, c, c_old), &cell);
                }
            }
            let [i, f, g, o] = [
                sigmoid(simd, z[0]),
                sigmoid(simd, z[1]),
                tanh(simd, z[2]),
                sigmoid(simd, z[3]),
            ];
            store::<S>(c, 0, simd.mul_add_f32s(f, c_old, simd.mul_f32s(i, g)));
            z[3] = o;
            if let Some(trace) = &self.trace {
                for (gate, value) in [i, f, g, o].into_iter().enumerate() {
                    let at = cell.traced_gate(gate);
                    store_partial(simd, trace.gates.part(at, cell.units), 0, value);
                }
            }
        }
    }

    /// [`Self::gates_and_cell`] for a variant with PyTorch's activations (peepholes, clip,
    /// coupled gates), in SIMD: i, f, g and c; `z[3]` keeps o's pre-activation for
    /// [`Self::peephole_output`].
    ///
    /// # Safety
    /// As [`Self::gates_and_cell`].
    #[inline(always)]
    unsafe fn peephole_cell<S: Simd>(
        &self,
        simd: S,
        variant: &Cell,
        block: usize,
        (z, c, c_old): (&mut Acc<S>, &mut [f32], S::f32s),
        at: &CellAt,
    ) {
        let (padded, j0) = (self.packed.gates.padded(), block * S::F32_LANES);
        let (zero, one) = (simd.splat_f32s(0.0), simd.splat_f32s(1.0));
        let [p_i, p_f] = match &self.packed.peephole {
            Some(p) => [0, 1].map(|k| load::<S>(p, k * padded + j0)),
            None => [zero; 2],
        };
        let clip = |x| clipped(simd, x, variant.clip);
        let i = sigmoid(simd, clip(simd.mul_add_f32s(p_i, c_old, z[0])));
        let f = if variant.input_forget {
            simd.sub_f32s(one, i)
        } else {
            sigmoid(simd, clip(simd.mul_add_f32s(p_f, c_old, z[1])))
        };
        let g = tanh(simd, clip(z[2]));
        let c_new = simd.mul_add_f32s(f, c_old, simd.mul_f32s(i, g));
        store::<S>(c, 0, c_new);
        // o needs c_t: it waits for the second pass (Self::hidden_state), as PyTorch's o does
        if let Some(trace) = &self.trace {
            for (gate, value) in [i, f, g].into_iter().enumerate() {
                store_partial(
                    simd,
                    trace.gates.part(at.traced_gate(gate), at.units),
                    0,
                    value,
                );
            }
        }
    }

    /// o and h for a variant with PyTorch's activations: o = σ(clip(z_o + P_o ⊙ c_t)).
    #[inline(always)]
    fn peephole_output<S: Simd>(
        &self,
        simd: S,
        variant: &Cell,
        block: usize,
        z_o: S::f32s,
        c: S::f32s,
    ) -> (S::f32s, S::f32s) {
        let (padded, j0) = (self.packed.gates.padded(), block * S::F32_LANES);
        let p_o = match &self.packed.peephole {
            Some(p) => load::<S>(p, 2 * padded + j0),
            None => simd.splat_f32s(0.0),
        };
        let o = sigmoid(
            simd,
            clipped(simd, simd.mul_add_f32s(p_o, c, z_o), variant.clip),
        );
        (o, simd.mul_f32s(o, tanh(simd, c)))
    }

    /// [`Self::gates_and_cell`] for a cell variant, lane by lane through [`Cell::step`]:
    /// writes c and the trace's gates, and leaves h itself (not o) in `z[3]`.
    ///
    /// # Safety
    /// As [`Self::gates_and_cell`]: this worker alone writes these columns of `c` and the trace.
    #[inline(always)]
    unsafe fn variant_cell<S: Simd>(
        &self,
        simd: S,
        variant: &Cell,
        (block, lanes): (usize, usize),
        (z, c, c_old): (&mut Acc<S>, &mut [f32], S::f32s),
        at: &CellAt,
    ) {
        const MOST: usize = 16;
        let padded = self.packed.gates.padded();
        let mut gates = [[0.0f32; MOST]; 4];
        let mut cells = [0.0f32; MOST];
        for (g, lane) in gates.iter_mut().enumerate() {
            store::<S>(lane, 0, z[g]);
        }
        store::<S>(&mut cells, 0, c_old);
        let mut h = [0.0f32; MOST];
        for l in 0..lanes.min(MOST) {
            let j = block * lanes + l;
            let p = self
                .packed
                .peephole
                .as_ref()
                .map_or([0.0; 3], |p| [p[j], p[padded + j], p[2 * padded + j]]);
            let pre = [gates[0][l], gates[1][l], gates[2][l], gates[3][l]];
            let (acts, c_new, h_new) = variant.step(self.direction, pre, cells[l], p);
            for (g, value) in acts.into_iter().enumerate() {
                gates[g][l] = value;
            }
            cells[l] = c_new;
            h[l] = h_new;
        }
        store::<S>(c, 0, load::<S>(&cells, 0));
        z[3] = load::<S>(&h, 0);
        if let Some(trace) = &self.trace {
            for (g, lane) in gates.iter().enumerate() {
                let part = trace.gates.part(at.traced_gate(g), at.units);
                store_partial(simd, part, 0, load::<S>(lane, 0));
            }
        }
    }

    /// h = o ⊙ tanh(c) for row `b` of unit block `block` after [`Self::gates_and_cell`]
    /// (`z[3]` = o): writes h (or h_full before a projection) and the trace; past the row's
    /// length, h_{t-1} is held.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn hidden_state<S: Simd>(
        &self,
        simd: S,
        t: usize,
        block: usize,
        b: usize,
        z: &Acc<S>,
        prev_h: &[f32],
        next: &Shared<'_, f32>,
    ) {
        let p = self.packed;
        let lanes = S::F32_LANES;
        let (cell, j0) = (self.cell_at(t, block, b, lanes), block * lanes);
        // SAFETY: this worker alone writes columns j0..j0+L of `next`, `h_full` and the trace
        // during this step; it wrote c's in `gates_and_cell`.
        unsafe {
            if t >= self.lengths[b] {
                if p.w_hr.is_none() {
                    let held = load::<S>(prev_h, b * self.h_stride + j0);
                    store::<S>(next.part(b * self.h_stride + j0, lanes), 0, held);
                }
                return;
            }
            let c = load::<S>(self.c.part(cell.state, lanes), 0);
            let h = match &self.gates {
                GateMath::Standard => simd.mul_f32s(z[3], tanh(simd, c)),
                GateMath::Simd(v) => {
                    let (o, h) = self.peephole_output(simd, v, block, z[3], c);
                    if let Some(trace) = &self.trace {
                        store_partial(
                            simd,
                            trace.gates.part(cell.traced_gate(3), cell.units),
                            0,
                            o,
                        );
                    }
                    h
                }
                // the lane-by-lane cell left h itself in z[3]
                GateMath::Lanes(_) => z[3],
            };
            if p.w_hr.is_some() {
                store::<S>(self.h_full.part(cell.state, lanes), 0, h);
            } else {
                store::<S>(next.part(b * self.h_stride + j0, lanes), 0, h);
            }
            if let Some(trace) = &self.trace {
                store_partial(simd, trace.h_full.part(cell.traced, cell.units), 0, h);
            }
        }
    }

    /// h_t = h_full · W_hrᵀ for one panel of outputs and rows `rows` at step `t`.
    #[inline(always)]
    fn projection_panel<S: Simd>(
        &self,
        simd: S,
        t: usize,
        panel_index: usize,
        w_hr: &[f32],
        (prev, next): (&Shared<'_, f32>, &Shared<'_, f32>),
        rows: &Range<usize>,
    ) {
        let p = self.packed;
        let lanes = S::F32_LANES;
        let (hidden, hp, width) = (p.gates.hidden, p.gates.padded(), PANEL_VECTORS * lanes);
        let panel = &w_hr[panel_index * hidden * width..][..hidden * width];
        let p0 = panel_index * width;
        // SAFETY: `h_full` and `prev` are only read between these barriers; this worker
        // alone writes outputs p0..p0+width of `next`.
        let (h_full, prev_h) = unsafe { (self.h_full.read(), prev.read()) };
        for (r0, tile_rows) in row_tiles(rows.len()) {
            let b0 = rows.start + r0;
            let mut acc: [Acc<S>; MR] = [[simd.splat_f32s(0.0); PANEL_VECTORS]; MR];
            panel_product(
                simd,
                &h_full[b0 * hp..],
                hp,
                tile_rows,
                hidden,
                panel,
                &mut acc,
            );
            for (r, h) in acc.iter().enumerate().take(tile_rows) {
                let b = b0 + r;
                let at = b * self.h_stride + p0;
                // SAFETY: this worker's outputs (see above).
                let next = unsafe { next.part(at, width) };
                if t < self.lengths[b] {
                    for (v, value) in h.iter().enumerate() {
                        store::<S>(next, v * lanes, *value);
                    }
                } else {
                    next.copy_from_slice(&prev_h[at..at + width]);
                }
            }
        }
    }
}

/// See [`DirectionJob::cell_at`].
struct CellAt {
    /// the units' index in c and h_full `[B, Hp]`
    state: usize,
    /// their index in the trace's `[T·B, H]` buffers
    traced: usize,
    /// their index in the trace's gates `[T·B, 4H]`, gate i
    traced_gates: usize,
    /// how many are below H
    units: usize,
    hidden: usize,
}

impl CellAt {
    /// The units' index in the trace's gates `[T·B, 4H]`, gate `gate` (i, f, g, o).
    #[inline(always)]
    fn traced_gate(&self, gate: usize) -> usize {
        self.traced_gates + gate * self.hidden
    }
}
