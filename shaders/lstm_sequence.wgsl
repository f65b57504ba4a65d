// lstm_sequence: every step of a chunk in ONE dispatch, for small H without a projection.
// Per step, the same math as lstm_step.wgsl:
//   (i, f, g, o) = activate(pre[t] + h_{t-1} · W_hhᵀ);  c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)
//
// Grid: (B, D). A workgroup carries one batch row of one direction through the steps
// [chunk_start, chunk_start + chunk_len) of its layer. Rows and directions are independent,
// so no workgroup ever waits for another: workgroupBarrier between steps is all it takes.
// Workgroup: H * KS invocations; invocation (j, s), lid = j * KS + s, keeps the vec4
// (i, f, g, o) weights of unit j for k = s, s + KS, s + 2 KS, ... (L <= MAX_L of them) in
// registers for the whole dispatch. h_{t-1} lives in workgroup memory, in two halves that
// alternate (a step reads one and writes the other, so one barrier per step separates them);
// c_t stays in a register of invocation (j, 0). The KS partial sums of a unit are added by
// split_sum, in a fixed order: through workgroup memory (split_sum.wgsl, one more barrier per
// step) or with subgroup shuffles (split_sum_subgroup.wgsl, where the device has subgroups);
// the host prepends one of them. pre is staged in workgroup memory P steps
// at a time, so a step waits on no global load: one round of loads serves P steps.
//
// Override constants (gpu/kernels/recurrence.rs): H = the hidden size, KS k-slices, L = ceil(H / KS),
// P steps of pre per staging round.
//
// Rows with t >= lengths[b] carry their state over and write zeros to y (variable lengths).
// Inference writes the state back once, at the end of the chunk, into the slot the next step
// reads; training writes every step's state to its time slot (lstm_common.wgsl).
//
// Bindings (StepParams and the state-slot rule are in lstm_common.wgsl):
//   0 params   uniform StepParams (dynamic offset: one slot per layer and chunk)
//   1 pre      storage, read        [chunk steps, B, D * 4H]
//   2 w_hh     storage, read        [D, H, H] of vec4 (gates i, f, g, o), then the
//                                   peepholes [D, H] of vec4, as in lstm_step
//   3 h_state  storage, read_write  [D, h slots, B, H]
//   4 c_state  storage, read_write  [D, c slots, B, H]
//   5 y        storage, read_write  see y_index
//   6 h_full   storage, read_write  [D, T, B, H] (written only when cache == 1)
//   7 lengths  storage, read        [B]
//   8 gates    storage, read_write  [D, T, B, H] of vec4 (i, f, g, o) (written only when cache == 1)

@group(0) @binding(0) var<uniform> params: StepParams;
@group(0) @binding(1) var<storage, read> pre: array<f32>;
@group(0) @binding(2) var<storage, read> w_hh: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> h_state: array<f32>;
@group(0) @binding(4) var<storage, read_write> c_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> h_full: array<f32>;
@group(0) @binding(7) var<storage, read> lengths: array<u32>;
@group(0) @binding(8) var<storage, read_write> gates: array<vec4<f32>>;

override H: u32 = 1u;
override KS: u32 = 1u;
override L: u32 = 1u;
override P: u32 = 8u;
const MAX_L: u32 = 32u;

// two halves of KS * L floats (>= H; the tail stays zero)
override H_BUF_LEN: u32 = 2u * KS * L;
var<workgroup> h_buf: array<f32, H_BUF_LEN>;
// pre of unit j at step n0 + n of the round: pre_tile[n * H + j] = (i, f, g, o)
override PRE_TILE_LEN: u32 = P * H;
var<workgroup> pre_tile: array<vec4<f32>, PRE_TILE_LEN>;

fn load_pre(t: u32, b: u32, dir: u32, j: u32) -> vec4<f32> {
    let p = pre_index(params, t, b, dir, j);
    return vec4<f32>(pre[p], pre[p + H], pre[p + 2u * H], pre[p + 3u * H]);
}

