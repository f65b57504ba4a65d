// Backward through one timestep of one layer, both directions (BPTT). Processed from the
// last step to the first; the carried gradients live in `carry`:
//   carry_h [D, B, H_out]: dL/dh after the current step (without the output gradient)
//   carry_c [D, B, H]    : dL/dc after the current step
//
// For step s (time t, next processed step s + 1 at time t_next, which backward visited first):
//   G = (valid(t_next) ? dz_{t_next} · W_hh : carry_h) + (valid(t) ? dY[t] : 0)   -> carry_h
//   with a projection: dh_full = G · W_hr, else dh_full = G
//   c_t = f c_{t-1} + i g,  tc = tanh(c_t)
//   dc = carry_c + dh_full o (1 - tc²);   carry_c <- dc f
//   dz = (dc g · i(1-i), dc c_{t-1} · f(1-f), dc i · (1-g²), dh_full tc · o(1-o))  -> dgates[t]
// Rows with t >= lengths[b] pass both carries through unchanged and get dz = 0.
//
// lstm_backward_step does all of it for hidden unit j in one dispatch per step when there is
// no projection (H_out = H). With a projection, lstm_backward_dh first computes G for every
// output unit (it needs all 4H of dz, computed across workgroups), then lstm_backward_step
// reads it. lstm_backward_dh with has_current = 0 gives dL/dh0 after the last step.
//
// The recurrent part Σ_r dz[b][r] W_hh[r][k] (r over the 4H gate rows) is spread like the
// forward step's sum: a workgroup owns U units k and BT batch rows; its U * KS invocations,
// lid = s * U + u, split the rows r into KS interleaved slices (RPI rows per slice per stage,
// dz staged in workgroup memory), read W_hh in its PyTorch layout [4H, H_out] so that the U
// invocations of a slice read U consecutive weights, use each weight for BT rows, and meet in
// workgroup memory, added in a fixed order (bitwise reproducible). The elementwise part then
// runs for each (unit, row) of the tile.
//
// Grid: (ceil(units / U), ceil(B / BT), D), units = H_out for _dh, H for _step.
// Override constants (gpu/kernels/backward_tiles.rs): U, KS, BT (at most MAX_BT), RPI.
//
// Bindings:
//   0 params   uniform BackParams (dynamic offset: one slot per step)
//   1 weights  storage, read        the flat parameters; W_hh [D, 4H, H_out] at w_hh_offset,
//                                   W_hr [D, P, H] at w_hr_offset
//   2 dgates   storage, read_write  [T, B, D * 4H] gate pre-activation gradients
//   3 dy       storage, read        [T, B, D * H_out] gradient of the layer output
//   4 carry    storage, read_write  carry_h, then carry_c at carry_c_offset
//   5 gates    storage, read        [D, T, B, H] of vec4 (i, f, g, o), from the forward pass
//   6 c_state  storage, read        [D, T + 1, B, H], from the forward pass (training slots,
//                                   lstm_common.wgsl)
//   7 dh_cache storage, read_write  [D, T, B, P]: G per step (projection only)
//   8 lengths  storage, read        [B]

struct BackParams {
    seq_len: u32,
    batch: u32,
    hidden: u32,
    hidden_out: u32,
    dirs: u32,
    next_step: u32,
    has_current: u32,
    has_next: u32,
    w_hh_offset: u32,
    w_hr_offset: u32,
    carry_c_offset: u32,
    proj: u32,
}

@group(0) @binding(0) var<uniform> params: BackParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> dgates: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> carry: array<f32>;
@group(0) @binding(5) var<storage, read> gates: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> c_state: array<f32>;
@group(0) @binding(7) var<storage, read_write> dh_cache: array<f32>;
@group(0) @binding(8) var<storage, read> lengths: array<u32>;

override U: u32 = 64u;
override KS: u32 = 1u;
override BT: u32 = 4u;
override RPI: u32 = 16u;
const MAX_BT: u32 = 16u;
// (array lengths are named overrides: see lstm_step.wgsl)
override GROUP_SIZE: u32 = U * KS;
override STAGE_ROUNDS: u32 = (BT * KS * RPI + U * KS - 1u) / (U * KS);
override DZ_TILE_LEN: u32 = BT * KS * RPI;
override PARTIAL_LEN: u32 = BT * KS * U;

var<workgroup> dz_tile: array<f32, DZ_TILE_LEN>;
var<workgroup> partial: array<f32, PARTIAL_LEN>;

