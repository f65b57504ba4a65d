// lstm_step: one timestep of one layer, both directions, fused (the per-step kernel):
//   z = pre[t] + h_{t-1} · W_hhᵀ            (the four gate matmuls)
//   (i, f, g, o) = activate(z);  c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)
// (or, with CELL_VARIANT, cell_variant: lstm_common.wgsl)
// pre already holds x_t · W_ihᵀ + b_ih + b_hh for the chunk's steps (gemm.wgsl).
//
// Grid: (ceil(H / U), ceil(B / BT), D). A workgroup owns U hidden units (all four gates) for
// BT batch rows of one direction. Its U * KS invocations split the sum over k < H_out: k goes
// in quads (4 consecutive k), and invocation (u, s), lid = s * U + u, takes the quads
// s, s + KS, s + 2 KS, ... for unit j0 + u and all BT rows. W_hh is laid out at upload as
// w_hh[(d * H_out + k) * H + j] = vec4(i, f, g, o), so the U invocations of a slice read U
// consecutive vec4s, and each weight read serves the BT rows from registers. h_{t-1} of the
// BT rows is staged in workgroup memory, KS * QPI quads at a time. The KS partial sums meet
// in workgroup memory and are added in a fixed order: results are bitwise reproducible.
// Where the device has subgroups, fold_splits first adds groups of SPAN of them with
// subgroup shuffles (fold_splits_subgroup.wgsl; the host prepends one of the two files).
// Latency: loops that load have constant trip counts (after specialisation), so the compiler
// can issue all their loads before it waits on any, and the epilogue's pre, c_{t-1} and length
// are loaded before the sum begins, so those loads overlap the loads of h and W_hh.
//
// Override constants (gpu/kernels/choice.rs picks them per shape and adapter): U units, KS k-slices,
// BT batch rows (at most MAX_BT), QPI quads per slice per stage (at most MAX_QPI).
//
// Rows with t >= lengths[b] carry their state over and write zeros to y (variable lengths).
// With a projection (proj == 1), o ⊙ tanh(c_t) goes to h_full and lstm_proj finishes the step.
//
// Bindings (StepParams, StepIndex and the state-slot rule are in lstm_common.wgsl):
//   0 params   uniform StepParams (dynamic offset: one slot per layer and chunk)
//   1 step     uniform StepIndex  (dynamic offset: one slot per step of the chunk)
//   2 pre      storage, read        [chunk steps, B, D * 4H]
//   3 w_hh     storage, read        [D, H_out, H] of vec4 (gates i, f, g, o), then with
//                                   peepholes [D, H] of vec4 (P_i, P_f, P_o, 0)
//   4 h_state  storage, read_write  [D, h slots, B, H_out]
//   5 c_state  storage, read_write  [D, c slots, B, H]
//   6 y        storage, read_write  see y_index
//   7 h_full   storage, read_write  [D, T or 1, B, H] (written only when proj == 1 or cache == 1)
//   8 lengths  storage, read        [B]
//   9 gates    storage, read_write  [D, T, B, H] of vec4 (i, f, g, o) (written only when cache == 1)

@group(0) @binding(0) var<uniform> params: StepParams;
@group(0) @binding(1) var<uniform> step_index: StepIndex;
@group(0) @binding(2) var<storage, read> pre: array<f32>;
@group(0) @binding(3) var<storage, read> w_hh: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> h_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> c_state: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> h_full: array<f32>;
@group(0) @binding(8) var<storage, read> lengths: array<u32>;
@group(0) @binding(9) var<storage, read_write> gates: array<vec4<f32>>;

override U: u32 = 4u;
override KS: u32 = 64u;
override BT: u32 = 1u;
override QPI: u32 = 2u;
const MAX_BT: u32 = 16u;
const MAX_QPI: u32 = 8u;
// workgroup size, and the rounds in which it stages BT * KS * QPI quads of h, one each
override GROUP_SIZE: u32 = U * KS;
override STAGE_ROUNDS: u32 = (BT * KS * QPI + U * KS - 1u) / (U * KS);

// (array lengths are named overrides: naga 30 mishandles an anonymous one declared before
// a named one)
override H_TILE_LEN: u32 = BT * KS * QPI;
override PARTIAL_LEN: u32 = BT * (KS / SPAN) * U;
var<workgroup> h_tile: array<vec4<f32>, H_TILE_LEN>;
var<workgroup> partial: array<vec4<f32>, PARTIAL_LEN>;

// h[row + k .. row + k + 3], zeros past H_out.
fn h_quad(row: u32, k: u32) -> vec4<f32> {
    let n = params.hidden_out;
    var v = vec4<f32>(0.0);
    if (k < n) {
        v.x = h_state[row + k];
    }
    if (k + 1u < n) {
        v.y = h_state[row + k + 1u];
    }
    if (k + 2u < n) {
        v.z = h_state[row + k + 2u];
    }
    if (k + 3u < n) {
        v.w = h_state[row + k + 3u];
    }
    return v;
}

// What the epilogue of unit j, row b reads besides the sum: loaded early, off the critical path.
struct Inputs {
    pre: vec4<f32>,
    c_old: f32,
    valid: bool,
}

fn load_inputs(step: u32, t: u32, b: u32, j: u32, dir: u32) -> Inputs {
    let H = params.hidden;
    let p = pre_index(params, t, b, dir, j);
    let cs = c_slots(step, dir, params.seq_len, params.cache);
    return Inputs(
        vec4<f32>(pre[p], pre[p + H], pre[p + 2u * H], pre[p + 3u * H]),
        c_state[((dir * cs.z + cs.x) * params.batch + b) * H + j],
        t < lengths[b],
    );
}

