//! Every WGSL kernel parses and validates with naga on its own (no GPU needed).

#[test]
fn every_shader_validates_with_naga() {
    let sources = lstm_wgpu::gpu::shader_sources();
    assert_eq!(
        sources.len(),
        3,
        "a kernel was added: this test covers them all automatically"
    );
    for (name, source) in sources {
        let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| {
            panic!("{name}.wgsl does not parse:\n{}", e.emit_to_string(source))
        });
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| {
            panic!(
                "{name}.wgsl does not validate:\n{}",
                e.emit_to_string(source)
            )
        });
        assert!(
            module.entry_points.iter().any(|ep| ep.name == name),
            "{name}.wgsl has no entry point named {name}"
        );
    }
}

/// The host's workgroup constants match the shaders' (`override WG` defaults, tile sizes).
#[test]
fn host_constants_match_shaders() {
    use lstm_wgpu::gpu::{GEMM_TILE, STEP_BATCH_TILE, WORKGROUP_SIZE};
    for (name, source) in lstm_wgpu::gpu::shader_sources() {
        if source.contains("override WG") {
            assert!(
                source.contains(&format!("override WG: u32 = {WORKGROUP_SIZE}u;")),
                "{name}: WG default"
            );
        }
    }
    let sources = lstm_wgpu::gpu::shader_sources();
    let find = |n: &str| sources.iter().find(|(name, _)| *name == n).unwrap().1;
    assert!(find("gemm").contains(&format!("const TILE: u32 = {GEMM_TILE}u;")));
    assert!(find("lstm_step").contains(&format!("const BT: u32 = {STEP_BATCH_TILE}u;")));
}
