//! `GpuContext`: a device, its queue and the pipelines, created once and shared by models.

use std::sync::Arc;

use super::kernels::Pipelines;
use crate::error::{Error, Result};

/// A wgpu device and queue with every pipeline of this crate built on it.
/// Cheap to clone; models hold a clone.
#[derive(Clone)]
pub struct GpuContext {
    inner: Arc<Inner>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter_info: Option<wgpu::AdapterInfo>,
    pipelines: Pipelines,
}

impl GpuContext {
    /// Picks an adapter (honouring `WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`) and
    /// creates a device with WebGPU's default limits, so what runs here runs in a browser.
    /// Blocks until the device exists.
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// The async form of [`GpuContext::new`].
    pub async fn new_async() -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = wgpu::util::initialize_adapter_from_env_or_default(&instance, None)
            .await
            .map_err(|e| Error::NoAdapter(e.to_string()))?;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("lstm-wgpu"),
                required_features: wgpu::Features::empty(),
                required_limits: wgpu::Limits::default(),
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
        if let Some(source) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                during: "pipeline creation",
                source,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                device,
                queue,
                adapter_info,
                pipelines,
            }),
        })
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    pub(crate) fn pipelines(&self) -> &Pipelines {
        &self.inner.pipelines
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

    /// Waits until the GPU has finished all submitted work.
    pub fn wait_idle(&self) -> Result<()> {
        self.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Readback(e.to_string()))
    }
}
