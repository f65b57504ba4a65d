//! Without an adapter the GPU path fails with a message that says how to get one.
//! (Own test binary: it sets WGPU_BACKEND for its whole process.)

#[test]
fn missing_adapter_error_says_how_to_get_one() {
    // No Metal adapter exists on Linux/Windows CI machines; on macOS use DX12 instead.
    let backend = if cfg!(target_os = "macos") {
        "dx12"
    } else {
        "metal"
    };
    // SAFETY: this test binary has a single test, so no other thread reads the environment.
    unsafe { std::env::set_var("WGPU_BACKEND", backend) };
    let err = match lstm_wgpu::gpu::GpuContext::new() {
        Ok(_) => panic!("an adapter was found on backend {backend}"),
        Err(e) => e,
    };
    assert!(matches!(err, lstm_wgpu::Error::NoAdapter(_)), "{err}");
    assert!(
        err.to_string()
            .contains("apt-get install -y mesa-vulkan-drivers"),
        "{err}"
    );
}