// Unit j's peepholes (P_i, P_f, P_o, 0), after W_hh in w_hh; zeros without peepholes.
fn peepholes(dir: u32, j: u32) -> vec4<f32> {
    if (PEEPHOLE) {
        return w_hh[(params.dirs * params.hidden_out + dir) * params.hidden + j];
    }
    return vec4<f32>(0.0);
}

// The rest of the step for unit j of row b, given the recurrent sum.
fn finish(sum: vec4<f32>, inputs: Inputs, step: u32, t: u32, b: u32, j: u32, dir: u32) {
    let H = params.hidden;
    let B = params.batch;
    let H_out = params.hidden_out;
    let T = params.seq_len;
    let cs = c_slots(step, dir, T, params.cache);
    let c_old = inputs.c_old;
    var a: vec4<f32>;
    var ch: vec2<f32>;
    if (CELL_VARIANT) {
        a = cell_variant(sum + inputs.pre, c_old, peepholes(dir, j), dir, &ch);
    } else {
        a = activate(sum + inputs.pre);
        ch = cell(a, c_old);
    }
    let valid = inputs.valid;
    c_state[((dir * cs.z + cs.y) * B + b) * H + j] = select(c_old, ch.x, valid);
    if (params.cache == 1u) {
        gates[((dir * T + t) * B + b) * H + j] = select(vec4<f32>(0.0), a, valid);
    }
    if (params.proj == 1u || params.cache == 1u) {
        let slot = select(0u, t, params.cache == 1u);
        let slots = select(1u, T, params.cache == 1u);
        h_full[((dir * slots + slot) * B + b) * H + j] = ch.y;
    }
    if (params.proj == 0u) {
        let hs = h_slots(step, dir, T, params.cache);
        let h_in = ((dir * hs.z + hs.x) * B + b) * H_out + j;
        h_state[((dir * hs.z + hs.y) * B + b) * H_out + j] = select(h_state[h_in], ch.y, valid);
        y[y_index(params, t, b, dir, j)] = select(0.0, ch.y, valid);
    }
}

@compute @workgroup_size(GROUP_SIZE)
fn lstm_step(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let H = params.hidden;
    let H_out = params.hidden_out;
    let B = params.batch;
    let dir = wid.z;
    let u = lid % U;
    let s = lid / U;
    let b0 = wid.y * BT;
    let step = params.chunk_start + step_index.local;
    let t = time_of(step, dir, params.seq_len);
    let hs = h_slots(step, dir, params.seq_len, params.cache);
    let h_in = (dir * hs.z + hs.x) * B * H_out;
    // units past H read unit H - 1's weights; their sums are never used
    let jw = min(wid.x * U + u, H - 1u);
    let w_row0 = dir * H_out;
    let last_k = H_out - 1u;
    let quads = (H_out + 3u) / 4u;
    let stage = KS * QPI;

    // the epilogue of element e = lid (unit uu, row bb), when it has one: its inputs now
    let first_j = wid.x * U + lid % U;
    let first_b = b0 + lid / U;
    let first_ok = lid < U * BT && first_j < H && first_b < B;
    var first = Inputs(vec4<f32>(0.0), 0.0, false);
    if (first_ok) {
        first = load_inputs(step, t, first_b, first_j, dir);
    }

    var acc: array<vec4<f32>, MAX_BT>;
    for (var q0 = 0u; q0 < quads; q0 += stage) {
        for (var r = 0u; r < STAGE_ROUNDS; r++) {
            let e = lid + r * GROUP_SIZE;
            if (e < BT * stage) {
                let b = b0 + e / stage;
                var v = vec4<f32>(0.0);
                if (b < B) {
                    v = h_quad(h_in + b * H_out, 4u * (q0 + e % stage));
                }
                h_tile[e] = v;
            }
        }
        workgroupBarrier();
        for (var i = 0u; i < QPI; i++) {
            let qq = s + KS * i;
            let k = 4u * (q0 + qq);
            if (k < H_out) {
                // rows past H_out repeat the last row and meet h = 0
                let w0 = w_hh[(w_row0 + k) * H + jw];
                let w1 = w_hh[(w_row0 + min(k + 1u, last_k)) * H + jw];
                let w2 = w_hh[(w_row0 + min(k + 2u, last_k)) * H + jw];
                let w3 = w_hh[(w_row0 + min(k + 3u, last_k)) * H + jw];
                for (var bb = 0u; bb < BT; bb++) {
                    let hv = h_tile[bb * stage + qq];
                    var a = fma(vec4<f32>(hv.x), w0, acc[bb]);
                    a = fma(vec4<f32>(hv.y), w1, a);
                    a = fma(vec4<f32>(hv.z), w2, a);
                    acc[bb] = fma(vec4<f32>(hv.w), w3, a);
                }
            }
        }
        workgroupBarrier();
    }

    // the KS / SPAN partial sums of each unit and row meet in workgroup memory
    let folds = KS / SPAN;
    for (var bb = 0u; bb < BT; bb++) {
        let v = fold_splits(acc[bb]);
        if (s % SPAN == 0u) {
            partial[(bb * folds + s / SPAN) * U + u] = v;
        }
    }
    workgroupBarrier();
    for (var e = lid; e < U * BT; e += GROUP_SIZE) {
        let uu = e % U;
        let bb = e / U;
        let j = wid.x * U + uu;
        let b = b0 + bb;
        if (j < H && b < B) {
            var z = partial[bb * folds * U + uu];
            for (var ss = 1u; ss < folds; ss++) {
                z += partial[(bb * folds + ss) * U + uu];
            }
            var inputs = first;
            if (e != lid) {
                inputs = load_inputs(step, t, b, j, dir);
            }
            finish(z, inputs, step, t, b, j, dir);
        }
    }
}
