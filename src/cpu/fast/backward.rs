//! One layer and direction of the fast backward pass (BPTT). Per step, newest first: the
//! gate gradients in SIMD, then dh_{t-1} = dz_t · W_hh with the packed-panel kernel. The
//! weight gradients wait until every step's dz is known and are then three large products
//! over all timesteps at once, split over the threads.

use pulp::{Simd, WithSimd};

use super::kernel::{
    copy_rows, load_partial, panel_product, row_tiles, store_partial, Acc, KC, MR,
};
use super::math::tanh;
use super::pack::{pack_panels, PANEL_VECTORS};
use super::reuse::Reuse;
use super::simd::Isa;
use super::team::{Shared, StealQueue, Worker};
use crate::cpu::backward::BackwardPass;
use crate::cpu::forward::DirCache;
use crate::cpu::products::par_gemm_acc;
use crate::cpu::{gemm, CpuLayer, Op};
use crate::error::Result;
use crate::host::try_filled;
use crate::shape::Dims;

/// Unit chunks (vectors) per item of the gate-gradient phase.
const GROUP: usize = 8;

/// The parts of one direction's BPTT that run step by step.
struct Steps<'a> {
    p: &'a CpuLayer<f32>,
    cache: &'a DirCache<f32>,
    lengths: &'a [usize],
    dims: Dims,
    direction: usize,
    hidden: usize,
    h_out: usize,
    out_width: usize,
    dy: &'a [f32],
    /// where the carried dL/dh starts (a per-sequence loss), else zero
    dh_last: Option<&'a [f32]>,
}

/// BPTT through one layer and direction on `threads` threads; see [`BackwardPass`].
pub fn backward_direction(
    layers: &[CpuLayer<f32>],
    (hidden, h_out, directions): (usize, usize, usize),
    (isa, threads, reuse): (Isa, usize, &Reuse),
    pass: BackwardPass<'_, f32>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let BackwardPass {
        layer,
        dir,
        dims,
        trace,
        dy,
        dh_last,
        grad,
        d_input,
    } = pass;
    let p = &layers[layer * directions + dir];
    let cache = &trace.dirs[layer * directions + dir];
    let (gw, rows) = (4 * hidden, dims.seq_len * dims.batch);
    let in_size = p.w_ih.len() / gw.max(1);
    // rows past their length keep dz = 0
    let mut dz_all = reuse.zeros("gate gradients [T*B, 4H]", rows * gw)?;
    let mut g_all = match p.w_hr {
        Some(_) => Some(try_filled(
            "projection gradients [T*B, P]",
            rows * h_out,
            0.0,
        )?),
        None => None,
    };
    let steps = Steps {
        p,
        cache,
        lengths: &trace.lengths,
        dims,
        direction: dir,
        hidden,
        h_out,
        out_width: directions * h_out,
        dy,
        dh_last,
    };
    let (dh, dc) = steps.run(isa, threads, &mut dz_all, g_all.as_deref_mut());

    let mut db = vec![0.0; gw];
    for row in dz_all.chunks(gw) {
        for (sum, &v) in db.iter_mut().zip(row) {
            *sum += v;
        }
    }
    for ((b_ih, b_hh), &v) in grad.b_ih.iter_mut().zip(&mut grad.b_hh).zip(&db) {
        *b_ih += v;
        *b_hh += v;
    }
    // dW_hh += Σ_t dz_tᵀ · h_{t-1}; dW_ih += Σ_t dz_tᵀ · x_t; d_input += dz · W_ih
    let dz = &dz_all;
    par_gemm_acc(
        threads,
        (gw, h_out, rows),
        (dz, Op::T),
        (&cache.h_before, Op::N),
        &mut grad.w_hh,
    );
    let x = &trace.inputs[layer];
    par_gemm_acc(
        threads,
        (gw, in_size, rows),
        (dz, Op::T),
        (x, Op::N),
        &mut grad.w_ih,
    );
    if let Some(d_input) = d_input {
        par_gemm_acc(
            threads,
            (rows, in_size, gw),
            (dz, Op::N),
            (&p.w_ih, Op::N),
            d_input,
        );
    }
    if let (Some(g_all), Some(dw_hr)) = (&g_all, grad.w_hr.as_mut()) {
        // dW_hr += Σ_t g_tᵀ · h_full_t
        par_gemm_acc(
            threads,
            (h_out, hidden, rows),
            (g_all, Op::T),
            (&cache.h_full, Op::N),
            dw_hr,
        );
    }
    reuse.give(dz_all);
    Ok((dh, dc))
}

