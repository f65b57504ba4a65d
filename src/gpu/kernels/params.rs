//! Per-dispatch uniform parameters, laid out exactly as the WGSL structs, and the arena that
//! holds one slot per dispatch (selected with a dynamic offset, so bind groups never change).

use bytemuck::{Pod, Zeroable};

/// `GemmParams` in shaders/gemm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct GemmParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub has_bias: u32,
    pub a_offset: u32,
    pub a_group_rows: u32,
    pub a_group_stride: u32,
    pub a_row_stride: u32,
    pub a_k_stride: u32,
    pub b_offset: u32,
    pub b_k_stride: u32,
    pub b_n_stride: u32,
    pub c_offset: u32,
    pub c_row_stride: u32,
    pub accumulate: u32,
    /// bias[bias_offset + n] is added to column n
    pub bias_offset: u32,
    /// split K: k per workgroup layer z of the grid (0: no split), and where each split's C
    /// goes (see gemm.wgsl)
    pub k_split: u32,
    pub c_split_stride: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<GemmParams>() == 80);

/// A matrix inside a buffer, read through strides: element (r, c) is at
/// `offset + r * row_stride + c * col_stride` (in f32 elements).
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub offset: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl View {
    /// A row-major matrix with rows of `width` elements, starting at `offset`.
    pub fn rows(offset: usize, width: usize) -> Self {
        Self {
            offset,
            row_stride: width,
            col_stride: 1,
        }
    }

    /// The transpose of [`View::rows`]`(offset, width)`.
    pub fn transposed(offset: usize, width: usize) -> Self {
        Self {
            offset,
            row_stride: 1,
            col_stride: width,
        }
    }
}

impl GemmParams {
    /// `C[m, n] = A[m, k] · B[k, n]` for strided views (`c` must have unit column stride);
    /// errors when a number does not fit the shader's u32.
    pub fn product(m: usize, n: usize, k: usize, a: View, b: View, c: View) -> crate::Result<Self> {
        let u = |what: &str, v: usize| {
            u32::try_from(v).map_err(|_| {
                crate::Error::Input(format!("gemm {what} ({v}) does not fit in 32 bits"))
            })
        };
        debug_assert_eq!(c.col_stride, 1);
        Ok(Self {
            m: u("m", m)?,
            n: u("n", n)?,
            k: u("k", k)?,
            a_offset: u("offset", a.offset)?,
            a_group_rows: u("m", m.max(1))?,
            a_row_stride: u("stride", a.row_stride)?,
            a_k_stride: u("stride", a.col_stride)?,
            b_offset: u("offset", b.offset)?,
            b_k_stride: u("stride", b.row_stride)?,
            b_n_stride: u("stride", b.col_stride)?,
            c_offset: u("offset", c.offset)?,
            c_row_stride: u("stride", c.row_stride)?,
            ..Default::default()
        })
    }

    /// Adds `bias[n]` to every row.
    pub fn with_bias(mut self, has_bias: bool) -> Self {
        self.has_bias = has_bias as u32;
        self
    }
}

/// `StepParams` in shaders/lstm_common.wgsl: one slot per layer and chunk of steps.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct StepParams {
    pub seq_len: u32,
    pub batch: u32,
    pub hidden: u32,
    pub hidden_out: u32,
    pub dirs: u32,
    pub y_t_stride: u32,
    pub y_b_stride: u32,
    pub proj: u32,
    /// 1 = training: keep every state, the gates and h_full by time (see lstm_common.wgsl)
    pub cache: u32,
    pub chunk_start: u32,
    pub chunk_len: u32,
    pub pre_t0_fwd: u32,
    pub pre_t0_rev: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<StepParams>() == 64);

/// `StepIndex` in shaders/lstm_common.wgsl: slot `i` of the context's step-index buffer
/// holds `i`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct StepIndex {
    pub local: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<StepIndex>() == STEP_INDEX_BINDING_SIZE as usize);

/// Bytes of the step-index uniform binding.
pub const STEP_INDEX_BINDING_SIZE: u64 = 16;

/// `BackParams` in shaders/lstm_backward.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct BackParams {
    pub seq_len: u32,
    pub batch: u32,
    pub hidden: u32,
    pub hidden_out: u32,
    pub dirs: u32,
    pub next_step: u32,
    pub has_current: u32,
    pub has_next: u32,
    pub w_hh_offset: u32,
    pub w_hr_offset: u32,
    pub carry_c_offset: u32,
    pub proj: u32,
}
const _: () = assert!(std::mem::size_of::<BackParams>() == 48);

