// lstm_common: what the recurrent kernels share. The host prepends this file to
// lstm_step.wgsl, lstm_sequence.wgsl, lstm_proj.wgsl and lstm_backward.wgsl
// (gpu/kernels/sources.rs), so each definition below exists once; it is valid WGSL on its
// own, and naga validates it alone and in front of every kernel.
//
// Time and state slots (the one statement of the rule; gpu/forward/slots.rs is its host twin):
//   Step s runs direction 0 at time t = s and direction 1 at time t = T - 1 - s.
//   Inference (cache == 0): h ping-pongs between 2 slots: step s reads slot s % 2 and writes
//   slot (s + 1) % 2, so no workgroup overwrites an h that another still reads. c has 1 slot,
//   updated in place by its one owner.
//   Training (cache == 1): T + 1 slots by time, for h and for c, kept for the backward pass:
//   direction 0 reads slot t and writes t + 1; direction 1 reads t + 1 and writes t.

// The uniform of the forward step kernels: one slot per layer and chunk of steps.
struct StepParams {
    // T of the whole sequence
    seq_len: u32,
    batch: u32,
    hidden: u32,
    hidden_out: u32,
    dirs: u32,
    // output element (t, b, d * H_out + j) is at t * y_t_stride + b * y_b_stride + d * H_out + j
    y_t_stride: u32,
    y_b_stride: u32,
    // 1: o ⊙ tanh(c) goes to h_full and lstm_proj finishes the step
    proj: u32,
    // 1: training (time slots; gates and h_full kept by time)
    cache: u32,
    // the steps [chunk_start, chunk_start + chunk_len) of this chunk
    chunk_start: u32,
    chunk_len: u32,
    // `pre` holds this chunk only: its row 0 is time pre_t0_fwd for direction 0 and
    // pre_t0_rev for direction 1
    pre_t0_fwd: u32,
    pre_t0_rev: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// The second uniform of the per-step kernels: which step of the chunk a dispatch runs.
struct StepIndex {
    local: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// tanh without overflow for any finite x (exp only sees non-positive arguments).
fn tanh_stable(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, x < 0.0);
}

// The gate activations (i, f, g, o) of the pre-activations z.
fn activate(z: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(sigmoid(z.x), sigmoid(z.y), tanh_stable(z.z), sigmoid(z.w));
}

// (c_t, h_t) of one unit from its activations a = (i, f, g, o) and c_{t-1}.
fn cell(a: vec4<f32>, c_old: f32) -> vec2<f32> {
    let c = a.y * c_old + a.x * a.z;
    return vec2<f32>(c, a.w * tanh_stable(c));
}

// The cell's variant (ONNX's LSTM; src/cell.rs is the specification, gpu/kernels/cell.rs
// passes these). CELL_VARIANT false is PyTorch's cell: activate and cell above, and none of
// the code below runs (the constants are fixed when the pipeline is made, so the branch is
// resolved then, never per element). ACT_* are activation codes (src/cell.rs
// Activation::code), per direction (0, 1); CLIP 0 is no clip.
override CELL_VARIANT: bool = false;
override PEEPHOLE: bool = false;
override INPUT_FORGET: bool = false;
override CLIP: f32 = 0.0;
override ACT_F0: u32 = 0u;
override ACT_G0: u32 = 1u;
override ACT_H0: u32 = 1u;
override ACT_F1: u32 = 0u;
override ACT_G1: u32 = 1u;
override ACT_H1: u32 = 1u;
override ALPHA_F0: f32 = 0.0;
override BETA_F0: f32 = 0.0;
override ALPHA_G0: f32 = 0.0;
override BETA_G0: f32 = 0.0;
override ALPHA_H0: f32 = 0.0;
override BETA_H0: f32 = 0.0;
override ALPHA_F1: f32 = 0.0;
override BETA_F1: f32 = 0.0;
override ALPHA_G1: f32 = 0.0;
override BETA_G1: f32 = 0.0;
override ALPHA_H1: f32 = 0.0;
override BETA_H1: f32 = 0.0;

// Activation `code` (with its alpha and beta) at x.
fn activation(code: u32, x: f32, alpha: f32, beta: f32) -> f32 {
    switch code {
        case 0u: { return sigmoid(x); }
        case 1u: { return tanh_stable(x); }
        case 2u: { return max(x, 0.0); }
        case 3u: { return clamp(alpha * x + beta, 0.0, 1.0); }
        case 4u: { return select(alpha * x, x, x >= 0.0); }
        case 5u: { return select(0.0, x, x > alpha); }
        case 6u: { return alpha * tanh_stable(beta * x); }
        case 7u: { return alpha * x + beta; }
        case 8u: { return select(alpha * (exp(x) - 1.0), x, x >= 0.0); }
        case 9u: { return x / (1.0 + abs(x)); }
        // softplus without overflow: ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|)
        default: { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
    }
}

fn clipped(x: f32) -> f32 {
    if (CLIP > 0.0) {
        return clamp(x, -CLIP, CLIP);
    }
    return x;
}

// The variant's step of one unit: pre-activations z (i, f, g, o, biases in), c_{t-1}, the
// peepholes p (P_i, P_f, P_o, 0; zeros without), direction dir. Returns the activations;
// c_t and h_t go to `out` (x, y).
fn cell_variant(z: vec4<f32>, c_old: f32, p: vec4<f32>, dir: u32, out: ptr<function, vec2<f32>>) -> vec4<f32> {
    let r = dir == 1u;
    let fc = select(ACT_F0, ACT_F1, r);
    let fa = select(ALPHA_F0, ALPHA_F1, r);
    let fb = select(BETA_F0, BETA_F1, r);
    let i = activation(fc, clipped(z.x + p.x * c_old), fa, fb);
    var f = 1.0 - i;
    if (!INPUT_FORGET) {
        f = activation(fc, clipped(z.y + p.y * c_old), fa, fb);
    }
    let g = activation(select(ACT_G0, ACT_G1, r), clipped(z.z), select(ALPHA_G0, ALPHA_G1, r),
        select(BETA_G0, BETA_G1, r));
    let c = f * c_old + i * g;
    let o = activation(fc, clipped(z.w + p.z * c), fa, fb);
    let h = o * activation(select(ACT_H0, ACT_H1, r), c, select(ALPHA_H0, ALPHA_H1, r),
        select(BETA_H0, BETA_H1, r));
    *out = vec2<f32>(c, h);
    return vec4<f32>(i, f, g, o);
}

fn time_of(step: u32, dir: u32, seq_len: u32) -> u32 {
    return select(step, seq_len - 1u - step, dir == 1u);
}

// (slot read, slot written, slot count) of h at `step`.
fn h_slots(step: u32, dir: u32, seq_len: u32, cache: u32) -> vec3<u32> {
    if (cache == 1u) {
        let t = time_of(step, dir, seq_len);
        return vec3<u32>(t + dir, t + 1u - dir, seq_len + 1u);
    }
    return vec3<u32>(step % 2u, (step + 1u) % 2u, 2u);
}

// (slot read, slot written, slot count) of c at `step`.
fn c_slots(step: u32, dir: u32, seq_len: u32, cache: u32) -> vec3<u32> {
    if (cache == 1u) {
        return h_slots(step, dir, seq_len, cache);
    }
    return vec3<u32>(0u, 0u, 1u);
}

// Index of gate i of unit j (row b, time t, direction dir) in `pre`; gate g is g * H further.
fn pre_index(p: StepParams, t: u32, b: u32, dir: u32, j: u32) -> u32 {
    let t0 = select(p.pre_t0_fwd, p.pre_t0_rev, dir == 1u);
    return (((t - t0) * p.batch + b) * p.dirs + dir) * 4u * p.hidden + j;
}

// Index of output element (t, b, dir, j) in y.
fn y_index(p: StepParams, t: u32, b: u32, dir: u32, j: u32) -> u32 {
    return t * p.y_t_stride + b * p.y_b_stride + dir * p.hidden_out + j;
}
