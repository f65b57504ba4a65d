//! Every WGSL kernel and its binding list (in the order of the comment atop its .wgsl file).
//! The pipelines built from them live in [`super::pipelines`].

/// The text of shaders/<name>.wgsl files, concatenated in order: a kernel's source is its
/// preludes, then its own file.
macro_rules! wgsl {
    ($($name:literal),+) => {
        concat!($(include_str!(concat!("../../shaders/", $name, ".wgsl"))),+)
    };
}

/// Definitions the recurrent kernels share (StepParams, the state-slot rule, the gate math);
/// the first prelude of each of them.
pub const LSTM_COMMON_WGSL: &str = wgsl!("lstm_common");
pub const GEMM_WGSL: &str = wgsl!("gemm");
pub const LSTM_STEP_WGSL: &str = wgsl!("lstm_common", "fold_splits", "lstm_step");
/// The per-step kernel folding groups of split sums with subgroup shuffles (needs SUBGROUP).
pub const LSTM_STEP_SUBGROUP_WGSL: &str = wgsl!("lstm_common", "fold_splits_subgroup", "lstm_step");
pub const LSTM_SEQUENCE_WGSL: &str = wgsl!("lstm_common", "split_sum", "lstm_sequence");
/// The sequence kernel adding its split sums with subgroup shuffles (needs SUBGROUP).
pub const LSTM_SEQUENCE_SUBGROUP_WGSL: &str =
    wgsl!("lstm_common", "split_sum_subgroup", "lstm_sequence");
pub const LSTM_PROJ_WGSL: &str = wgsl!("lstm_common", "lstm_proj");
pub const LSTM_BACKWARD_WGSL: &str = wgsl!("lstm_common", "lstm_backward");
pub const LOSS_WGSL: &str = wgsl!("loss");
pub const REDUCE_WGSL: &str = wgsl!("reduce");
pub const OPTIMIZER_WGSL: &str = wgsl!("optimizer");
pub const PERMUTE_WGSL: &str = wgsl!("permute");
pub const COLUMN_SUM_WGSL: &str = wgsl!("column_sum");
pub const ROWS_WGSL: &str = wgsl!("rows");

/// Every source a pipeline is built from, preludes included, and the common prelude alone:
/// (name, source). Each file in shaders/ is part of at least one.
pub const SHADER_FILES: [(&str, &str); 14] = [
    ("lstm_common", LSTM_COMMON_WGSL),
    ("gemm", GEMM_WGSL),
    ("lstm_step", LSTM_STEP_WGSL),
    ("lstm_step_subgroup", LSTM_STEP_SUBGROUP_WGSL),
    ("lstm_sequence", LSTM_SEQUENCE_WGSL),
    ("lstm_sequence_subgroup", LSTM_SEQUENCE_SUBGROUP_WGSL),
    ("lstm_proj", LSTM_PROJ_WGSL),
    ("lstm_backward", LSTM_BACKWARD_WGSL),
    ("loss", LOSS_WGSL),
    ("reduce", REDUCE_WGSL),
    ("optimizer", OPTIMIZER_WGSL),
    ("permute", PERMUTE_WGSL),
    ("column_sum", COLUMN_SUM_WGSL),
    ("rows", ROWS_WGSL),
];

/// Invocations per workgroup of the 1-D kernels; passed to their `override WG`.
pub const WORKGROUP_SIZE: u32 = 64;
/// Output tile edge of the gemm kernel (`TILE` in gemm.wgsl).
pub const GEMM_TILE: u32 = 64;

/// How a kernel sees one binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// The params uniform, with a dynamic offset selecting the dispatch's (or chunk's) slot.
    Params,
    /// The step-index uniform of the per-step kernels, with a dynamic offset per step.
    StepIndex,
    StorageRead,
    StorageReadWrite,
}

/// The compute kernels: entry point `name()` of `shaders/<file()>.wgsl`.
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
}

impl Kernel {
    pub const ALL: [Kernel; 19] = [
        Kernel::Gemm,
        Kernel::Gemv,
        Kernel::LstmStep,
        Kernel::LstmStepSubgroup,
        Kernel::LstmSequence,
        Kernel::LstmSequenceSubgroup,
        Kernel::LstmProj,
        Kernel::LstmBackwardDh,
        Kernel::LstmBackwardStep,
        Kernel::MseGrad,
        Kernel::CrossEntropyGrad,
        Kernel::ReduceSum,
        Kernel::ReduceBlocks,
        Kernel::Sgd,
        Kernel::Adam,
        Kernel::Permute,
        Kernel::ColumnPartial,
        Kernel::ColumnFinish,
        Kernel::Rows,
    ];