/// The step loop's buffers, shared by the team.
struct Shares<'a> {
    /// dL/dh after the current step (carried), `[B, H_out]`
    dh: Shared<'a, f32>,
    /// dL/dc after the current step (carried), `[B, H]`
    dc: Shared<'a, f32>,
    /// dL/dh_t `[B, H_out]`
    g: Shared<'a, f32>,
    /// dL/d(o ⊙ tanh c_t) `[B, H]`
    dh_full: Shared<'a, f32>,
    /// dz_t · W_hh, `[B, padded H_out]`
    dh_prev: Shared<'a, f32>,
    dz_all: Shared<'a, f32>,
    g_all: Option<Shared<'a, f32>>,
}

/// One worker's part of the step loop, on the machine's SIMD.
struct StepWork<'a> {
    steps: &'a Steps<'a>,
    shares: &'a Shares<'a>,
    w_hh: &'a [f32],
    units: &'a StealQueue,
    panels: &'a StealQueue,
    worker: &'a Worker<'a>,
}

impl WithSimd for StepWork<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let StepWork {
            steps: st,
            shares: sh,
            w_hh,
            worker,
            ..
        } = self;
        let Dims { seq_len, batch } = st.dims;
        let (hidden, h_out, lanes) = (st.hidden, st.h_out, S::F32_LANES);
        let (gw, width) = (4 * hidden, PANEL_VECTORS * lanes);
        let padded = h_out.div_ceil(width) * width;
        let n_chunks = hidden.div_ceil(lanes);
        let groups = n_chunks.div_ceil(GROUP);
        // each row's sums between k chunks
        let mut partial: Vec<Acc<S>> = vec![[simd.splat_f32s(0.0); PANEL_VECTORS]; batch];
        for step in (0..seq_len).rev() {
            let t = if st.direction == 0 {
                step
            } else {
                seq_len - 1 - step
            };
            let valid = |b: usize| t < st.lengths[b];
            // with a projection, dL/dh_full needs every output of g: one worker, a barrier
            let projected = st.p.w_hr.is_some();
            if projected {
                if worker.id == 0 {
                    // SAFETY: only worker 0 runs between these barriers.
                    unsafe { st.output_gradient(t, sh) };
                }
                worker.sync();
            }
            // items are (row, group of unit chunks), so each item reads contiguous memory
            // SAFETY: items write disjoint units of one row of dh_full, dc and dz, and read
            // only those units of dh_full.
            unsafe {
                for item in self.units.claims(worker, step) {
                    let (b, group) = (item / groups, item % groups);
                    if !valid(b) {
                        continue;
                    }
                    let first = group * GROUP;
                    let last = (first + GROUP).min(n_chunks);
                    if !projected {
                        st.carried_gradient(t, b, first * lanes, last * lanes, sh);
                    }
                    for chunk in first..last {
                        st.gate_gradients(simd, t, b, chunk * lanes, sh);
                    }
                }
            }
            worker.sync();
            // dh_{t-1} = dz_t · W_hh for valid rows; the others carry dh unchanged
            // SAFETY: workers write disjoint panels of dh_prev and dh; dz is read-only.
            unsafe {
                let dz = &sh.dz_all.read()[t * batch * gw..(t + 1) * batch * gw];
                for panel in self.panels.claims(worker, step) {
                    let panel_w = &w_hh[panel * gw * width..(panel + 1) * gw * width];
                    let n0 = panel * width;
                    let outputs = width.min(h_out - n0);
                    // k in chunks of KC, so a chunk of the panel stays in L1 for every tile
                    for k0 in (0..gw).step_by(KC) {
                        let kc = KC.min(gw - k0);
                        let chunk = &panel_w[k0 * width..(k0 + kc) * width];
                        for (r0, rows) in row_tiles(batch) {
                            let mut acc: [Acc<S>; MR] = [[simd.splat_f32s(0.0); PANEL_VECTORS]; MR];
                            if k0 > 0 {
                                copy_rows(&mut acc, &partial[r0..], rows);
                            }
                            panel_product(simd, &dz[r0 * gw + k0..], gw, rows, kc, chunk, &mut acc);
                            if k0 + kc < gw {
                                copy_rows(&mut partial[r0..], &acc, rows);
                                continue;
                            }
                            for (r, regs) in acc.iter().enumerate().take(rows) {
                                let b = r0 + r;
                                let out = sh.dh_prev.part(b * padded + n0, width);
                                for (v, value) in regs.iter().enumerate() {
                                    store_partial(simd, out, v * lanes, *value);
                                }
                                if valid(b) {
                                    sh.dh
                                        .part(b * h_out + n0, outputs)
                                        .copy_from_slice(&out[..outputs]);
                                }
                            }
                        }
                    }
                }
            }
            worker.sync();
        }
    }
}

