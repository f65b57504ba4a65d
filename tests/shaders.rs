//! Every WGSL file parses and validates with naga on its own (no GPU needed), and every
//! kernel's entry point is in its file.

use lstm_wgpu::gpu::Kernel;

fn module(source: &str, name: &str) -> naga::Module {
    naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}.wgsl does not parse:\n{}", e.emit_to_string(source)))
}

#[test]
fn every_shader_validates_with_naga() {
    let sources = lstm_wgpu::gpu::shader_sources();
    let on_disk = std::fs::read_dir("shaders").unwrap().count();
    assert_eq!(
        sources.len(),
        on_disk,
        "every file in shaders/ is listed in SHADER_FILES"
    );
    for (name, source) in sources {
        let module = module(source, name);
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
    }
}

#[test]
fn every_kernel_has_its_entry_point_and_bindings() {
    for kernel in Kernel::ALL {
        let m = module(kernel.source(), kernel.file());
        assert!(
            m.entry_points.iter().any(|ep| ep.name == kernel.name()),
            "{}.wgsl has no entry point {}",
            kernel.file(),
            kernel.name()
        );
        // The host's binding list covers every @binding the file declares.
        let declared = m
            .global_variables
            .iter()
            .filter(|(_, v)| v.binding.is_some())
            .count();
        assert_eq!(
            declared,
            kernel.bindings().len(),
            "{}: bindings",
            kernel.name()
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
    let find = |n: &str| Kernel::ALL.iter().find(|k| k.file() == n).unwrap().source();
    assert!(find("gemm").contains(&format!("const TILE: u32 = {GEMM_TILE}u;")));
    assert!(find("lstm_step").contains(&format!("const BT: u32 = {STEP_BATCH_TILE}u;")));
    assert!(find("lstm_backward").contains(&format!("const BT: u32 = {STEP_BATCH_TILE}u;")));
}
