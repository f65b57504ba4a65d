// embedding_grad: the table's gradient, row v = the sum of dx's rows at the positions whose id
// is v, in position order (the host lists them: order[starts[v] .. starts[v + 1]] are those
// positions, ascending). One invocation per element of the table, n = V × dim, so every sum
// has a fixed order and no atomics: bitwise reproducible.
//   grads[offset + v * dim + k] = Σ_j dx[order[j] * dim + k],  j in starts[v] .. starts[v + 1]
// (added to what is there when accumulate == 1: tied weights, the head's gradient first)
//
// Bindings:
//   0 params  uniform EmbeddingParams
//   1 order   storage, read        [positions], u32: positions sorted by id, stably
//   2 starts  storage, read        [V + 1], u32
//   3 dx      storage, read        [positions, dim]
//   4 grads   storage, read_write  the flat gradients; the table's at offset

struct EmbeddingParams {
    n: u32,
    dim: u32,
    offset: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> params: EmbeddingParams;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read> starts: array<u32>;
@group(0) @binding(3) var<storage, read> dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn embedding_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = (wid.y * groups.x + wid.x) * WG + lid.x;
    if (i >= params.n) {
        return;
    }
    let v = i / params.dim;
    let k = i % params.dim;
    var sum = 0.0;
    for (var j = starts[v]; j < starts[v + 1u]; j++) {
        sum += dx[order[j] * params.dim + k];
    }
    // tied weights: the head's gradient of the same parameter is already there
    let at = params.offset + i;
    grads[at] = select(sum, grads[at] + sum, params.accumulate == 1u);
}
