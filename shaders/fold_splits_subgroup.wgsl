// fold_splits (subgroups): in lstm_step.wgsl the KS partial sums of unit u sit in invocations
// lid = s * U + u. The SPAN splits s0 .. s0 + SPAN - 1 (s0 a multiple of SPAN) lie in one
// subgroup when SPAN * U is at most the device's smallest subgroup size (the host checks),
// so a butterfly of subgroupShuffleXor over the lane masks U, 2U, ... adds them, in the same
// order in every run, and only KS / SPAN partial sums per unit go through workgroup memory.
// Needs the SUBGROUP feature; the host prepends this file instead of fold_splits.wgsl.
// (Straight-line code, not a loop: see split_sum_subgroup.wgsl.)

override SPAN: u32 = 1u;

fn fold_splits(v: vec4<f32>) -> vec4<f32> {
    var z = v;
    if (SPAN > 1u) {
        z += subgroupShuffleXor(z, U);
    }
    if (SPAN > 2u) {
        z += subgroupShuffleXor(z, 2u * U);
    }
    if (SPAN > 4u) {
        z += subgroupShuffleXor(z, 4u * U);
    }
    if (SPAN > 8u) {
        z += subgroupShuffleXor(z, 8u * U);
    }
    if (SPAN > 16u) {
        z += subgroupShuffleXor(z, 16u * U);
    }
    return z;
}
