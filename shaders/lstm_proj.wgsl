// lstm_proj: the projection that finishes a timestep when proj_size > 0:
//   h_t = h_full · W_hrᵀ     ([B, H] · [H, P] per direction)
// It needs every hidden unit of a batch row, which lstm_step computes across many
// workgroups; WGSL has no grid-wide barrier, so this is a second dispatch per step.
//
// Grid: (ceil(P / WG), B, D). Invocation x owns output unit p of batch row wid.y.
// W_hr is re-laid out at upload as w_hr[(d * H + j) * P + p] (W_hrᵀ), so neighbouring
// invocations read neighbouring weights. Same state slots and length rules as lstm_step.
//
// Bindings:
//   0 params   uniform StepParams (the lstm_step slot of the same timestep)
//   1 h_full   storage, read        [D, T or 1, B, H]
//   2 w_hr     storage, read        [D, H, P]
//   3 h_state  storage, read_write  [D, h slots, B, P]
//   4 y        storage, read_write  as in lstm_step
//   5 lengths  storage, read        [B]

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
@group(0) @binding(1) var<storage, read> h_full: array<f32>;
@group(0) @binding(2) var<storage, read> w_hr: array<f32>;
@group(0) @binding(3) var<storage, read_write> h_state: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> lengths: array<u32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn lstm_proj(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let H = params.hidden;
    let P = params.hidden_out;
    let B = params.batch;
    let D = params.dirs;
    let p = wid.x * WG + lid.x;
    let b = wid.y;
    let dir = wid.z;
    if (p >= P) {
        return;
    }
    let t = select(params.step, params.seq_len - 1u - params.step, dir == 1u);
    // slots as in lstm_step
    var slot = vec3<u32>(params.step % 2u, (params.step + 1u) % 2u, 2u);
    if (params.cache == 1u) {
        slot = vec3<u32>(t + dir, t + 1u - dir, params.seq_len + 1u);
    }
    let h_in = ((dir * slot.z + slot.x) * B + b) * P + p;
    let h_out = ((dir * slot.z + slot.y) * B + b) * P + p;
    let hf_slot = select(0u, t, params.cache == 1u);
    let hf_slots = select(1u, params.seq_len, params.cache == 1u);
    let y_at = t * params.y_t_stride + b * params.y_b_stride + dir * P + p;

    if (params.has_lengths == 1u && t >= lengths[b]) {
        h_state[h_out] = h_state[h_in];
        y[y_at] = 0.0;
        return;
    }
    let row = ((dir * hf_slots + hf_slot) * B + b) * H;
    var sum = 0.0;
    for (var j = 0u; j < H; j++) {
        sum = fma(h_full[row + j], w_hr[(dir * H + j) * P + p], sum);
    }
    h_state[h_out] = sum;
    y[y_at] = sum;
}
