// lstm_step: one timestep of one layer, both directions, fused:
//   z = pre[t] + h_{t-1} · W_hhᵀ            (the four gate matmuls)
//   i = σ(z_i)  f = σ(z_f)  g = tanh(z_g)  o = σ(z_o)
//   c_t = f ⊙ c_{t-1} + i ⊙ g
//   h_t = o ⊙ tanh(c_t)
// pre[t] already holds x_t · W_ihᵀ + b_ih + b_hh (the gemm kernel, for all t at once).
//
// Grid: (ceil(H / WG), ceil(B / BT), D). Invocation x owns hidden unit j of direction
// wid.z for BT batch rows; h_{t-1} is staged through workgroup memory in chunks of K_TILE.
// W_hh is re-laid out at upload as w_hh[(d * H_out + k) * H + j] = vec4(i, f, g, o) rows, so
// neighbouring invocations read neighbouring vec4s.
//
// State slots (see `slots` below). Inference (cache == 0): h ping-pongs between 2 slots (step
// s reads slot s % 2, writes the other), so no workgroup overwrites an h another still reads;
// c has 1 slot, updated in place by its one owner. Training (cache == 1): T + 1 slots indexed
// by time, so every state stays for the backward pass: direction 0 reads slot t and writes
// t + 1, direction 1 reads t + 1 and writes t; the gate activations go to `gates`.
// Rows with t >= lengths[b] carry their state over and write zeros to y (variable lengths).
// With a projection (proj == 1), o ⊙ tanh(c_t) goes to h_full and lstm_proj finishes the step.
//
// Bindings:
//   0 params   uniform StepParams (dynamic offset: one slot per timestep)
//   1 pre      storage, read        [T, B, D * 4H]
//   2 w_hh     storage, read        [D, H_out, H] of vec4 (gates i, f, g, o)
//   3 h_state  storage, read_write  [D, h slots, B, H_out]
//   4 c_state  storage, read_write  [D, c slots, B, H]
//   5 y        storage, read_write  output, element (t, b, d * H_out + j) at t * y_t_stride + b * y_b_stride + ...
//   6 h_full   storage, read_write  [D, T or 1, B, H] (written only when proj == 1 or cache == 1)
//   7 lengths  storage, read        [B] (read only when has_lengths == 1)
//   8 gates    storage, read_write  [D, T, B, H] of vec4 (i, f, g, o) (written only when cache == 1)

struct StepParams {
    seq_len: u32,
    batch: u32,
    hidden: u32,
    hidden_out: u32,
    dirs: u32,
    step: u32,
    y_t_stride: u32,
    y_b_stride: u32,
    proj: u32,
    has_lengths: u32,
    cache: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: StepParams;
@group(0) @binding(1) var<storage, read> pre: array<f32>;
@group(0) @binding(2) var<storage, read> w_hh: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> h_state: array<f32>;
@group(0) @binding(4) var<storage, read_write> c_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> h_full: array<f32>;
@group(0) @binding(7) var<storage, read> lengths: array<u32>;
@group(0) @binding(8) var<storage, read_write> gates: array<vec4<f32>>;

override WG: u32 = 64u;
const BT: u32 = 4u;
const K_TILE: u32 = 64u;

var<workgroup> h_tile: array<array<f32, K_TILE>, BT>;

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// tanh without overflow for any finite x (exp only sees non-positive arguments).
fn tanh_stable(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, x < 0.0);
}

// (slot read, slot written, slot count) of the h state; c uses the same in training.
fn slots(t: u32, dir: u32) -> vec3<u32> {
    if (params.cache == 1u) {
        return vec3<u32>(t + dir, t + 1u - dir, params.seq_len + 1u);
    }
    return vec3<u32>(params.step % 2u, (params.step + 1u) % 2u, 2u);
}

@compute @workgroup_size(WG)
fn lstm_step(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let H = params.hidden;
    let H_out = params.hidden_out;
    let B = params.batch;
    let D = params.dirs;
    let dir = wid.z;
    let j = wid.x * WG + lid.x;
    let b0 = wid.y * BT;
    let t = select(params.step, params.seq_len - 1u - params.step, dir == 1u);
    let slot = slots(t, dir);
    let h_in = (dir * slot.z + slot.x) * B * H_out;
    let h_out = (dir * slot.z + slot.y) * B * H_out;
    // c: in place (one slot) for inference, time slots for training
    var c_slot = vec3<u32>(0u, 0u, 1u);
    if (params.cache == 1u) {
        c_slot = slot;
    }
    let hf_slot = select(0u, t, params.cache == 1u);
    let hf_slots = select(1u, params.seq_len, params.cache == 1u);

    var acc: array<vec4<f32>, BT>;
    for (var k0 = 0u; k0 < H_out; k0 += K_TILE) {
        for (var e = lid.x; e < BT * K_TILE; e += WG) {
            let bb = e / K_TILE;
            let kk = e % K_TILE;
            var value = 0.0;
            if (b0 + bb < B && k0 + kk < H_out) {
                value = h_state[h_in + (b0 + bb) * H_out + k0 + kk];
            }
            h_tile[bb][kk] = value;
        }
        workgroupBarrier();
        if (j < H) {
            let k_end = min(K_TILE, H_out - k0);
            for (var kk = 0u; kk < k_end; kk++) {
                let w = w_hh[(dir * H_out + k0 + kk) * H + j];
                for (var bb = 0u; bb < BT; bb++) {
                    acc[bb] = fma(vec4<f32>(h_tile[bb][kk]), w, acc[bb]);
                }
            }
        }
        workgroupBarrier();
    }
    if (j >= H) {
        return;
    }

    for (var bb = 0u; bb < BT; bb++) {
        let b = b0 + bb;
        if (b >= B) {
            break;
        }
        let len = lengths[b];
        let valid = params.has_lengths == 0u || t < len;
        let p = (t * B + b) * D * 4u * H + dir * 4u * H + j;
        let z = acc[bb] + vec4<f32>(pre[p], pre[p + H], pre[p + 2u * H], pre[p + 3u * H]);
        let i = sigmoid(z.x);
        let f = sigmoid(z.y);
        let g = tanh_stable(z.z);
        let o = sigmoid(z.w);
        let c_in = ((dir * c_slot.z + c_slot.x) * B + b) * H + j;
        let c_out = ((dir * c_slot.z + c_slot.y) * B + b) * H + j;
        let c_old = c_state[c_in];
        let c_new = f * c_old + i * g;
        let h_new = o * tanh_stable(c_new);
        c_state[c_out] = select(c_old, c_new, valid);
        if (params.cache == 1u) {
            gates[((dir * params.seq_len + t) * B + b) * H + j] = select(vec4<f32>(0.0), vec4<f32>(i, f, g, o), valid);
        }
        if (params.proj == 1u || params.cache == 1u) {
            h_full[((dir * hf_slots + hf_slot) * B + b) * H + j] = h_new;
        }
        if (params.proj == 0u) {
            let y_at = t * params.y_t_stride + b * params.y_b_stride + dir * H_out + j;
            if (valid) {
                h_state[h_out + b * H_out + j] = h_new;
                y[y_at] = h_new;
            } else {
                h_state[h_out + b * H_out + j] = h_state[h_in + b * H_out + j];
                y[y_at] = 0.0;
            }
        }
    }
}
