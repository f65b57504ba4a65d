// rows: moves whole rows between a pool of state slots and a batch, through a slot list.
//   mode 0 (gather):  dst[p, r, :] = src[p, slot[r], :]    (src has `slots` rows per plane)
//   mode 1 (scatter): dst[p, slot[r], :] = src[p, r, :]    (dst has `slots` rows per plane)
// for planes p < planes (layers), rows r < rows (the batch), columns k < width. A slot index
// at or past `slots` is skipped, so a bad index cannot reach outside the pool (the host
// refuses one before it gets here). One invocation per element, a 1-D problem on a 2-D grid
// as in loss.wgsl.
//
// Bindings:
//   0 params  uniform RowsParams
//   1 slot    storage, read (u32 per row)
//   2 src     storage, read
//   3 dst     storage, read_write

struct RowsParams {
    rows: u32,
    width: u32,
    planes: u32,
    slots: u32,
    mode: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: RowsParams;
@group(0) @binding(1) var<storage, read> slot: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = (wid.y * groups.x + wid.x) * WG + lid.x;
    let w = params.width;
    if (i >= params.planes * params.rows * w) {
        return;
    }
    let k = i % w;
    let r = (i / w) % params.rows;
    let p = i / (w * params.rows);
    let s = slot[r];
    if (s >= params.slots) {
        return;
    }
    let batch_at = (p * params.rows + r) * w + k;
    let pool_at = (p * params.slots + s) * w + k;
    if (params.mode == 0u) {
        dst[batch_at] = src[pool_at];
    } else {
        dst[pool_at] = src[batch_at];
    }
}
