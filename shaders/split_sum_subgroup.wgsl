// split_sum (subgroups): the sum of `acc` over the KS invocations of hidden unit j in
// lstm_sequence.wgsl (lid = j * KS + s). KS is a power of two no larger than the device's
// smallest subgroup (at most 32), so those KS invocations are KS consecutive lanes of one subgroup; a
// butterfly of subgroupShuffleXor adds them in the same order in every run, with no
// workgroup memory and no barrier. Valid in invocation s == 0. Needs the SUBGROUP feature;
// the host prepends this file instead of split_sum.wgsl where the device has it.

// (Straight-line code, not a loop over m: lavapipe does not unroll a loop around a subgroup
// operation, and its loop limiter then ends the shader's loops early in long dispatches.)
fn split_sum(acc: vec4<f32>, j: u32, s: u32) -> vec4<f32> {
    var z = acc;
    if (KS > 1u) {
        z += subgroupShuffleXor(z, 1u);
    }
    if (KS > 2u) {
        z += subgroupShuffleXor(z, 2u);
    }
    if (KS > 4u) {
        z += subgroupShuffleXor(z, 4u);
    }
    if (KS > 8u) {
        z += subgroupShuffleXor(z, 8u);
    }
    if (KS > 16u) {
        z += subgroupShuffleXor(z, 16u);
    }
    return z;
}
