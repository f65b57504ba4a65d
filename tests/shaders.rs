//! Every WGSL source a pipeline is built from (each file in shaders/ with the preludes the
//! host puts before it) parses and validates with naga (no GPU needed), and every kernel's
//! entry point and bindings are in its source.

use lstm_wgpu::gpu::Kernel;

fn module(source: &str, name: &str) -> naga::Module {
    naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}.wgsl does not parse:\n{}", e.emit_to_string(source)))
}

/// Validates as wgpu does on a device without optional features, or, for the `_subgroup`
/// sources, with SUBGROUP (and only those may need it).
fn validate(module: &naga::Module, source: &str, name: &str) -> naga::valid::ModuleInfo {
    use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, Validator};
    let subgroups = name.ends_with("_subgroup");
    let caps = if subgroups {
        Capabilities::SUBGROUP
    } else {
        Capabilities::default()
    };
    let mut validator = Validator::new(naga::valid::ValidationFlags::all(), caps);
    if subgroups {
        validator
            .subgroup_stages(ShaderStages::COMPUTE)
            .subgroup_operations(SubgroupOperationSet::all());
    }
    validator.validate(module).unwrap_or_else(|e| {
        panic!(
            "{name}.wgsl does not validate:\n{}",
            e.emit_to_string(source)
        )
    })
}

#[test]
fn every_shader_validates_with_naga() {
    let sources = lstm_wgpu::gpu::shader_sources();
    for entry in std::fs::read_dir("shaders").unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            sources.iter().any(|(_, source)| source.contains(&text)),
            "{} is in no pipeline source (SHADER_FILES)",
            path.display()
        );
    }
    for (name, source) in sources {
        validate(&module(source, name), source, name);
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
        BACKWARD_MAX_ROWS, GEMM_TILE, SEQUENCE_MAX_PER_INVOCATION, STEP_MAX_QUADS, STEP_MAX_ROWS,
        WORKGROUP_SIZE,
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
    assert!(find("lstm_step").contains(&format!("const MAX_QPI: u32 = {STEP_MAX_QUADS}u;")));
    assert!(find("lstm_sequence").contains(&format!(
        "const MAX_L: u32 = {SEQUENCE_MAX_PER_INVOCATION}u;"
    )));
    assert!(find("lstm_backward").contains(&format!("const MAX_BT: u32 = {BACKWARD_MAX_ROWS}u;")));
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
    use lstm_wgpu::gpu::{DeviceCaps, KernelChoice, StepShape};
    let plain = DeviceCaps {
        limits: wgpu::Limits::default(),
        subgroup_size: None,
    };
    let subgroups = DeviceCaps {
        subgroup_size: Some(32),
        ..plain.clone()
    };
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
        let folded: KernelChoice = "step u=4 ks=16 bt=1 qpi=1 sg=8".parse().unwrap();
        for (choice, caps) in [
            (KernelChoice::Auto, &plain),
            (KernelChoice::Auto, &subgroups),
            (KernelChoice::Step, &plain),
            (folded, &subgroups),
        ] {
            let Ok(variant) = choice.resolve(shape, caps) else {
                continue;
            };
            let kernel = variant.kernel();
            let m = module(kernel.source(), kernel.file());
            let info = validate(&m, kernel.source(), kernel.file());
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
