//! `GpuContext`: a device, its queue and the pipelines, created once and shared by models.

use std::sync::Arc;

use super::buffers::uniform_init;
use super::params::{StepIndex, STEP_INDEX_BINDING_SIZE};
use super::pipelines::Pipelines;
use crate::error::{Error, Result};

/// Steps per chunk of the per-step kernels: the step-index buffer has this many slots.
pub const MAX_CHUNK_STEPS: usize = 1024;

/// How [`GpuContext::with_options`] creates its device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextOptions {
    /// Request WebGPU's default limits instead of the adapter's own, so that what runs here
    /// also runs in a browser (shapes then chunk sooner and workgroups stay smaller).
    pub webgpu_limits: bool,
}

/// A wgpu device and queue with this crate's pipelines on it. Cheap to clone; models hold
/// a clone.
#[derive(Clone)]
pub struct GpuContext {
    inner: Arc<Inner>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter_info: Option<wgpu::AdapterInfo>,
    pipelines: Pipelines,
    /// slot i (at i * step_stride bytes) holds StepIndex { local: i }
    step_slots: wgpu::Buffer,
    step_stride: u32,
}

impl GpuContext {
    /// Picks an adapter (honouring `WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`) and
    /// creates a device with the adapter's own limits, and timestamp queries and subgroups
    /// where the adapter has them. Blocks until the device exists.
    pub fn new() -> Result<Self> {
        Self::with_options(ContextOptions::default())
    }

    /// [`GpuContext::new`] with options (e.g. WebGPU's default limits).
    pub fn with_options(options: ContextOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(options))
    }

    /// The async form of [`GpuContext::with_options`].
    pub async fn new_async(options: ContextOptions) -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = wgpu::util::initialize_adapter_from_env_or_default(&instance, None)
            .await
            .map_err(|e| Error::NoAdapter(e.to_string()))?;
        let required_limits = if options.webgpu_limits {
            wgpu::Limits::default()
        } else {
            adapter.limits()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("lstm-wgpu"),
                required_features: adapter.features()
                    & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP),
                required_limits,
                ..Default::default()
            })
            .await?;
        Self::build(device, queue, Some(adapter.get_info()))
    }

    /// Uses a caller's device and queue (for embedding in a wgpu application). The caller's
    /// limits apply; nothing beyond WebGPU's defaults is needed.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        Self::build(device, queue, None)
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: Option<wgpu::AdapterInfo>,
    ) -> Result<Self> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipelines = Pipelines::new(&device);
        let step_stride = device
            .limits()
            .min_uniform_buffer_offset_alignment
            .max(STEP_INDEX_BINDING_SIZE as u32);
        let mut slots = vec![0u8; MAX_CHUNK_STEPS * step_stride as usize];
        for i in 0..MAX_CHUNK_STEPS {
            let at = i * step_stride as usize;
            let index = StepIndex {
                local: i as u32,
                _pad: [0; 3],
            };
            slots[at..at + STEP_INDEX_BINDING_SIZE as usize]
                .copy_from_slice(bytemuck::bytes_of(&index));
        }
        let step_slots = uniform_init(&device, "step indices", &slots);
        if let Some(source) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                during: "context creation",
                source,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                device,
                queue,
                adapter_info,
                pipelines,
                step_slots,
                step_stride,
            }),
        })
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    pub(crate) fn pipelines(&self) -> &Pipelines {
        &self.inner.pipelines
    }

    /// The step-index buffer and its slot stride in bytes (slot i holds i).
    pub(crate) fn step_slots(&self) -> (&wgpu::Buffer, u32) {
        (&self.inner.step_slots, self.inner.step_stride)
    }

    /// Whether GPU time can be measured (the device has TIMESTAMP_QUERY).
    pub fn has_timestamps(&self) -> bool {
        self.device()
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// The adapter this context created its device on (`None` for a caller's device).
    pub fn adapter_info(&self) -> Option<&wgpu::AdapterInfo> {
        self.inner.adapter_info.as_ref()
    }

    /// A one-line description of the adapter, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub fn adapter_name(&self) -> String {
        match &self.inner.adapter_info {
            Some(info) => format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type),
            None => "caller-provided device".into(),
        }
    }

    /// Bytes of device memory this context's device has allocated (buffers, staging), where
    /// the backend reports it (Vulkan, DX12).
    pub fn memory_in_use(&self) -> Option<u64> {
        self.device()
            .generate_allocator_report()
            .map(|r| r.total_allocated_bytes)
    }

    /// Waits until the GPU has finished all submitted work.
    pub fn wait_idle(&self) -> Result<()> {
        self.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Readback(e.to_string()))
    }
}
