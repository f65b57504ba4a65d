//! The WGSL sources, as the pipelines are built from them: a kernel's source is its preludes,
//! then its own file from shaders/.

/// The text of shaders/<name>.wgsl files, concatenated in order.
macro_rules! wgsl {
    ($($name:literal),+) => {
        concat!($(include_str!(concat!("../../../shaders/", $name, ".wgsl"))),+)
    };
}

/// Definitions the recurrent kernels share (StepParams, the state-slot rule, the gate math);
/// the first prelude of each of them.
pub const LSTM_COMMON: &str = wgsl!("lstm_common");
/// gemm and gemv.
pub const GEMM: &str = wgsl!("gemm");
/// The per-step kernel, its split sums folded in workgroup memory.
pub const LSTM_STEP: &str = wgsl!("lstm_common", "fold_splits", "lstm_step");
/// The per-step kernel folding groups of split sums with subgroup shuffles (needs SUBGROUP).
pub const LSTM_STEP_SUBGROUP: &str = wgsl!("lstm_common", "fold_splits_subgroup", "lstm_step");
/// The sequence kernel, its split sums added in workgroup memory.
pub const LSTM_SEQUENCE: &str = wgsl!("lstm_common", "split_sum", "lstm_sequence");
/// The sequence kernel adding its split sums with subgroup shuffles (needs SUBGROUP).
pub const LSTM_SEQUENCE_SUBGROUP: &str =
    wgsl!("lstm_common", "split_sum_subgroup", "lstm_sequence");
/// The projection of a step's hidden state.
pub const LSTM_PROJ: &str = wgsl!("lstm_common", "lstm_proj");
/// The backward step and its dh product.
pub const LSTM_BACKWARD: &str = wgsl!("lstm_common", "lstm_backward");
/// Loss gradients.
pub const LOSS: &str = wgsl!("loss");
/// Fixed-order sums.
pub const REDUCE: &str = wgsl!("reduce");
/// SGD and Adam.
pub const OPTIMIZER: &str = wgsl!("optimizer");
/// Strided copies.
pub const PERMUTE: &str = wgsl!("permute");
/// Column sums in two passes.
pub const COLUMN_SUM: &str = wgsl!("column_sum");
/// State rows between a pool and a batch.
pub const ROWS: &str = wgsl!("rows");
/// The embedding's lookup.
pub const EMBEDDING_GATHER: &str = wgsl!("embedding_gather");
/// The embedding's gradient.
pub const EMBEDDING_GRAD: &str = wgsl!("embedding_grad");
/// Dropout masks.
pub const DROPOUT: &str = wgsl!("dropout");

/// Every source a pipeline is built from, preludes included, and the common prelude alone:
/// (name, source). Each file in shaders/ is part of at least one.
pub const SHADER_FILES: [(&str, &str); 17] = [
    ("lstm_common", LSTM_COMMON),
    ("gemm", GEMM),
    ("lstm_step", LSTM_STEP),
    ("lstm_step_subgroup", LSTM_STEP_SUBGROUP),
    ("lstm_sequence", LSTM_SEQUENCE),
    ("lstm_sequence_subgroup", LSTM_SEQUENCE_SUBGROUP),
    ("lstm_proj", LSTM_PROJ),
    ("lstm_backward", LSTM_BACKWARD),
    ("loss", LOSS),
    ("reduce", REDUCE),
    ("optimizer", OPTIMIZER),
    ("permute", PERMUTE),
    ("column_sum", COLUMN_SUM),
    ("rows", ROWS),
    ("embedding_gather", EMBEDDING_GATHER),
    ("embedding_grad", EMBEDDING_GRAD),
    ("dropout", DROPOUT),
];
