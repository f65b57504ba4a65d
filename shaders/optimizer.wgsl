// Optimizer updates over the flat parameter vector, with PyTorch's rules (torch.optim,
// single-tensor implementations):
//   sgd:  g = grad·clip + wd·p;  momentum: buf = momentum·buf + g, g = buf;  p -= lr·g
//   adam: g = grad·clip;  AdamW (decoupled == 1): p *= 1 - lr·wd, else g += wd·p
//         m += (1 - β1)(g - m);  v = β2·v + (1 - β2)·g²
//         p -= (lr / bc1) · m / (sqrt(v) / sqrt(bc2) + eps),  bc_k = 1 - β_kᵗ
// clip (clip == 1): clip_grad_norm_: coef = min(max_norm / (sqrt(Σ grad²) + 1e-6), 1), the
// squared norm being scalars[1] (reduce_sum). bc1, sqrt(bc2) and lr are scalars[2], [3] and
// [5], written by the host before each step (a schedule changes lr from step to step).
//
// Bindings:
//   0 params   uniform OptParams
//   1 p        storage, read_write  parameters [n]
//   2 grad     storage, read        gradients [n]
//   3 m        storage, read_write  momentum buffer / first moment [n]
//   4 v        storage, read_write  second moment [n] (adam)
//   5 scalars  storage, read        [loss, grad norm², bc1, sqrt(bc2), hits, lr]

struct OptParams {
    n: u32,
    decoupled: u32,
    clip: u32,
    has_momentum: u32,
    momentum: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    max_norm: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: OptParams;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> scalars: array<f32>;

override WG: u32 = 64u;

fn item(lid: vec3<u32>, wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (wid.y * groups.x + wid.x) * WG + lid.x;
}

fn lr() -> f32 {
    return scalars[5];
}

fn clipped(i: u32) -> f32 {
    if (params.clip == 1u) {
        let coef = min(params.max_norm / (sqrt(scalars[1]) + 1e-6), 1.0);
        return grad[i] * coef;
    }
    return grad[i];
}

@compute @workgroup_size(WG)
fn sgd(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = item(lid, wid, groups);
    if (i >= params.n) {
        return;
    }
    var g = clipped(i);
    if (params.weight_decay != 0.0) {
        g += params.weight_decay * p[i];
    }
    if (params.has_momentum == 1u) {
        m[i] = params.momentum * m[i] + g;
        g = m[i];
    }
    p[i] -= lr() * g;
}

@compute @workgroup_size(WG)
fn adam(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = item(lid, wid, groups);
    if (i >= params.n) {
        return;
    }
    var g = clipped(i);
    var param = p[i];
    if (params.decoupled == 1u) {
        param *= 1.0 - lr() * params.weight_decay;
    } else if (params.weight_decay != 0.0) {
        g += params.weight_decay * param;
    }
    let m_new = m[i] + (1.0 - params.beta1) * (g - m[i]);
    let v_new = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
    m[i] = m_new;
    v[i] = v_new;
    let denom = sqrt(v_new) / scalars[3] + params.eps;
    p[i] = param - (lr() / scalars[2]) * (m_new / denom);
}
