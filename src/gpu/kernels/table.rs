//! The kernel table: one row per compute kernel, naming its WGSL source, its entry point and
//! its bindings (group 0, binding i is `bindings[i]`) by the names and access the shader
//! declares. Adding a kernel is adding one variant and one row; tests/shaders.rs checks
//! every row against naga's reflection of its shader.

use super::sources;

/// Invocations per workgroup of the 1-D kernels; passed to their `override WG`.
pub const WORKGROUP_SIZE: u32 = 64;
/// Output tile edge of the gemm kernel (`TILE` in gemm.wgsl).
pub const GEMM_TILE: u32 = 64;

/// How a kernel sees one binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    /// The params uniform, with a dynamic offset selecting the dispatch's (or chunk's) slot.
    Params,
    /// The step-index uniform of the per-step kernels, with a dynamic offset per step.
    StepIndex,
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
}

/// One binding: the name of its `var` in the shader, and how the kernel uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub name: &'static str,
    pub kind: BindingKind,
}

impl Binding {
    /// A storage binding (bound by the plan's caller, by name); the uniforms the plan binds.
    pub fn is_storage(&self) -> bool {
        matches!(self.kind, BindingKind::Read | BindingKind::ReadWrite)
    }
}

/// The compute kernels; [`Kernel::spec`] is each one's row of [`KERNELS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Gemm,
    /// The gemm for a few rows, bitwise equal to [`Kernel::Gemm`] (gemm.wgsl).
    Gemv,
    LstmStep,
    LstmStepSubgroup,
    LstmSequence,
    LstmSequenceSubgroup,
    LstmProj,
    LstmBackwardDh,
    LstmBackwardStep,
    MseGrad,
    CrossEntropyGrad,
    ReduceSum,
    ReduceBlocks,
    Sgd,
    Adam,
    Permute,
    ColumnPartial,
    ColumnFinish,
    /// State rows between a pool of slots and a batch (gather or scatter).
    Rows,
    /// The embedding's lookup into the LSTM's input.
    EmbeddingGather,
    /// The embedding's gradient, rows summed in position order.
    EmbeddingGrad,
    /// A dropout mask applied in place (values, or their gradient).
    Dropout,
}

/// A kernel's row of the table.
#[derive(Clone, Copy, Debug)]
pub struct KernelSpec {
    pub kernel: Kernel,
    /// The name of its source in [`sources::SHADER_FILES`] (the stem of its main .wgsl file).
    pub file: &'static str,
    /// The source a pipeline is built from (preludes first).
    pub source: &'static str,
    /// The entry point; it also names the kernel in labels and profiles.
    pub entry: &'static str,
    /// Binding i of group 0 is `bindings[i]`.
    pub bindings: &'static [Binding],
    /// Its override constants when it always runs with the same ones (the recurrent kernels
    /// take theirs from a [`super::Recurrence`]).
    pub constants: &'static [(&'static str, f64)],
}

const fn params() -> Binding {
    Binding {
        name: "params",
        kind: BindingKind::Params,
    }
}
const fn step_index() -> Binding {
    Binding {
        name: "step_index",
        kind: BindingKind::StepIndex,
    }
}
const fn read(name: &'static str) -> Binding {
    Binding {
        name,
        kind: BindingKind::Read,
    }
}
const fn write(name: &'static str) -> Binding {
    Binding {
        name,
        kind: BindingKind::ReadWrite,
    }
}

/// `override WG` of the 1-D kernels.
const WG: &[(&str, f64)] = &[("WG", WORKGROUP_SIZE as f64)];

const GEMM: &[Binding] = &[params(), read("a"), read("b"), read("bias"), write("c")];
const LSTM_STEP: &[Binding] = &[
    params(),
    step_index(),
    read("pre"),
    read("w_hh"),
    write("h_state"),
    write("c_state"),
    write("y"),
    write("h_full"),
    read("lengths"),
    write("gates"),
];
const LSTM_SEQUENCE: &[Binding] = &[
    params(),
    read("pre"),
    read("w_hh"),
    write("h_state"),
    write("c_state"),
    write("y"),
    write("h_full"),
    read("lengths"),
    write("gates"),
];
const LSTM_PROJ: &[Binding] = &[
    params(),
    step_index(),
    read("h_full"),
    read("w_hr"),
    write("h_state"),
    write("y"),
    read("lengths"),
];
const LSTM_BACKWARD: &[Binding] = &[
    params(),
    read("weights"),
    write("dgates"),
    read("dy"),
    write("carry"),
    read("gates"),
    read("c_state"),
    write("dh_cache"),
    read("lengths"),
];
const LOSS: &[Binding] = &[
    params(),
    read("y"),
    read("values"),
    read("classes"),
    read("row_weights"),
    write("grad"),
    write("terms"),
    write("hits"),
];
const REDUCE: &[Binding] = &[params(), read("x"), write("out")];
const OPTIMIZER: &[Binding] = &[
    params(),
    write("p"),
    read("grad"),
    write("m"),
    write("v"),
    read("scalars"),
];
const PERMUTE: &[Binding] = &[params(), read("src"), write("dst")];
const COLUMN_SUM: &[Binding] = &[params(), read("x"), write("partials"), write("out")];
const ROWS: &[Binding] = &[params(), read("slot"), read("src"), write("dst")];
const DROPOUT: &[Binding] = &[params(), read("rng"), write("data")];
const EMBEDDING_GATHER: &[Binding] = &[params(), read("ids"), read("table"), write("x")];
const EMBEDDING_GRAD: &[Binding] = &[
    params(),
    read("order"),
    read("starts"),
    read("dx"),
    write("grads"),
];

