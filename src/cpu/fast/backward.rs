//! One layer and direction of the fast backward pass (BPTT). Per step, newest first: the
//! gate gradients in SIMD, then dh_{t-1} = dz_t · W_hh with the packed-panel kernel. The
//! weight gradients wait until every step's dz is known and are then three large products
//! over all timesteps at once, split over the threads.

use pulp::{Simd, WithSimd};

use super::kernel::{panel_product, row_tiles, store_partial, Acc, MR};
use super::math::tanh;
use super::pack::{pack_panels, PANEL_VECTORS};
use super::products::par_gemm_acc;
use super::team::{Shared, StealQueue, Worker};
use crate::cpu::backward::BackwardPass;
use crate::cpu::forward::DirCache;
use crate::cpu::{gemm, CpuLayer, Op};
use crate::shape::Dims;

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
}

/// BPTT through one layer and direction on `threads` threads; see [`BackwardPass`].
pub fn backward_direction(
    layers: &[CpuLayer<f32>],
    (hidden, h_out, directions): (usize, usize, usize),
    threads: usize,
    pass: BackwardPass<'_, f32>,
) -> (Vec<f32>, Vec<f32>) {
    let BackwardPass {
        layer,
        dir,
        dims,
        trace,
        dy,
        grad,
        d_input,
    } = pass;
    let p = &layers[layer * directions + dir];
    let cache = &trace.dirs[layer * directions + dir];
    let (gw, rows) = (4 * hidden, dims.seq_len * dims.batch);
    let in_size = p.w_ih.len() / gw.max(1);
    let mut dz_all = vec![0.0; rows * gw];
    let mut g_all = p.w_hr.as_ref().map(|_| vec![0.0; rows * h_out]);
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
    };
    let (dh, dc) = steps.run(threads, &mut dz_all, g_all.as_deref_mut());

    for row in dz_all.chunks(gw) {
        for (k, &v) in row.iter().enumerate() {
            grad.b_ih[k] += v;
            grad.b_hh[k] += v;
        }
    }
    // dW_hh += Σ_t dz_tᵀ · h_{t-1}; dW_ih += Σ_t dz_tᵀ · x_t; d_input += dz · W_ih
    let dz = &dz_all;
    par_gemm_acc(
        threads,
        (gw, h_out, rows),
        dz,
        Op::T,
        &cache.h_before,
        Op::N,
        &mut grad.w_hh,
    );
    let x = &trace.inputs[layer];
    par_gemm_acc(
        threads,
        (gw, in_size, rows),
        dz,
        Op::T,
        x,
        Op::N,
        &mut grad.w_ih,
    );
    par_gemm_acc(
        threads,
        (rows, in_size, gw),
        dz,
        Op::N,
        &p.w_ih,
        Op::N,
        d_input,
    );
    if let (Some(g_all), Some(dw_hr)) = (&g_all, grad.w_hr.as_mut()) {
        // dW_hr += Σ_t g_tᵀ · h_full_t
        par_gemm_acc(
            threads,
            (h_out, hidden, rows),
            g_all,
            Op::T,
            &cache.h_full,
            Op::N,
            dw_hr,
        );
    }
    (dh, dc)
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
        for step in (0..seq_len).rev() {
            let t = if st.direction == 0 {
                step
            } else {
                seq_len - 1 - step
            };
            let valid = |b: usize| t < st.lengths[b];
            if worker.id == 0 {
                // SAFETY: only worker 0 runs between these barriers.
                unsafe { st.output_gradient(t, sh) };
            }
            worker.sync();
            // SAFETY: workers write disjoint unit chunks of dc and dz; dh_full is read-only.
            unsafe {
                for chunk in self.units.claims(worker, step) {
                    for b in (0..batch).filter(|&b| valid(b)) {
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
                    for (r0, rows) in row_tiles(batch) {
                        let mut acc: [Acc<S>; MR] = [[simd.splat_f32s(0.0); PANEL_VECTORS]; MR];
                        panel_product(simd, &dz[r0 * gw..], gw, rows, gw, panel_w, &mut acc);
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
            worker.sync();
        }
    }
}

impl Steps<'_> {
    /// The step loop on `threads` threads: writes dL/d(gate pre-activations) `dz_all`
    /// (time-major `[T, B, 4H]`) and, with a projection, dL/dh_t `g_all` (`[T, B, P]`);
    /// returns dL/dh0 `[B, H_out]` and dL/dc0 `[B, H]`.
    fn run(
        &self,
        threads: usize,
        dz_all: &mut [f32],
        g_all: Option<&mut [f32]>,
    ) -> (Vec<f32>, Vec<f32>) {
        let batch = self.dims.batch;
        let (hidden, h_out) = (self.hidden, self.h_out);
        let arch = pulp::Arch::new();
        let lanes = super::simd_lanes();
        let (gw, width) = (4 * hidden, PANEL_VECTORS * lanes);
        // panels of W_hh [4H, H_out]: dh_{t-1} = dz_t · W_hh
        let w_hh = pack_panels(gw, h_out, width, |k, n| self.p.w_hh[k * h_out + n]);
        let padded = h_out.div_ceil(width) * width;
        let (mut dh, mut dc) = (vec![0.0; batch * h_out], vec![0.0; batch * hidden]);
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
            let chunks = hidden.div_ceil(lanes);
            let threads = threads.min(chunks.max(padded / width)).max(1);
            let (units, panels) = (
                StealQueue::new(threads, chunks),
                StealQueue::new(threads, padded / width),
            );
            super::team::run_team(threads, |worker| {
                arch.dispatch(StepWork {
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

    /// g = dL/dh_t: the carried part plus this step's output gradient (valid rows only);
    /// dL/d(o ⊙ tanh c_t) through the projection, when there is one.
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
                let at = (t * batch + b) * self.out_width + self.direction * h_out;
                for ((out, &carried), &d) in row
                    .iter_mut()
                    .zip(&dh[b * h_out..])
                    .zip(&self.dy[at..at + h_out])
                {
                    *out = carried + d;
                }
            } else {
                row.fill(0.0);
            }
        }
        match (&self.p.w_hr, &sh.g_all) {
            (Some(w_hr), Some(g_all)) => {
                // SAFETY: the caller's contract.
                unsafe { g_all.part(t * batch * h_out, batch * h_out) }.copy_from_slice(g);
                gemm(batch, hidden, h_out, g, Op::N, w_hr, Op::N, 0.0, dh_full);
            }
            _ => dh_full.copy_from_slice(g),
        }
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
        let load = |s: &[f32], at: usize| simd.partial_load_f32s(&s[at + j0..at + j0 + units]);
        let [i, f, g, o] = [0, 1, 2, 3].map(|gate| load(gates, gate * hidden));
        let c_prev = load(&self.cache.c_before, row * hidden);
        // SAFETY: the caller's contract.
        let (dh_full, dc) = unsafe { (sh.dh_full.read(), sh.dc.part(b * hidden + j0, units)) };
        let dhf = load(dh_full, b * hidden);
        let dc_next = simd.partial_load_f32s(dc);
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
        let sigmoid_grad = |d, s| simd.mul_f32s(d, simd.mul_f32s(s, simd.sub_f32s(one, s)));
        let values = [
            sigmoid_grad(d_i, i),
            sigmoid_grad(d_f, f),
            simd.mul_f32s(d_g, simd.sub_f32s(one, simd.mul_f32s(g, g))),
            sigmoid_grad(d_o, o),
        ];
        for (gate, value) in values.into_iter().enumerate() {
            let at = row * 4 * hidden + gate * hidden + j0;
            // SAFETY: the caller's contract.
            store_partial(simd, unsafe { sh.dz_all.part(at, units) }, 0, value);
        }
    }
}
