// permute: dst[dst_offset + i] = src[src_offset + Σ_a coord_a(i) · strides[a]]
//          (+ src[that + add_offset] when has_add == 1)
// where coord(i) is i written in the shape dims (4 axes, the last fastest). Re-lays the flat
// parameters out the way the forward kernels read them (e.g. W_hh into per-unit vec4s, W_ihᵀ),
// and forms b_ih + b_hh. A 1-D problem on a 2-D grid as in loss.wgsl.
//
// Bindings:
//   0 params  uniform PermuteParams
//   1 src     storage, read
//   2 dst     storage, read_write

struct PermuteParams {
    count: u32,
    src_offset: u32,
    dst_offset: u32,
    has_add: u32,
    dims: vec4<u32>,
    strides: vec4<u32>,
    add_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: PermuteParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn permute(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = (wid.y * groups.x + wid.x) * WG + lid.x;
    if (i >= params.count) {
        return;
    }
    let d = params.dims;
    let c3 = i % d.w;
    let c2 = (i / d.w) % d.z;
    let c1 = (i / (d.w * d.z)) % d.y;
    let c0 = i / (d.w * d.z * d.y);
    let at = params.src_offset + c0 * params.strides.x + c1 * params.strides.y + c2 * params.strides.z + c3 * params.strides.w;
    var value = src[at];
    if (params.has_add == 1u) {
        value += src[at + params.add_offset];
    }
    dst[params.dst_offset + i] = value;
}
