// embedding_gather: x[p * dim + k] = table[offset + ids[p] * dim + k] for the n = positions × dim
// elements (nn.Embedding's lookup; ids were checked against the vocabulary on the host).
// A 1-D problem on a 2-D grid as in loss.wgsl.
//
// Bindings:
//   0 params  uniform EmbeddingParams
//   1 ids     storage, read        [positions], u32
//   2 table   storage, read        the flat parameters; the table [V, dim] at offset
//   3 x       storage, read_write  [positions, dim]

struct EmbeddingParams {
    n: u32,
    dim: u32,
    offset: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> params: EmbeddingParams;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn embedding_gather(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = (wid.y * groups.x + wid.x) * WG + lid.x;
    if (i >= params.n) {
        return;
    }
    let p = i / params.dim;
    let k = i % params.dim;
    x[i] = table[params.offset + ids[p] * params.dim + k];
}
