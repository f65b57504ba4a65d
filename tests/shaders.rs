//! Every WGSL source a pipeline is built from (each file in shaders/ with the preludes the
//! host puts before it) parses and validates with naga (no GPU needed), and every row of the
//! kernel table matches naga's reflection of its shader: entry point, and each binding's
//! index, name, kind and access.

use lstm_wgpu::gpu::internals::{BindingKind, Kernel, KernelSpec, KERNELS, SHADER_FILES};
use lstm_wgpu::wgpu;

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
    let sources = SHADER_FILES;
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

/// What a shader declares for binding i of group 0: its name and kind, as the table says it.
fn declared_bindings(module: &naga::Module, spec: &KernelSpec) -> Vec<(u32, String, BindingKind)> {
    let mut declared: Vec<(u32, String, BindingKind)> = module
        .global_variables
        .iter()
        .filter_map(|(_, var)| {
            let binding = var.binding.as_ref()?;
            assert_eq!(
                binding.group, 0,
                "{}: {:?} is not in group 0",
                spec.entry, var.name
            );
            let type_name = module.types[var.ty].name.as_deref();
            let kind = match var.space {
                naga::AddressSpace::Uniform if type_name == Some("StepIndex") => {
                    BindingKind::StepIndex
                }
                naga::AddressSpace::Uniform => BindingKind::Params,
                naga::AddressSpace::Storage { access } => {
                    if access.contains(naga::StorageAccess::STORE) {
                        BindingKind::ReadWrite
                    } else {
                        BindingKind::Read
                    }
                }
                other => panic!("{}: {:?} in {other:?}", spec.entry, var.name),
            };
            Some((binding.binding, var.name.clone().unwrap_or_default(), kind))
        })
        .collect();
    declared.sort_by_key(|(i, ..)| *i);
    declared
}

/// Where the table row and the shader disagree, one line each (empty: they agree).
fn mismatches(spec: &KernelSpec) -> Vec<String> {
    let m = module(spec.source, spec.file);
    let mut out = Vec::new();
    if !m.entry_points.iter().any(|ep| ep.name == spec.entry) {
        out.push(format!(
            "{}.wgsl has no entry point {}",
            spec.file, spec.entry
        ));
    }
    let declared = declared_bindings(&m, spec);
    if declared.len() != spec.bindings.len() {
        out.push(format!(
            "{}: the shader declares {} bindings, the table {}",
            spec.entry,
            declared.len(),
            spec.bindings.len()
        ));
    }
    for (i, (index, name, kind)) in declared.iter().enumerate() {
        let want = spec.bindings.get(i);
        if *index as usize != i || want.map(|b| (b.name, b.kind)) != Some((name.as_str(), *kind)) {
            out.push(format!(
                "{}: binding {index} is `{name}` {kind:?} in the shader, {:?} in the table",
                spec.entry, want
            ));
        }
    }
    out
}

