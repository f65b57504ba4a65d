// gemm: C[m, n] = A[m, k] · B[k, n] (+ bias(n)) (+ C[m, n] when accumulating).
//
// Operands are read through strides so one kernel serves every layout:
//   A(m, k) = a[a_offset + (m / a_group_rows) * a_group_stride + (m % a_group_rows) * a_row_stride + k * a_k_stride]
//   B(k, n) = b[b_offset + k * b_k_stride + n * b_n_stride]
//   C(m, n) = c[c_offset + m * c_row_stride + n], bias(n) = bias[bias_offset + n]
// (grouped rows let a batch-first [B, T, I] input be read as time-major rows m = t * B + b.)
// Split K (k_split > 0): workgroup z of the grid sums k in [z * k_split, (z + 1) * k_split)
// only and writes its C at c_offset + z * c_split_stride; a fixed-order sum of the splits
// (column_sum.wgsl) finishes. Long reductions (k = T * B) then fill the GPU.
//
// A workgroup of 16 x 16 invocations computes a 64 x 64 tile of C. Invocation (tx, ty) keeps
// a 4 x 4 register tile: rows ty + 16 i (i < 4) and the four columns 4 tx .. 4 tx + 3, one
// vec4 per row. K advances 16 at a time through workgroup memory, stored as vec4s in the
// order they are loaded (no transposed stores, no bank conflicts):
//   a_tile[m][q] = A(m, k0 + 4q .. 4q + 3): invocation l loads row l / 4, quad l % 4, so four
//                  neighbours read 16 consecutive k of one row;
//   b_tile[kk][q] = B(k0 + kk, 4q .. 4q + 3): invocation l loads row l / 16, quad l % 16.
// Per 4 k, an invocation reads 4 vec4 of A and 4 of B and does 64 FMAs. The A row offset
// (the only divide) is computed once per invocation. Every output is summed in the same
// order on every run (no atomics): results are bitwise reproducible.
//
// gemv (a second entry point, same params and bindings) serves a few rows (a streamed step's
// input projection, m = B): one invocation per output, grid (ceil(n / 64), m). The gemm's
// k loop pays a load, two barriers and 16 FMAs per 16 k whatever m is, so a one-row product
// over k = 1024 took about 250 µs on an H100. gemv sums each output in exactly the gemm's
// order (acc = fma(a_k, b_k, acc) from 0 for k = 0, 1, ... up to k rounded up to 16 with zero
// operands past k, then + bias, then + C): results are bitwise the gemm's, so a sequence fed
// step by step equals the same sequence in one pass. It loads 16 k of A and B in
// straight-line code before the 16 FMAs, so the loads are in flight together. No split K.
//
// Bindings:
//   0 params  uniform GemmParams (dynamic offset: one slot per dispatch)
//   1 a       storage, read
//   2 b       storage, read
//   3 bias    storage, read (ignored unless has_bias == 1)
//   4 c       storage, read_write

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
    a_offset: u32,
    a_group_rows: u32,
    a_group_stride: u32,
    a_row_stride: u32,
    a_k_stride: u32,
    b_offset: u32,
    b_k_stride: u32,
    b_n_stride: u32,
    c_offset: u32,
    c_row_stride: u32,
    accumulate: u32,
    bias_offset: u32,
    k_split: u32,
    c_split_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS: u32 = 16u;

var<workgroup> a_tile: array<array<vec4<f32>, 4>, TILE>;
var<workgroup> b_tile: array<array<vec4<f32>, 16>, TILE_K>;

