// split_sum (workgroup memory): the sum of `acc` over the KS invocations of hidden unit j in
// lstm_sequence.wgsl (lid = j * KS + s), added in the order s = 0, 1, ..., KS - 1. Valid in
// invocation s == 0. Every invocation of the workgroup calls it (it has a barrier when
// KS > 1). The host prepends this file (or split_sum_subgroup.wgsl) to lstm_sequence.wgsl;
// H and KS are that kernel's override constants.

// (array lengths are named overrides: naga 30 mishandles an anonymous one declared before
// a named one)
override PARTIAL_LEN: u32 = H * KS;
var<workgroup> partial: array<vec4<f32>, PARTIAL_LEN>;

fn split_sum(acc: vec4<f32>, j: u32, s: u32) -> vec4<f32> {
    if (KS == 1u) {
        return acc;
    }
    partial[j * KS + s] = acc;
    workgroupBarrier();
    var z = partial[j * KS];
    for (var ss = 1u; ss < KS; ss++) {
        z += partial[j * KS + ss];
    }
    return z;
}
