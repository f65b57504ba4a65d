// dropout: data[i] <- keep(i) ? data[i] * scale : 0 for the n elements of one site, in place;
// keep(i) = draw(seed, step, site, i) < keep_below, the generator of src/train/dropout.rs
// (integer mixing only, so the CPU and the GPU draw the same masks). The map is linear, so
// the same dispatch on a gradient is its backward. A 1-D problem on a 2-D grid as in loss.wgsl.
//
// Bindings:
//   0 params  uniform DropoutParams
//   1 rng     storage, read        [seed low, seed high, step, 0], written every step
//   2 data    storage, read_write  [n]

struct DropoutParams {
    n: u32,
    site: u32,
    keep_below: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: DropoutParams;
@group(0) @binding(1) var<storage, read> rng: array<u32>;
@group(0) @binding(2) var<storage, read_write> data: array<f32>;

override WG: u32 = 64u;

fn mix(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

@compute @workgroup_size(WG)
fn dropout(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = (wid.y * groups.x + wid.x) * WG + lid.x;
    if (i >= params.n) {
        return;
    }
    let seeded = mix(rng[1] ^ mix(rng[0]));
    let draw = mix(i ^ mix(params.site ^ mix(rng[2] ^ seeded)));
    data[i] = select(0.0, data[i] * params.scale, draw < params.keep_below);
}
