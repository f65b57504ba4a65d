//! Bind group layouts (one per kernel, built with the context) and compute pipelines (one per
//! kernel and set of override constants, built on first use and cached on the context).

use std::collections::HashMap;
use std::sync::Mutex;

use super::ready::ready_now;
use super::sync::lock;
use crate::error::{Error, Result};
use crate::gpu::kernels::{
    pipeline_label, BindingKind, Kernel, PARAMS_BINDING_SIZE, STEP_INDEX_BINDING_SIZE,
};

/// Override constants of one pipeline: (name, value), in a fixed order.
pub type Constants = Vec<(&'static str, f64)>;

/// A pipeline's identity: the kernel and its constants (values as bits, to hash them).
type PipelineKey = (Kernel, Vec<(&'static str, u64)>);

struct KernelLayout {
    bind_group: wgpu::BindGroupLayout,
    pipeline: wgpu::PipelineLayout,
}

/// The layouts of every kernel and the pipelines built so far.
pub(crate) struct Pipelines {
    layouts: Vec<KernelLayout>,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    built: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

impl Pipelines {
    pub fn new(device: &wgpu::Device) -> Self {
        let layouts = Kernel::ALL.iter().map(|&k| layout(device, k)).collect();
        Self {
            layouts,
            modules: Mutex::new(HashMap::new()),
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The bind group layout every pipeline of `kernel` shares.
    pub fn layout(&self, kernel: Kernel) -> &wgpu::BindGroupLayout {
        &self.layouts[kernel as usize].bind_group
    }

    /// The pipeline of `kernel` with `constants`, built the first time it is asked for.
    pub fn get(
        &self,
        device: &wgpu::Device,
        kernel: Kernel,
        constants: &[(&'static str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        let key: PipelineKey = (
            kernel,
            constants.iter().map(|&(n, v)| (n, v.to_bits())).collect(),
        );
        let mut built = lock(&self.built);
        if let Some(pipeline) = built.get(&key) {
            return Ok(pipeline.clone());
        }
        let spec = kernel.spec();
        let backend = device.adapter_info().backend;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = {
            let mut modules = lock(&self.modules);
            modules
                .entry(spec.file)
                .or_insert_with(|| {
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(spec.file),
                        source: wgpu::ShaderSource::Wgsl(kernel.source_for(backend)),
                    })
                })
                .clone()
        };
        let label = pipeline_label(kernel, constants);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&self.layouts[kernel as usize].pipeline),
            module: &module,
            entry_point: Some(spec.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                zero_initialize_workgroup_memory: true,
            },
            cache: None,
        });
        // known at once natively; on the web the caller's scopes report it
        if let Some(Some(source)) = ready_now(scope.pop()) {
            return Err(Error::Gpu {
                during: "pipeline creation",
                source,
            });
        }
        built.insert(key, pipeline.clone());
        Ok(pipeline)
    }
}

fn layout(device: &wgpu::Device, kernel: Kernel) -> KernelLayout {
    let name = kernel.name();
    let uniform = |size| wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Uniform,
        has_dynamic_offset: true,
        min_binding_size: wgpu::BufferSize::new(size),
    };
    let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
        .spec()
        .bindings
        .iter()
        .enumerate()
        .map(|(i, binding)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: match binding.kind {
                BindingKind::Params => uniform(PARAMS_BINDING_SIZE),
                BindingKind::StepIndex => uniform(STEP_INDEX_BINDING_SIZE),
                BindingKind::Read | BindingKind::ReadWrite => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: binding.kind == BindingKind::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
            },
            count: None,
        })
        .collect();
    let bind_group = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(name),
        entries: &entries,
    });
    let pipeline = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(&bind_group)],
        immediate_size: 0,
    });
    KernelLayout {
        bind_group,
        pipeline,
    }
}
