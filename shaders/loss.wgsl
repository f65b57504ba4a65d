// Losses: the gradient of the loss with respect to every model output, and each element's
// (or row's) loss term, summed afterwards by reduce_sum in a fixed order.
//   mse_grad:           w = row_weights[i / width]:
//                       term[i] = w (y[i] - target[i])²,  grad[i] = 2 (y[i] - target[i]) w
//   cross_entropy_grad: row r of `width` logits, class c = classes[r], w = row_weights[r]:
//                       term[r] = w (logsumexp(y_r) - y_r[c]),  grad_r = (softmax(y_r) - onehot(c)) w,
//                       hits[r] = 1 when w > 0 and the first largest logit is c, else 0
//                       (summed like the terms: the rows classified right, for the accuracy)
// A row's weight is 1 / (the number of items the mean counts), or 0 for a row past its
// sequence's length or with an ignored class (the host computes them: loss::row_weights), so
// the sum of the terms is the mean.
// A 1-D problem over n items on a 2-D grid: item = (wid.y * num_workgroups.x + wid.x) * WG + lid.x.
//
// Bindings:
//   0 params   uniform LossParams
//   1 y        storage, read        model output [n] or [rows, width]
//   2 values   storage, read        mse targets [n]
//   3 classes  storage, read        cross-entropy targets [rows], u32
//   4 row_weights storage, read     [rows]
//   5 grad     storage, read_write  dL/dy, like y
//   6 terms    storage, read_write  [n] or [rows]
//   7 hits     storage, read_write  [rows] (cross-entropy only)

struct LossParams {
    n: u32,
    width: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: LossParams;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> values: array<f32>;
@group(0) @binding(3) var<storage, read> classes: array<u32>;
@group(0) @binding(4) var<storage, read> row_weights: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;
@group(0) @binding(6) var<storage, read_write> terms: array<f32>;
@group(0) @binding(7) var<storage, read_write> hits: array<f32>;

override WG: u32 = 64u;

fn item(lid: vec3<u32>, wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (wid.y * groups.x + wid.x) * WG + lid.x;
}

@compute @workgroup_size(WG)
fn mse_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = item(lid, wid, groups);
    if (i >= params.n) {
        return;
    }
    let w = row_weights[i / params.width];
    let diff = y[i] - values[i];
    terms[i] = w * diff * diff;
    grad[i] = 2.0 * diff * w;
}

@compute @workgroup_size(WG)
fn cross_entropy_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = item(lid, wid, groups);
    if (r >= params.n) {
        return;
    }
    let base = r * params.width;
    var m = y[base];
    var first_max = 0u;
    for (var k = 1u; k < params.width; k++) {
        if (y[base + k] > m) {
            m = y[base + k];
            first_max = k;
        }
    }
    var z = 0.0;
    for (var k = 0u; k < params.width; k++) {
        z += exp(y[base + k] - m);
    }
    let lse = m + log(z);
    let c = classes[r];
    let w = row_weights[r];
    terms[r] = w * (lse - y[base + c]);
    hits[r] = select(0.0, 1.0, w > 0.0 && first_max == c);
    for (var k = 0u; k < params.width; k++) {
        let onehot = select(0.0, 1.0, k == c);
        grad[base + k] = (exp(y[base + k] - lse) - onehot) * w;
    }
}
