//! Every WGSL kernel, its binding list (in the order of the comment atop its .wgsl file) and
//! its pipeline. Pipelines are built once per [`GpuContext`](super::GpuContext).

use super::params::PARAMS_BINDING_SIZE;

pub const GEMM_WGSL: &str = include_str!("../../shaders/gemm.wgsl");
pub const LSTM_STEP_WGSL: &str = include_str!("../../shaders/lstm_step.wgsl");
pub const LSTM_PROJ_WGSL: &str = include_str!("../../shaders/lstm_proj.wgsl");
pub const LSTM_BACKWARD_WGSL: &str = include_str!("../../shaders/lstm_backward.wgsl");
pub const LOSS_WGSL: &str = include_str!("../../shaders/loss.wgsl");
pub const REDUCE_WGSL: &str = include_str!("../../shaders/reduce.wgsl");
pub const OPTIMIZER_WGSL: &str = include_str!("../../shaders/optimizer.wgsl");
pub const PERMUTE_WGSL: &str = include_str!("../../shaders/permute.wgsl");

/// Every shader file: (file stem, source).
pub const SHADER_FILES: [(&str, &str); 8] = [
    ("gemm", GEMM_WGSL),
    ("lstm_step", LSTM_STEP_WGSL),
    ("lstm_proj", LSTM_PROJ_WGSL),
    ("lstm_backward", LSTM_BACKWARD_WGSL),
    ("loss", LOSS_WGSL),
    ("reduce", REDUCE_WGSL),
    ("optimizer", OPTIMIZER_WGSL),
    ("permute", PERMUTE_WGSL),
];

/// Invocations per workgroup of the 1-D kernels; passed to their `override WG`.
pub const WORKGROUP_SIZE: u32 = 64;
/// Batch rows per lstm_step workgroup (`BT` in lstm_step.wgsl).
pub const STEP_BATCH_TILE: u32 = 4;
/// Output tile edge of the gemm kernel (`TILE` in gemm.wgsl).
pub const GEMM_TILE: u32 = 64;

/// How a kernel sees one binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// The params uniform, with a dynamic offset selecting the dispatch's slot.
    Params,
    StorageRead,
    StorageReadWrite,
}

/// The compute kernels: entry point `name()` of `shaders/<file()>.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Gemm,
    LstmStep,
    LstmProj,
    LstmBackwardDh,
    LstmBackwardStep,
    MseGrad,
    CrossEntropyGrad,
    ReduceSum,
    Sgd,
    Adam,
    Permute,
}

impl Kernel {
    pub const ALL: [Kernel; 11] = [
        Kernel::Gemm,
        Kernel::LstmStep,
        Kernel::LstmProj,
        Kernel::LstmBackwardDh,
        Kernel::LstmBackwardStep,
        Kernel::MseGrad,
        Kernel::CrossEntropyGrad,
        Kernel::ReduceSum,
        Kernel::Sgd,
        Kernel::Adam,
        Kernel::Permute,
    ];

    /// The entry point.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Gemm => "gemm",
            Kernel::LstmStep => "lstm_step",
            Kernel::LstmProj => "lstm_proj",
            Kernel::LstmBackwardDh => "lstm_backward_dh",
            Kernel::LstmBackwardStep => "lstm_backward_step",
            Kernel::MseGrad => "mse_grad",
            Kernel::CrossEntropyGrad => "cross_entropy_grad",
            Kernel::ReduceSum => "reduce_sum",
            Kernel::Sgd => "sgd",
            Kernel::Adam => "adam",
            Kernel::Permute => "permute",
        }
    }

    /// The shader file's stem.
    pub fn file(self) -> &'static str {
        match self {
            Kernel::Gemm => "gemm",
            Kernel::LstmStep => "lstm_step",
            Kernel::LstmProj => "lstm_proj",
            Kernel::LstmBackwardDh | Kernel::LstmBackwardStep => "lstm_backward",
            Kernel::MseGrad | Kernel::CrossEntropyGrad => "loss",
            Kernel::ReduceSum => "reduce",
            Kernel::Sgd | Kernel::Adam => "optimizer",
            Kernel::Permute => "permute",
        }
    }

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
            Kernel::Gemm => &[
                Params,
                StorageRead,
                StorageRead,
                StorageRead,
                StorageReadWrite,
            ],
            Kernel::LstmStep => &[
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
            Kernel::ReduceSum => &[Params, StorageRead, StorageReadWrite],
            Kernel::Sgd | Kernel::Adam => &[
                Params,
                StorageReadWrite,
                StorageRead,
                StorageReadWrite,
                StorageReadWrite,
                StorageRead,
            ],
            Kernel::Permute => &[Params, StorageRead, StorageReadWrite],
        }
    }

    /// Pipeline-overridable constants.
    fn constants(self) -> &'static [(&'static str, f64)] {
        match self {
            Kernel::Gemm | Kernel::ReduceSum => &[],
            _ => &[("WG", WORKGROUP_SIZE as f64)],
        }
    }
}

/// A kernel's bind group layout and pipeline.
pub struct KernelPipeline {
    pub layout: wgpu::BindGroupLayout,
    pub pipeline: wgpu::ComputePipeline,
}

/// All pipelines, indexed by [`Kernel`].
pub struct Pipelines {
    pipelines: Vec<KernelPipeline>,
}

impl Pipelines {
    pub fn new(device: &wgpu::Device) -> Self {
        let pipelines = Kernel::ALL.iter().map(|&k| build(device, k)).collect();
        Self { pipelines }
    }

    pub fn get(&self, kernel: Kernel) -> &KernelPipeline {
        &self.pipelines[kernel as usize]
    }
}

fn build(device: &wgpu::Device, kernel: Kernel) -> KernelPipeline {
    let name = kernel.name();
    let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
        .bindings()
        .iter()
        .enumerate()
        .map(|(i, binding)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: match binding {
                Binding::Params => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(PARAMS_BINDING_SIZE),
                },
                Binding::StorageRead | Binding::StorageReadWrite => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *binding == Binding::StorageRead,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
            },
            count: None,
        })
        .collect();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(name),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(name),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: kernel.constants(),
            zero_initialize_workgroup_memory: true,
        },
        cache: None,
    });
    KernelPipeline { layout, pipeline }
}
