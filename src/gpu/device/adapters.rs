//! What wgpu can see on this machine.

/// One adapter with what matters for this crate.
pub struct AdapterSummary {
    /// Name, backend, device type and driver.
    pub info: wgpu::AdapterInfo,
    /// The adapter's own (maximum) limits.
    pub limits: wgpu::Limits,
    /// The features the adapter offers.
    pub features: wgpu::Features,
}

/// Every adapter on every backend wgpu was built with (honours `WGPU_BACKEND`). Blocks; see
/// [`enumerate_adapters_async`].
#[cfg(not(target_arch = "wasm32"))]
pub fn enumerate_adapters() -> Vec<AdapterSummary> {
    pollster::block_on(enumerate_adapters_async())
}

/// The async form of [`enumerate_adapters`].
pub async fn enumerate_adapters_async() -> Vec<AdapterSummary> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    instance
        .enumerate_adapters(backends)
        .await
        .into_iter()
        .map(|a| AdapterSummary {
            info: a.get_info(),
            limits: a.limits(),
            features: a.features(),
        })
        .collect()
}

/// The limits this crate's kernels depend on, as (name, value) pairs.
pub fn relevant_limits(limits: &wgpu::Limits) -> Vec<(&'static str, u64)> {
    vec![
        (
            "max_storage_buffer_binding_size",
            limits.max_storage_buffer_binding_size,
        ),
        ("max_buffer_size", limits.max_buffer_size),
        (
            "max_compute_workgroups_per_dimension",
            limits.max_compute_workgroups_per_dimension as u64,
        ),
        (
            "max_compute_invocations_per_workgroup",
            limits.max_compute_invocations_per_workgroup as u64,
        ),
        (
            "max_compute_workgroup_storage_size",
            limits.max_compute_workgroup_storage_size as u64,
        ),
        (
            "max_storage_buffers_per_shader_stage",
            limits.max_storage_buffers_per_shader_stage as u64,
        ),
        (
            "min_uniform_buffer_offset_alignment",
            limits.min_uniform_buffer_offset_alignment as u64,
        ),
    ]
}