    /// The entry point.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Gemm => "gemm",
            Kernel::Gemv => "gemv",
            Kernel::LstmStep | Kernel::LstmStepSubgroup => "lstm_step",
            Kernel::LstmSequence | Kernel::LstmSequenceSubgroup => "lstm_sequence",
            Kernel::LstmProj => "lstm_proj",
            Kernel::LstmBackwardDh => "lstm_backward_dh",
            Kernel::LstmBackwardStep => "lstm_backward_step",
            Kernel::MseGrad => "mse_grad",
            Kernel::CrossEntropyGrad => "cross_entropy_grad",
            Kernel::ReduceSum => "reduce_sum",
            Kernel::ReduceBlocks => "reduce_blocks",
            Kernel::Sgd => "sgd",
            Kernel::Adam => "adam",
            Kernel::Permute => "permute",
            Kernel::ColumnPartial => "column_partial",
            Kernel::ColumnFinish => "column_finish",
            Kernel::Rows => "rows",
        }
    }

    /// The name of its source in [`SHADER_FILES`] (the stem of its main .wgsl file).
    pub fn file(self) -> &'static str {
        match self {
            Kernel::Gemm | Kernel::Gemv => "gemm",
            Kernel::LstmStep => "lstm_step",
            Kernel::LstmStepSubgroup => "lstm_step_subgroup",
            Kernel::LstmSequence => "lstm_sequence",
            Kernel::LstmSequenceSubgroup => "lstm_sequence_subgroup",
            Kernel::LstmProj => "lstm_proj",
            Kernel::LstmBackwardDh | Kernel::LstmBackwardStep => "lstm_backward",
            Kernel::MseGrad | Kernel::CrossEntropyGrad => "loss",
            Kernel::ReduceSum | Kernel::ReduceBlocks => "reduce",
            Kernel::Sgd | Kernel::Adam => "optimizer",
            Kernel::Permute => "permute",
            Kernel::ColumnPartial | Kernel::ColumnFinish => "column_sum",
            Kernel::Rows => "rows",
        }
    }

    /// The source a pipeline is built from (with the common prelude where it has one).
    pub fn source(self) -> &'static str {
        SHADER_FILES
            .iter()
            .find(|(file, _)| *file == self.file())
            .map_or("", |(_, source)| source)
    }

    /// Binding `i` of group 0 is `bindings()[i]`.
    pub fn bindings(self) -> &'static [Binding] {
        use Binding::*;
        match self {
            Kernel::Gemm | Kernel::Gemv => &[
                Params,
                StorageRead,
                StorageRead,
                StorageRead,
                StorageReadWrite,
            ],
            Kernel::LstmStep | Kernel::LstmStepSubgroup => &[
                Params,
                StepIndex,
                StorageRead,
                StorageRead,
                StorageReadWrite,
                StorageReadWrite,
                StorageReadWrite,
                StorageReadWrite,
                StorageRead,
                StorageReadWrite,
            ],
            Kernel::LstmSequence | Kernel::LstmSequenceSubgroup => &[
                Params,
                StorageRead,
                StorageRead,
                StorageReadWrite,
                StorageReadWrite,
                StorageReadWrite,
                StorageReadWrite,
                StorageRead,
                StorageReadWrite,
            ],
            Kernel::LstmProj => &[
                Params,
                StepIndex,
                StorageRead,
                StorageRead,
                StorageReadWrite,
                StorageReadWrite,
                StorageRead,
            ],
            Kernel::LstmBackwardDh | Kernel::LstmBackwardStep => &[
                Params,
                StorageRead,
                StorageReadWrite,
                StorageRead,
                StorageReadWrite,
                StorageRead,
                StorageRead,
                StorageReadWrite,
                StorageRead,
            ],
            Kernel::MseGrad | Kernel::CrossEntropyGrad => &[
                Params,
                StorageRead,
                StorageRead,
                StorageRead,
                StorageReadWrite,
                StorageReadWrite,
            ],
            Kernel::ReduceSum | Kernel::ReduceBlocks => &[Params, StorageRead, StorageReadWrite],
            Kernel::Sgd | Kernel::Adam => &[
                Params,
                StorageReadWrite,
                StorageRead,
                StorageReadWrite,
                StorageReadWrite,
                StorageRead,
            ],
            Kernel::Permute => &[Params, StorageRead, StorageReadWrite],
            Kernel::ColumnPartial | Kernel::ColumnFinish => {
                &[Params, StorageRead, StorageReadWrite, StorageReadWrite]
            }
            Kernel::Rows => &[Params, StorageRead, StorageRead, StorageReadWrite],
        }
    }

    /// The pipeline-overridable constants of kernels that always run with the same ones
    /// (the step kernels take theirs from a [`super::StepVariant`]).
    pub fn default_constants(self) -> Vec<(&'static str, f64)> {
        match self {
            Kernel::Gemm
            | Kernel::Gemv
            | Kernel::ReduceSum
            | Kernel::ReduceBlocks
            | Kernel::ColumnPartial
            | Kernel::ColumnFinish
            | Kernel::LstmBackwardDh
            | Kernel::LstmBackwardStep
            | Kernel::LstmStep
            | Kernel::LstmStepSubgroup
            | Kernel::LstmSequence
            | Kernel::LstmSequenceSubgroup => vec![],
            _ => vec![("WG", WORKGROUP_SIZE as f64)],
        }
    }
}
