// reduce_sum: out[out_index] = scale * Σ_i f(x[i]) over n items, f(v) = v or v² (square == 1).
// One workgroup: invocation l sums items l, l + WG, l + 2 WG, ... in order, then a fixed
// tree combines the partial sums. No atomics, so the result is the same bit for bit every run.
//
// Bindings:
//   0 params  uniform ReduceParams
//   1 x       storage, read        [n]
//   2 out     storage, read_write  scalars

struct ReduceParams {
    n: u32,
    out_index: u32,
    square: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: ReduceParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn reduce_sum(@builtin(local_invocation_id) lid: vec3<u32>) {
    var sum = 0.0;
    for (var i = lid.x; i < params.n; i += WG) {
        let v = x[i];
        sum += select(v, v * v, params.square == 1u);
    }
    partial[lid.x] = sum;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width /= 2u) {
        if (lid.x < width) {
            partial[lid.x] += partial[lid.x + width];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        out[params.out_index] = partial[0] * params.scale;
    }
}