/// `LossParams` in shaders/loss.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LossParams {
    pub n: u32,
    pub width: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<LossParams>() == 16);

/// `ReduceParams` in shaders/reduce.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ReduceParams {
    pub n: u32,
    pub out_index: u32,
    pub square: u32,
    pub scale: f32,
    /// reduce_blocks: items per workgroup
    pub block: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<ReduceParams>() == 32);

/// `OptParams` in shaders/optimizer.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct OptParams {
    pub n: u32,
    pub decoupled: u32,
    pub clip: u32,
    pub has_momentum: u32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub max_norm: f32,
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<OptParams>() == 48);

/// `PermuteParams` in shaders/permute.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PermuteParams {
    pub count: u32,
    pub src_offset: u32,
    pub dst_offset: u32,
    pub has_add: u32,
    pub dims: [u32; 4],
    pub strides: [u32; 4],
    pub add_offset: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<PermuteParams>() == 64);

/// `ColumnParams` in shaders/column_sum.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ColumnParams {
    pub m: u32,
    pub n: u32,
    pub row_stride: u32,
    pub x_offset: u32,
    pub out_offset: u32,
    pub block: u32,
    pub splits: u32,
    /// also write the sums here (u32::MAX: nowhere)
    pub copy_offset: u32,
}
const _: () = assert!(std::mem::size_of::<ColumnParams>() == 32);

/// `RowsParams` in shaders/rows.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RowsParams {
    pub rows: u32,
    pub width: u32,
    pub planes: u32,
    pub slots: u32,
    /// 0: gather (pool to batch), 1: scatter (batch to pool)
    pub mode: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<RowsParams>() == 32);

/// Bytes of the largest params struct: the binding size of every params uniform.
pub const PARAMS_BINDING_SIZE: u64 = 80;

/// A host-side image of the params buffer: one aligned slot per dispatch.
pub struct ParamArena {
    slot: usize,
    bytes: Vec<u8>,
}

impl ParamArena {
    /// `alignment` is the device's `min_uniform_buffer_offset_alignment`.
    pub fn new(alignment: u32) -> Self {
        // a multiple of the alignment that holds the largest params struct
        let slot = (PARAMS_BINDING_SIZE as usize).next_multiple_of(alignment.max(1) as usize);
        Self {
            slot,
            bytes: Vec::new(),
        }
    }

    /// Appends `value` in a fresh slot and returns the slot's byte offset.
    pub fn push<T: Pod>(&mut self, value: &T) -> u32 {
        let offset = self.bytes.len();
        self.bytes.resize(offset + self.slot, 0);
        let raw = bytemuck::bytes_of(value);
        self.bytes[offset..offset + raw.len()].copy_from_slice(raw);
        offset as u32
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// `EmbeddingParams` in shaders/embedding_gather.wgsl and embedding_grad.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct EmbeddingParams {
    pub n: u32,
    pub dim: u32,
    pub offset: u32,
    /// embedding_grad: 1 to add to the gradient there (tied weights), 0 to write it
    pub accumulate: u32,
}
const _: () = assert!(std::mem::size_of::<EmbeddingParams>() == 16);

/// `DropoutParams` in shaders/dropout.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DropoutParams {
    pub n: u32,
    pub site: u32,
    pub keep_below: u32,
    pub scale: f32,
}
const _: () = assert!(std::mem::size_of::<DropoutParams>() == 16);

/// (WGSL struct name, Rust size in bytes) of every params struct, for checking against the
/// shaders' layouts.
pub fn params_sizes() -> Vec<(&'static str, usize)> {
    use std::mem::size_of;
    vec![
        ("GemmParams", size_of::<GemmParams>()),
        ("StepParams", size_of::<StepParams>()),
        ("StepIndex", size_of::<StepIndex>()),
        ("BackParams", size_of::<BackParams>()),
        ("LossParams", size_of::<LossParams>()),
        ("ReduceParams", size_of::<ReduceParams>()),
        ("OptParams", size_of::<OptParams>()),
        ("PermuteParams", size_of::<PermuteParams>()),
        ("ColumnParams", size_of::<ColumnParams>()),
        ("RowsParams", size_of::<RowsParams>()),
        ("EmbeddingParams", size_of::<EmbeddingParams>()),
        ("DropoutParams", size_of::<DropoutParams>()),
    ]
}
