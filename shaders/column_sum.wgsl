// column_sum: out[out_offset + n] = Σ_m x[x_offset + m * row_stride + n], n < N, over M rows
// (the bias gradients: Σ over every (t, b) of the gate or output gradients). Two passes in a
// fixed order, so results are bitwise reproducible:
//   (a column tile is c = wid.x + wid.z * num_workgroups.x, so N may pass 65,535 tiles)
//   column_partial, grid (tiles, S, ·): workgroup (c, s) takes the rows
//     [s * block, (s + 1) * block); invocation (x, y) of its 64 × 4 sums rows y, y + 4, ... of
//     column c * 64 + x (64 consecutive columns read together), the 4 sums of a column are
//     added in workgroup memory, and the result goes to partials[s * N + n];
//   column_finish, grid (tiles, 1, ·): out[out_offset + n] = Σ_s partials[s * N + n],
//     and the same at out[copy_offset + n] unless copy_offset is 0xffffffff (b_ih and b_hh
//     have the same gradient).
//
// Bindings:
//   0 params    uniform ColumnParams
//   1 x         storage, read
//   2 partials  storage, read_write  [S, N]
//   3 out       storage, read_write

struct ColumnParams {
    m: u32,
    n: u32,
    row_stride: u32,
    x_offset: u32,
    out_offset: u32,
    // rows per split, and splits S
    block: u32,
    splits: u32,
    copy_offset: u32,
}

@group(0) @binding(0) var<uniform> params: ColumnParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const COLUMNS: u32 = 64u;
const LANES: u32 = 4u;
var<workgroup> lane_sums: array<array<f32, COLUMNS>, LANES>;

@compute @workgroup_size(64, 4)
fn column_partial(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = (wid.z * groups.x + wid.x) * COLUMNS + lid.x;
    let start = wid.y * params.block;
    let end = min(start + params.block, params.m);
    var sum = 0.0;
    if (n < params.n) {
        for (var m = start + lid.y; m < end; m += LANES) {
            sum += x[params.x_offset + m * params.row_stride + n];
        }
    }
    lane_sums[lid.y][lid.x] = sum;
    workgroupBarrier();
    if (lid.y == 0u && n < params.n) {
        let total = (lane_sums[0][lid.x] + lane_sums[1][lid.x]) + (lane_sums[2][lid.x] + lane_sums[3][lid.x]);
        partials[wid.y * params.n + n] = total;
    }
}

@compute @workgroup_size(64)
fn column_finish(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = (wid.z * groups.x + wid.x) * COLUMNS + lid.x;
    if (n >= params.n) {
        return;
    }
    var sum = 0.0;
    for (var s = 0u; s < params.splits; s++) {
        sum += partials[s * params.n + n];
    }
    out[params.out_offset + n] = sum;
    if (params.copy_offset != 0xffffffffu) {
        out[params.copy_offset + n] = sum;
    }
}