const fn row(
    kernel: Kernel,
    (file, source): (&'static str, &'static str),
    entry: &'static str,
    bindings: &'static [Binding],
    constants: &'static [(&'static str, f64)],
) -> KernelSpec {
    KernelSpec {
        kernel,
        file,
        source,
        entry,
        bindings,
        constants,
    }
}

use sources as s;

/// The table, in [`Kernel`] order (`KERNELS[k as usize].kernel == k`, tested).
pub const KERNELS: [KernelSpec; 22] = [
    row(Kernel::Gemm, ("gemm", s::GEMM), "gemm", GEMM, &[]),
    row(Kernel::Gemv, ("gemm", s::GEMM), "gemv", GEMM, &[]),
    row(
        Kernel::LstmStep,
        ("lstm_step", s::LSTM_STEP),
        "lstm_step",
        LSTM_STEP,
        &[],
    ),
    row(
        Kernel::LstmStepSubgroup,
        ("lstm_step_subgroup", s::LSTM_STEP_SUBGROUP),
        "lstm_step",
        LSTM_STEP,
        &[],
    ),
    row(
        Kernel::LstmSequence,
        ("lstm_sequence", s::LSTM_SEQUENCE),
        "lstm_sequence",
        LSTM_SEQUENCE,
        &[],
    ),
    row(
        Kernel::LstmSequenceSubgroup,
        ("lstm_sequence_subgroup", s::LSTM_SEQUENCE_SUBGROUP),
        "lstm_sequence",
        LSTM_SEQUENCE,
        &[],
    ),
    row(
        Kernel::LstmProj,
        ("lstm_proj", s::LSTM_PROJ),
        "lstm_proj",
        LSTM_PROJ,
        WG,
    ),
    row(
        Kernel::LstmBackwardDh,
        ("lstm_backward", s::LSTM_BACKWARD),
        "lstm_backward_dh",
        LSTM_BACKWARD,
        &[],
    ),
    row(
        Kernel::LstmBackwardStep,
        ("lstm_backward", s::LSTM_BACKWARD),
        "lstm_backward_step",
        LSTM_BACKWARD,
        &[],
    ),
    row(Kernel::MseGrad, ("loss", s::LOSS), "mse_grad", LOSS, WG),
    row(
        Kernel::CrossEntropyGrad,
        ("loss", s::LOSS),
        "cross_entropy_grad",
        LOSS,
        WG,
    ),
    row(
        Kernel::ReduceSum,
        ("reduce", s::REDUCE),
        "reduce_sum",
        REDUCE,
        &[],
    ),
    row(
        Kernel::ReduceBlocks,
        ("reduce", s::REDUCE),
        "reduce_blocks",
        REDUCE,
        &[],
    ),
    row(
        Kernel::Sgd,
        ("optimizer", s::OPTIMIZER),
        "sgd",
        OPTIMIZER,
        WG,
    ),
    row(
        Kernel::Adam,
        ("optimizer", s::OPTIMIZER),
        "adam",
        OPTIMIZER,
        WG,
    ),
    row(
        Kernel::Permute,
        ("permute", s::PERMUTE),
        "permute",
        PERMUTE,
        WG,
    ),
    row(
        Kernel::ColumnPartial,
        ("column_sum", s::COLUMN_SUM),
        "column_partial",
        COLUMN_SUM,
        &[],
    ),
    row(
        Kernel::ColumnFinish,
        ("column_sum", s::COLUMN_SUM),
        "column_finish",
        COLUMN_SUM,
        &[],
    ),
    row(Kernel::Rows, ("rows", s::ROWS), "rows", ROWS, WG),
    row(
        Kernel::EmbeddingGather,
        ("embedding_gather", s::EMBEDDING_GATHER),
        "embedding_gather",
        EMBEDDING_GATHER,
        WG,
    ),
    row(
        Kernel::EmbeddingGrad,
        ("embedding_grad", s::EMBEDDING_GRAD),
        "embedding_grad",
        EMBEDDING_GRAD,
        WG,
    ),
    row(
        Kernel::Dropout,
        ("dropout", s::DROPOUT),
        "dropout",
        DROPOUT,
        WG,
    ),
];

impl Kernel {
    /// Every kernel, in table order.
    pub const ALL: [Kernel; KERNELS.len()] = {
        let mut all = [Kernel::Gemm; KERNELS.len()];
        let mut i = 0;
        while i < KERNELS.len() {
            all[i] = KERNELS[i].kernel;
            i += 1;
        }
        all
    };

    /// Its row of [`KERNELS`].
    pub fn spec(self) -> &'static KernelSpec {
        &KERNELS[self as usize]
    }

    /// The entry point, which also names the kernel in labels and profiles.
    pub fn name(self) -> &'static str {
        self.spec().entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_kernel_order_with_unique_binding_names() {
        for (i, spec) in KERNELS.iter().enumerate() {
            assert_eq!(spec.kernel as usize, i, "{:?} is row {i}", spec.kernel);
            for (j, a) in spec.bindings.iter().enumerate() {
                assert!(
                    spec.bindings[..j].iter().all(|b| b.name != a.name),
                    "{:?}: binding {} twice",
                    spec.kernel,
                    a.name
                );
            }
        }
    }
}
