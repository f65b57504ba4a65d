// lstm_proj: the projection that finishes a timestep when proj_size > 0:
//   h_t = h_full · W_hrᵀ     ([B, H] · [H, P] per direction)
// It needs every hidden unit of a batch row, which lstm_step computes across many
// workgroups; WGSL has no grid-wide barrier, so this is a second dispatch per step.
//
// Grid: (ceil(P / WG), B, D). Invocation x owns output unit p of batch row wid.y.
// W_hr is re-laid out at upload as w_hr[(d * H + j) * P + p] (W_hrᵀ), so neighbouring
// invocations read neighbouring weights. Same state slots and length rules as lstm_step.
//
// Bindings (StepParams, StepIndex and the state-slot rule are in lstm_common.wgsl):
//   0 params   uniform StepParams (the lstm_step slot of the same layer and chunk)
//   1 step     uniform StepIndex  (the lstm_step slot of the same step)
//   2 h_full   storage, read        [D, T or 1, B, H]
//   3 w_hr     storage, read        [D, H, P]
//   4 h_state  storage, read_write  [D, h slots, B, P]
//   5 y        storage, read_write  as in lstm_step
//   6 lengths  storage, read        [B]

@group(0) @binding(0) var<uniform> params: StepParams;
@group(0) @binding(1) var<uniform> step_index: StepIndex;
@group(0) @binding(2) var<storage, read> h_full: array<f32>;
@group(0) @binding(3) var<storage, read> w_hr: array<f32>;
@group(0) @binding(4) var<storage, read_write> h_state: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> lengths: array<u32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn lstm_proj(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let H = params.hidden;
    let P = params.hidden_out;
    let B = params.batch;
    let p = wid.x * WG + lid.x;
    let b = wid.y;
    let dir = wid.z;
    if (p >= P) {
        return;
    }
    let step = params.chunk_start + step_index.local;
    let t = time_of(step, dir, params.seq_len);
    let slot = h_slots(step, dir, params.seq_len, params.cache);
    let h_in = ((dir * slot.z + slot.x) * B + b) * P + p;
    let h_out = ((dir * slot.z + slot.y) * B + b) * P + p;
    let hf_slot = select(0u, t, params.cache == 1u);
    let hf_slots = select(1u, params.seq_len, params.cache == 1u);
    let y_at = y_index(params, t, b, dir, p);

    if (t >= lengths[b]) {
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
