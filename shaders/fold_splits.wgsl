// fold_splits (portable): lstm_step.wgsl adds its KS partial sums of a unit in workgroup
// memory only, so nothing is folded before: SPAN = 1. The host prepends this file (or
// fold_splits_subgroup.wgsl) to lstm_step.wgsl.

override SPAN: u32 = 1u;

fn fold_splits(v: vec4<f32>) -> vec4<f32> {
    return v;
}