// Σ_r dz_{t_next}[b][r] W_hh[r][k] for the units k0 .. k0 + U - 1 and rows b0 .. b0 + BT - 1
// of direction `dir`, left in `partial` for rec_sum. Every invocation of the workgroup calls
// it (it has barriers).
fn recurrent_sums(k0: u32, b0: u32, dir: u32, t_next: u32, lid: u32) {
    let H4 = 4u * params.hidden;
    let H_out = params.hidden_out;
    let B = params.batch;
    let row_width = params.dirs * H4;
    let u = lid % U;
    let s = lid / U;
    // units past H_out read unit H_out - 1's weights; their sums are never used
    let k = min(k0 + u, H_out - 1u);
    let stage = KS * RPI;
    var acc: array<f32, MAX_BT>;
    for (var r0 = 0u; r0 < H4; r0 += stage) {
        for (var rr = 0u; rr < STAGE_ROUNDS; rr++) {
            let e = lid + rr * GROUP_SIZE;
            if (e < BT * stage) {
                let b = b0 + e / stage;
                let r = r0 + e % stage;
                var value = 0.0;
                if (b < B && r < H4) {
                    value = dgates[(t_next * B + b) * row_width + dir * H4 + r];
                }
                dz_tile[e] = value;
            }
        }
        workgroupBarrier();
        for (var i = 0u; i < RPI; i++) {
            let rl = s + KS * i;
            if (r0 + rl < H4) {
                let w = weights[params.w_hh_offset + (dir * H4 + r0 + rl) * H_out + k];
                for (var bb = 0u; bb < BT; bb++) {
                    acc[bb] = fma(dz_tile[bb * stage + rl], w, acc[bb]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var bb = 0u; bb < BT; bb++) {
        partial[(bb * KS + s) * U + u] = acc[bb];
    }
    workgroupBarrier();
}

// The recurrent sum of unit k0 + u, row b0 + bb, from recurrent_sums, added in split order.
fn rec_sum(u: u32, bb: u32) -> f32 {
    var z = partial[bb * KS * U + u];
    for (var ss = 1u; ss < KS; ss++) {
        z += partial[(bb * KS + ss) * U + u];
    }
    return z;
}

// G for unit k of row b (see the header), given the recurrent part `rec`; updates carry_h.
fn output_grad(k: u32, b: u32, dir: u32, rec: f32) -> f32 {
    let H_out = params.hidden_out;
    let B = params.batch;
    let carry_at = (dir * B + b) * H_out + k;
    var g = carry[carry_at];
    if (params.has_next == 1u) {
        let t_next = time_of(params.next_step, dir, params.seq_len);
        if (t_next < lengths[b]) {
            g = rec;
        }
    }
    if (params.has_current == 1u) {
        let t = time_of(params.next_step - 1u, dir, params.seq_len);
        if (t < lengths[b]) {
            g += dy[(t * B + b) * params.dirs * H_out + dir * H_out + k];
        }
    }
    carry[carry_at] = g;
    return g;
}

@compute @workgroup_size(GROUP_SIZE)
fn lstm_backward_dh(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let dir = wid.z;
    let k0 = wid.x * U;
    let b0 = wid.y * BT;
    if (params.has_next == 1u) {
        recurrent_sums(k0, b0, dir, time_of(params.next_step, dir, params.seq_len), lid);
    }
    for (var e = lid; e < U * BT; e += GROUP_SIZE) {
        let u = e % U;
        let bb = e / U;
        let k = k0 + u;
        let b = b0 + bb;
        if (k >= params.hidden_out || b >= params.batch) {
            continue;
        }
        var rec = 0.0;
        if (params.has_next == 1u) {
            rec = rec_sum(u, bb);
        }
        let g = output_grad(k, b, dir, rec);
        if (params.proj == 1u && params.has_current == 1u) {
            let t = time_of(params.next_step - 1u, dir, params.seq_len);
            let valid = t < lengths[b];
            dh_cache[((dir * params.seq_len + t) * params.batch + b) * params.hidden_out + k] = select(0.0, g, valid);
        }
    }
}

@compute @workgroup_size(GROUP_SIZE)
fn lstm_backward_step(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let H = params.hidden;
    let H_out = params.hidden_out;
    let B = params.batch;
    let T = params.seq_len;
    let dir = wid.z;
    let j0 = wid.x * U;
    let b0 = wid.y * BT;
    let step = params.next_step - 1u;
    let t = time_of(step, dir, params.seq_len);
    if (params.proj == 0u && params.has_next == 1u) {
        recurrent_sums(j0, b0, dir, time_of(params.next_step, dir, params.seq_len), lid);
    }
    let cs = c_slots(step, dir, T, 1u);
    for (var e = lid; e < U * BT; e += GROUP_SIZE) {
        let u = e % U;
        let bb = e / U;
        let j = j0 + u;
        let b = b0 + bb;
        if (j >= H || b >= B) {
            continue;
        }
        var dh_full = 0.0;
        if (params.proj == 0u) {
            var rec = 0.0;
            if (params.has_next == 1u) {
                rec = rec_sum(u, bb);
            }
            dh_full = output_grad(j, b, dir, rec);
        } else {
            let row = (dir * B + b) * H_out;
            for (var p = 0u; p < H_out; p++) {
                dh_full = fma(carry[row + p], weights[params.w_hr_offset + (dir * H_out + p) * H + j], dh_full);
            }
        }
        let dz_at = (t * B + b) * params.dirs * 4u * H + dir * 4u * H + j;
        if (t >= lengths[b]) {
            dgates[dz_at] = 0.0;
            dgates[dz_at + H] = 0.0;
            dgates[dz_at + 2u * H] = 0.0;
            dgates[dz_at + 3u * H] = 0.0;
            continue;
        }
        let a = gates[((dir * T + t) * B + b) * H + j];
        let c_prev = c_state[((dir * cs.z + cs.x) * B + b) * H + j];
        let c_t = c_state[((dir * cs.z + cs.y) * B + b) * H + j];
        let tc = tanh_stable(c_t);
        let carry_c_at = params.carry_c_offset + (dir * B + b) * H + j;
        let dc = carry[carry_c_at] + dh_full * a.w * (1.0 - tc * tc);
        carry[carry_c_at] = dc * a.y;
        dgates[dz_at] = dc * a.z * a.x * (1.0 - a.x);
        dgates[dz_at + H] = dc * c_prev * a.y * (1.0 - a.y);
        dgates[dz_at + 2u * H] = dc * a.x * (1.0 - a.z * a.z);
        dgates[dz_at + 3u * H] = dh_full * tc * a.w * (1.0 - a.w);
    }
}