#[test]
fn every_kernel_row_matches_its_shader() {
    let problems: Vec<String> = KERNELS.iter().flat_map(mismatches).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check above catches a table whose buffers are swapped, or whose access is wrong.
#[test]
fn a_wrong_table_row_is_caught() {
    let spec = KERNELS[0];
    let mut swapped = spec.bindings.to_vec();
    swapped.swap(1, 2);
    let swapped = KernelSpec {
        bindings: Box::leak(swapped.into_boxed_slice()),
        ..spec
    };
    assert!(!mismatches(&swapped).is_empty(), "swapped bindings pass");
    let mut writable = spec.bindings.to_vec();
    writable[1].kind = BindingKind::ReadWrite;
    let writable = KernelSpec {
        bindings: Box::leak(writable.into_boxed_slice()),
        ..spec
    };
    assert!(
        !mismatches(&writable).is_empty(),
        "a read binding as read_write passes"
    );
}

/// The host's workgroup constants match the shaders' (`override WG` defaults, tile sizes).
#[test]
fn host_constants_match_shaders() {
    use lstm_wgpu::gpu::internals::{
        BACKWARD_MAX_ROWS, GEMM_TILE, SEQUENCE_MAX_PER_INVOCATION, STEP_MAX_QUADS, STEP_MAX_ROWS,
        WORKGROUP_SIZE,
    };
    for (name, source) in SHADER_FILES {
        if source.contains("override WG") {
            assert!(
                source.contains(&format!("override WG: u32 = {WORKGROUP_SIZE}u;")),
                "{name}: WG default"
            );
        }
    }
    let find = |n: &str| KERNELS.iter().find(|k| k.file == n).unwrap().source;
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
    use lstm_wgpu::gpu::internals::params_sizes;
    let common = SHADER_FILES
        .into_iter()
        .find(|(n, _)| *n == "lstm_common")
        .unwrap()
        .1;
    for (name, source) in SHADER_FILES {
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

/// Every build the engine can make (each kernel with each set of override constants it can
/// run with, on WebGPU's default limits and on a large device with subgroups) resolves its
/// overrides in naga as pipeline creation does; the subgroup variants are among them.
#[test]
fn every_shader_build_specialises() {
    use lstm_wgpu::gpu::internals::shader_builds;
    use lstm_wgpu::gpu::DeviceCaps;
    let webgpu = DeviceCaps {
        limits: wgpu::Limits::default(),
        subgroup_size: None,
    };
    let large = DeviceCaps {
        limits: wgpu::Limits {
            max_compute_invocations_per_workgroup: 1024,
            max_compute_workgroup_size_x: 1024,
            max_compute_workgroup_storage_size: 49152,
            ..wgpu::Limits::default()
        },
        subgroup_size: Some(32),
    };
    let small_subgroups = DeviceCaps {
        subgroup_size: Some(4),
        ..webgpu.clone()
    };
    for caps in [&webgpu, &large, &small_subgroups] {
        let builds = shader_builds(caps);
        for build in &builds {
            let spec = build.kernel.spec();
            let source = build.kernel.source_for(wgpu::Backend::Vulkan);
            let m = module(&source, spec.file);
            let info = validate(&m, &source, spec.file);
            let constants: naga::back::PipelineConstants = build
                .constants
                .iter()
                .map(|&(k, v)| (k.to_string(), v))
                .collect();
            naga::back::pipeline_constants::process_overrides(&m, &info, None, &constants)
                .unwrap_or_else(|e| panic!("{}: {e:?}", build.label));
        }
        // every kernel has a build; subgroup ones exactly where the device has subgroups
        for kernel in Kernel::ALL {
            let has = builds.iter().any(|b| b.kernel == kernel);
            assert_eq!(
                has,
                !kernel.uses_subgroups() || caps.subgroup_size.is_some(),
                "{kernel:?} with subgroups {:?}",
                caps.subgroup_size
            );
        }
    }
}

/// The subgroup kernels carry `enable subgroups;` for the browser's WGSL compiler (Tint needs
/// it) and not for naga (which rejects it); no other kernel changes.
#[test]
fn subgroup_directive_only_for_the_browser() {
    for kernel in Kernel::ALL {
        let browser = kernel.source_for(wgpu::Backend::BrowserWebGpu);
        let native = kernel.source_for(wgpu::Backend::Vulkan);
        assert!(!native.contains("enable subgroups"), "{kernel:?}");
        assert_eq!(native, kernel.spec().source, "{kernel:?}");
        if kernel.uses_subgroups() {
            assert_eq!(
                browser,
                format!("enable subgroups;\n{native}"),
                "{kernel:?}"
            );
            assert!(native.contains("subgroupShuffleXor"), "{kernel:?}");
        } else {
            assert_eq!(browser, native, "{kernel:?}");
            assert!(!native.contains("subgroupShuffleXor"), "{kernel:?}");
        }
    }
}
