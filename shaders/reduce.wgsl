// reduce: out[out_index] = scale * Σ_i f(x[i]) over n items, f(v) = v or v² (square == 1),
// in a fixed order, with no atomics: the result is the same bit for bit every run.
//
// reduce_sum: one workgroup; invocation l sums items l, l + WG, l + 2 WG, ... in order, then
// a fixed tree combines the partial sums.
// reduce_blocks: the first of two passes for long inputs. Workgroup g does the same over the
// items [g * block, min((g + 1) * block, n)) and writes its sum to out[g] (scale ignored);
// reduce_sum over those partial sums (square = 0) finishes.
//
// Bindings:
//   0 params  uniform ReduceParams
//   1 x       storage, read        [n]
//   2 out     storage, read_write  scalars (reduce_sum) or the partial sums (reduce_blocks)

struct ReduceParams {
    n: u32,
    out_index: u32,
    square: u32,
    scale: f32,
    // reduce_blocks: items per workgroup
    block: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: ReduceParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

// Σ f(x[i]) for i in [start, end), the same in every invocation's place: invocation l takes
// start + l, start + l + WG, ...; then a fixed tree. Every invocation calls it (barriers).
fn block_sum(start: u32, end: u32, lid: u32) -> f32 {
    var sum = 0.0;
    for (var i = start + lid; i < end; i += WG) {
        let v = x[i];
        sum += select(v, v * v, params.square == 1u);
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width /= 2u) {
        if (lid < width) {
            partial[lid] += partial[lid + width];
        }
        workgroupBarrier();
    }
    return partial[0];
}

@compute @workgroup_size(WG)
fn reduce_sum(@builtin(local_invocation_index) lid: u32) {
    let sum = block_sum(0u, params.n, lid);
    if (lid == 0u) {
        out[params.out_index] = sum * params.scale;
    }
}

@compute @workgroup_size(WG)
fn reduce_blocks(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let start = wid.x * params.block;
    let sum = block_sum(start, min(start + params.block, params.n), lid);
    if (lid == 0u) {
        out[wid.x] = sum;
    }
}