@compute @workgroup_size(H * KS)
fn lstm_sequence(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let B = params.batch;
    let T = params.seq_len;
    let cache = params.cache;
    let b = wid.x;
    let dir = wid.y;
    let j = lid / KS;
    let s = lid % KS;
    let half = KS * L;
    let first = params.chunk_start;
    let steps = params.chunk_len;

    var w: array<vec4<f32>, MAX_L>;
    for (var i = 0u; i < L; i++) {
        let k = s + KS * i;
        if (k < H) {
            w[i] = w_hh[(dir * H + k) * H + j];
        }
    }
    // unit j's peepholes, after W_hh (cell variants only)
    var peep = vec4<f32>(0.0);
    if (PEEPHOLE) {
        peep = w_hh[(params.dirs * H + dir) * H + j];
    }
    let len = lengths[b];
    let hs0 = h_slots(first, dir, T, cache);
    let cs0 = c_slots(first, dir, T, cache);
    var h = 0.0;
    var c = 0.0;
    if (s == 0u) {
        h = h_state[((dir * hs0.z + hs0.x) * B + b) * H + j];
        c = c_state[((dir * cs0.z + cs0.x) * B + b) * H + j];
        h_buf[j] = h;
    }

    for (var n0 = 0u; n0 < steps; n0 += P) {
        // a constant number of rounds, so every load is issued before the first store
        for (var r = 0u; r < (P + KS - 1u) / KS; r++) {
            let e = lid + r * H * KS;
            let n = n0 + e / H;
            if (e < P * H && n < steps) {
                pre_tile[e] = load_pre(time_of(first + n, dir, T), b, dir, e % H);
            }
        }
        workgroupBarrier();
        for (var dn = 0u; dn < P && n0 + dn < steps; dn++) {
            let n = n0 + dn;
            let step = first + n;
            let t = time_of(step, dir, T);
            let cur = (n % 2u) * half;
            // two accumulators halve the dependent chain
            var acc0 = vec4<f32>(0.0);
            var acc1 = vec4<f32>(0.0);
            for (var i = 0u; i < L / 2u; i++) {
                acc0 = fma(vec4<f32>(h_buf[cur + s + KS * 2u * i]), w[2u * i], acc0);
                acc1 = fma(vec4<f32>(h_buf[cur + s + KS * (2u * i + 1u)]), w[2u * i + 1u], acc1);
            }
            if (L % 2u == 1u) {
                acc0 = fma(vec4<f32>(h_buf[cur + s + KS * (L - 1u)]), w[L - 1u], acc0);
            }
            let z = split_sum(acc0 + acc1, j, s);
            if (s == 0u) {
                var a: vec4<f32>;
                var ch: vec2<f32>;
                if (CELL_VARIANT) {
                    a = cell_variant(z + pre_tile[dn * H + j], c, peep, dir, &ch);
                } else {
                    a = activate(z + pre_tile[dn * H + j]);
                    ch = cell(a, c);
                }
                let valid = t < len;
                if (valid) {
                    c = ch.x;
                    h = ch.y;
                }
                h_buf[half - cur + j] = h;
                y[y_index(params, t, b, dir, j)] = select(0.0, ch.y, valid);
                if (cache == 1u) {
                    let at = ((dir * T + t) * B + b) * H + j;
                    gates[at] = select(vec4<f32>(0.0), a, valid);
                    h_full[at] = ch.y;
                    let hs = h_slots(step, dir, T, cache);
                    let slot = ((dir * hs.z + hs.y) * B + b) * H + j;
                    h_state[slot] = h;
                    c_state[slot] = c;
                }
            }
            workgroupBarrier();
        }
    }

    if (s == 0u && cache == 0u) {
        // the slots the chunk's next step reads (c has one slot)
        let hs = h_slots(first + steps, dir, T, cache);
        h_state[((dir * hs.z + hs.x) * B + b) * H + j] = h;
        c_state[((dir * cs0.z + cs0.x) * B + b) * H + j] = c;
    }
}
