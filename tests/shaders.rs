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
    use lstm_wgpu::gpu::{
        BACKWARD_BATCH_TILE, GEMM_TILE, SEQUENCE_MAX_PER_INVOCATION, STEP_MAX_ROWS, WORKGROUP_SIZE,
    };
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
    assert!(find("lstm_step").contains(&format!("const MAX_BT: u32 = {STEP_MAX_ROWS}u;")));
    assert!(find("lstm_sequence").contains(&format!(
        "const MAX_L: u32 = {SEQUENCE_MAX_PER_INVOCATION}u;"
    )));
    assert!(find("lstm_backward").contains(&format!("const BT: u32 = {BACKWARD_BATCH_TILE}u;")));
}

/// Every uniform struct has the same size in WGSL (naga's layout) as its Rust twin, and
/// StepParams is declared once: in lstm_common.wgsl, which the recurrent kernels start with.
#[test]
fn params_structs_match_their_rust_twins() {
    use lstm_wgpu::gpu::params_sizes;
    let common = lstm_wgpu::gpu::shader_sources()
        .into_iter()
        .find(|(n, _)| *n == "lstm_common")
        .unwrap()
        .1;
    for (name, source) in lstm_wgpu::gpu::shader_sources() {
        let declares = source.matches("struct StepParams {").count();
        assert!(
            declares == 0 || (declares == 1 && source.starts_with(common)),
            "{name}: StepParams must come from lstm_common.wgsl only"
        );
        let m = module(source, name);
        for (ty_name, rust_size) in params_sizes() {
            let found = m
                .types
                .iter()
                .find(|(_, t)| t.name.as_deref() == Some(ty_name));
            if let Some((_, ty)) = found {
                let naga::TypeInner::Struct { span, .. } = ty.inner else {
                    panic!("{name}: {ty_name} is not a struct");
                };
                assert_eq!(span as usize, rust_size, "{name}: size of {ty_name}");
            }
        }
    }
}

/// The step kernels' override-sized workgroup arrays and workgroup sizes resolve for every
/// variant the table can pick (naga's override processing, as pipeline creation does it).
#[test]
fn step_kernels_specialise_for_their_variants() {
    use lstm_wgpu::gpu::{KernelChoice, StepShape};
    let limits = wgpu::Limits::default();
    for (hidden, hidden_out, batch) in [
        (1, 1, 1),
        (64, 64, 3),
        (63, 63, 64),
        (512, 512, 1),
        (600, 300, 17),
        (1024, 1024, 64),
    ] {
        let shape = StepShape {
            hidden,
            hidden_out,
            batch,
        };
        for choice in [KernelChoice::Auto, KernelChoice::Step] {
            let Ok(variant) = choice.resolve(shape, &limits) else {
                continue;
            };
            let kernel = if variant.is_sequence() {
                Kernel::LstmSequence
            } else {
                Kernel::LstmStep
            };
            let m = module(kernel.source(), kernel.file());
            let info = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&m)
            .unwrap();
            let constants: naga::back::PipelineConstants = variant
                .constants(shape)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            naga::back::pipeline_constants::process_overrides(&m, &info, None, &constants)
                .unwrap_or_else(|e| panic!("{variant} at {shape:?}: {e:?}"));
        }
    }
}