@compute @workgroup_size(16, 16)
fn gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let l = lid.y * THREADS + lid.x;
    let M = params.m;
    let N = params.n;
    let k_begin = wid.z * params.k_split;
    let K = select(params.k, min(k_begin + params.k_split, params.k), params.k_split > 0u);
    let c_base = params.c_offset + wid.z * params.c_split_stride;

    // What this invocation loads: A row a_m (from quad a_q), B row b_kk (columns from b_n).
    let a_m = row0 + l / 4u;
    let a_q = l % 4u;
    let a_row = params.a_offset + (a_m / params.a_group_rows) * params.a_group_stride
        + (a_m % params.a_group_rows) * params.a_row_stride;
    let b_kk = l / 16u;
    let b_n = col0 + 4u * (l % 16u);

    var acc: array<vec4<f32>, 4>;
    for (var k0 = k_begin; k0 < K; k0 += TILE_K) {
        var av = vec4<f32>(0.0);
        let ak = k0 + 4u * a_q;
        if (a_m < M) {
            for (var e = 0u; e < 4u; e++) {
                if (ak + e < K) {
                    av[e] = a[a_row + (ak + e) * params.a_k_stride];
                }
            }
        }
        a_tile[l / 4u][a_q] = av;
        var bv = vec4<f32>(0.0);
        let bk = k0 + b_kk;
        if (bk < K) {
            let b_row = params.b_offset + bk * params.b_k_stride;
            for (var e = 0u; e < 4u; e++) {
                if (b_n + e < N) {
                    bv[e] = b[b_row + (b_n + e) * params.b_n_stride];
                }
            }
        }
        b_tile[b_kk][l % 16u] = bv;
        workgroupBarrier();
        for (var q = 0u; q < 4u; q++) {
            let a0 = a_tile[lid.y][q];
            let a1 = a_tile[lid.y + THREADS][q];
            let a2 = a_tile[lid.y + 2u * THREADS][q];
            let a3 = a_tile[lid.y + 3u * THREADS][q];
            for (var e = 0u; e < 4u; e++) {
                let bq = b_tile[4u * q + e][lid.x];
                acc[0] = fma(vec4<f32>(a0[e]), bq, acc[0]);
                acc[1] = fma(vec4<f32>(a1[e]), bq, acc[1]);
                acc[2] = fma(vec4<f32>(a2[e]), bq, acc[2]);
                acc[3] = fma(vec4<f32>(a3[e]), bq, acc[3]);
            }
        }
        workgroupBarrier();
    }

    let col = col0 + 4u * lid.x;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + i * THREADS;
        if (row >= M) {
            continue;
        }
        for (var e = 0u; e < 4u; e++) {
            if (col + e < N) {
                let at = c_base + row * params.c_row_stride + col + e;
                var value = acc[i][e];
                if (params.has_bias == 1u) {
                    value += bias[params.bias_offset + col + e];
                }
                if (params.accumulate == 1u) {
                    value += c[at];
                }
                c[at] = value;
            }
        }
    }
}

@compute @workgroup_size(64)
fn gemv(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let m = gid.y;
    if (n >= params.n || m >= params.m) {
        return;
    }
    let K = params.k;
    let a_row = params.a_offset + (m / params.a_group_rows) * params.a_group_stride
        + (m % params.a_group_rows) * params.a_row_stride;
    let b_col = params.b_offset + n * params.b_n_stride;
    var acc = 0.0;
    for (var k0 = 0u; k0 < K; k0 += TILE_K) {
        // straight-line loads of 16 k first, so they are in flight together
        let a0 = gemv_a4(a_row, k0, K);
        let a1 = gemv_a4(a_row, k0 + 4u, K);
        let a2 = gemv_a4(a_row, k0 + 8u, K);
        let a3 = gemv_a4(a_row, k0 + 12u, K);
        let b0 = gemv_b4(b_col, k0, K);
        let b1 = gemv_b4(b_col, k0 + 4u, K);
        let b2 = gemv_b4(b_col, k0 + 8u, K);
        let b3 = gemv_b4(b_col, k0 + 12u, K);
        acc = fma4(a0, b0, acc);
        acc = fma4(a1, b1, acc);
        acc = fma4(a2, b2, acc);
        acc = fma4(a3, b3, acc);
    }
    let at = params.c_offset + m * params.c_row_stride + n;
    var value = acc;
    if (params.has_bias == 1u) {
        value += bias[params.bias_offset + n];
    }
    if (params.accumulate == 1u) {
        value += c[at];
    }
    c[at] = value;
}

// A(m, k .. k + 3) of the row at `row`, zero past K (K >= 1).
fn gemv_a4(row: u32, k: u32, K: u32) -> vec4<f32> {
    let s = params.a_k_stride;
    return vec4<f32>(
        select(0.0, a[row + min(k, K - 1u) * s], k < K),
        select(0.0, a[row + min(k + 1u, K - 1u) * s], k + 1u < K),
        select(0.0, a[row + min(k + 2u, K - 1u) * s], k + 2u < K),
        select(0.0, a[row + min(k + 3u, K - 1u) * s], k + 3u < K),
    );
}

// B(k .. k + 3, n) of the column at `col`, zero past K (K >= 1).
fn gemv_b4(col: u32, k: u32, K: u32) -> vec4<f32> {
    let s = params.b_k_stride;
    return vec4<f32>(
        select(0.0, b[col + min(k, K - 1u) * s], k < K),
        select(0.0, b[col + min(k + 1u, K - 1u) * s], k + 1u < K),
        select(0.0, b[col + min(k + 2u, K - 1u) * s], k + 2u < K),
        select(0.0, b[col + min(k + 3u, K - 1u) * s], k + 3u < K),
    );
}

// acc + a.x b.x + a.y b.y + a.z b.z + a.w b.w, one fma at a time in that order.
fn fma4(a4: vec4<f32>, b4: vec4<f32>, acc: f32) -> f32 {
    var sum = fma(a4.x, b4.x, acc);
    sum = fma(a4.y, b4.y, sum);
    sum = fma(a4.z, b4.z, sum);
    return fma(a4.w, b4.w, sum);
}