/// `d · s(1 - s)`: the gradient through a sigmoid whose output was `s`.
#[inline(always)]
fn sigmoid_grad<S: Simd>(simd: S, d: S::f32s, s: S::f32s) -> S::f32s {
    let one = simd.splat_f32s(1.0);
    simd.mul_f32s(d, simd.mul_f32s(s, simd.sub_f32s(one, s)))
}

impl Steps<'_> {
    /// The step loop on `threads` threads: writes dL/d(gate pre-activations) `dz_all`
    /// (time-major `[T, B, 4H]`) and, with a projection, dL/dh_t `g_all` (`[T, B, P]`);
    /// returns dL/dh0 `[B, H_out]` and dL/dc0 `[B, H]`.
    fn run(
        &self,
        isa: Isa,
        threads: usize,
        dz_all: &mut [f32],
        g_all: Option<&mut [f32]>,
    ) -> (Vec<f32>, Vec<f32>) {
        let batch = self.dims.batch;
        let (hidden, h_out) = (self.hidden, self.h_out);
        let lanes = isa.lanes();
        let (gw, width) = (4 * hidden, PANEL_VECTORS * lanes);
        // panels of W_hh [4H, H_out]: dh_{t-1} = dz_t · W_hh
        let w_hh = pack_panels(gw, h_out, width, |k, n| self.p.w_hh[k * h_out + n]);
        let padded = h_out.div_ceil(width) * width;
        let mut dh = self
            .dh_last
            .map_or_else(|| vec![0.0; batch * h_out], <[f32]>::to_vec);
        let mut dc = vec![0.0; batch * hidden];
        let mut g = vec![0.0; batch * h_out];
        let mut dh_full = vec![0.0; batch * hidden];
        let mut dh_prev = vec![0.0; batch * padded];
        {
            let shares = Shares {
                dh: Shared::new(&mut dh),
                dc: Shared::new(&mut dc),
                g: Shared::new(&mut g),
                dh_full: Shared::new(&mut dh_full),
                dh_prev: Shared::new(&mut dh_prev),
                dz_all: Shared::new(dz_all),
                g_all: g_all.map(Shared::new),
            };
            let items = batch * hidden.div_ceil(lanes).div_ceil(GROUP);
            let threads = threads.min(items.max(padded / width)).max(1);
            let (units, panels) = (
                StealQueue::new(threads, items),
                StealQueue::new(threads, padded / width),
            );
            super::team::run_team(threads, |worker| {
                isa.dispatch(StepWork {
                    steps: self,
                    shares: &shares,
                    w_hh: &w_hh,
                    units: &units,
                    panels: &panels,
                    worker,
                })
            });
        }
        (dh, dc)
    }

    /// With a projection: g = dL/dh_t for every row (zero past a row's length), then
    /// dL/d(o ⊙ tanh c_t) = g · W_hr. (Without one, `carried_gradient` does the first part
    /// per unit group and g is dL/d(o ⊙ tanh c_t) itself.)
    ///
    /// # Safety
    /// No other thread may touch `sh` meanwhile.
    unsafe fn output_gradient(&self, t: usize, sh: &Shares<'_>) {
        let (batch, h_out, hidden) = (self.dims.batch, self.h_out, self.hidden);
        // SAFETY: the caller's contract.
        let (g, dh, dh_full) = unsafe {
            (
                sh.g.part(0, batch * h_out),
                sh.dh.read(),
                sh.dh_full.part(0, batch * hidden),
            )
        };
        for b in 0..batch {
            let row = &mut g[b * h_out..(b + 1) * h_out];
            if t < self.lengths[b] {
                self.carried_plus_output(t, b, 0, dh, row);
            } else {
                row.fill(0.0);
            }
        }
        if let (Some(w_hr), Some(g_all)) = (&self.p.w_hr, &sh.g_all) {
            // SAFETY: the caller's contract.
            unsafe { g_all.part(t * batch * h_out, batch * h_out) }.copy_from_slice(g);
            gemm(batch, hidden, h_out, g, Op::N, w_hr, Op::N, 0.0, dh_full);
        }
    }

    /// `out[k]` = dL/dh_t of unit `u0 + k` of row `b`: the carried `dh` plus this step's
    /// output gradient.
    #[inline(always)]
    fn carried_plus_output(&self, t: usize, b: usize, u0: usize, dh: &[f32], out: &mut [f32]) {
        let h_out = self.h_out;
        let at = (t * self.dims.batch + b) * self.out_width + self.direction * h_out + u0;
        let carried = &dh[b * h_out + u0..][..out.len()];
        for ((out, &carried), &d) in out.iter_mut().zip(carried).zip(&self.dy[at..]) {
            *out = carried + d;
        }
    }

    /// dL/dh_full = dL/dh_t for units u0..u1 of valid row `b` at step `t`, without a
    /// projection: the carried part plus this step's output gradient.
    ///
    /// # Safety
    /// No other thread may touch units u0..u1 of row `b` of `sh.dh_full`, or write `sh.dh`,
    /// meanwhile.
    #[inline(always)]
    unsafe fn carried_gradient(&self, t: usize, b: usize, u0: usize, u1: usize, sh: &Shares<'_>) {
        let hidden = self.hidden;
        let u1 = u1.min(hidden);
        // SAFETY: the caller's contract.
        let (dh, out) = unsafe { (sh.dh.read(), sh.dh_full.part(b * hidden + u0, u1 - u0)) };
        self.carried_plus_output(t, b, u0, dh, out);
    }

    /// dz for units j0..j0+L of row `b` at step `t`, from dL/dh_full and the carried dL/dc
    /// (which it advances to dL/dc_{t-1}).
    ///
    /// # Safety
    /// No other thread may touch units j0..j0+L of `sh.dc` and `sh.dz_all` at step `t`, or
    /// write `sh.dh_full`, meanwhile.
    #[inline(always)]
    unsafe fn gate_gradients<S: Simd>(
        &self,
        simd: S,
        t: usize,
        b: usize,
        j0: usize,
        sh: &Shares<'_>,
    ) {
        let (hidden, batch) = (self.hidden, self.dims.batch);
        let units = S::F32_LANES.min(hidden - j0);
        let row = t * batch + b;
        let gates = &self.cache.gates[row * 4 * hidden..(row + 1) * 4 * hidden];
        // each gate's slice ends where its units end, so a partial block loads partially
        let i = load_partial(simd, &gates[..hidden], j0);
        let f = load_partial(simd, &gates[..2 * hidden], hidden + j0);
        let g = load_partial(simd, &gates[..3 * hidden], 2 * hidden + j0);
        let o = load_partial(simd, gates, 3 * hidden + j0);
        let c_prev = load_partial(
            simd,
            &self.cache.c_before[..(row + 1) * hidden],
            row * hidden + j0,
        );
        // SAFETY: the caller's contract.
        let (dh_full, dc) = unsafe { (sh.dh_full.read(), sh.dc.part(b * hidden + j0, units)) };
        let dhf = load_partial(simd, &dh_full[..(b + 1) * hidden], b * hidden + j0);
        let dc_next = load_partial(simd, dc, 0);
        let one = simd.splat_f32s(1.0);
        let tc = tanh(simd, simd.mul_add_f32s(f, c_prev, simd.mul_f32s(i, g)));
        let d_o = simd.mul_f32s(dhf, tc);
        let dtanh = simd.sub_f32s(one, simd.mul_f32s(tc, tc));
        let dct = simd.mul_add_f32s(simd.mul_f32s(dhf, o), dtanh, dc_next);
        let (d_i, d_f, d_g) = (
            simd.mul_f32s(dct, g),
            simd.mul_f32s(dct, c_prev),
            simd.mul_f32s(dct, i),
        );
        store_partial(simd, dc, 0, simd.mul_f32s(dct, f));
        // σ' = s(1 - s), tanh' = 1 - g²
        let values = [
            sigmoid_grad(simd, d_i, i),
            sigmoid_grad(simd, d_f, f),
            simd.mul_f32s(d_g, simd.sub_f32s(one, simd.mul_f32s(g, g))),
            sigmoid_grad(simd, d_o, o),
        ];
        let at = row * 4 * hidden + j0;
        for (gate, value) in values.into_iter().enumerate() {
            // SAFETY: the caller's contract.
            let out = unsafe { sh.dz_all.part(at + gate * hidden, units) };
            store_partial(simd, out, 0, value);
        }
    }
}
