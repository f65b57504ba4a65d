// Tint's verdict on WGSL: each build is compiled on a device of its own (raw WebGPU, so that
// the `subgroups` feature can be required where the adapter offers it: wgpu 30's web backend
// does not request it yet). A build passes when getCompilationInfo reports no message at all
// (no error, no warning, no info) and createComputePipelineAsync with its override constants
// resolves, with no validation error.

async function device(adapterLimits) {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error("navigator.gpu.requestAdapter() gave no adapter");
    const requiredFeatures = adapter.features.has("subgroups") ? ["subgroups"] : [];
    const requiredLimits = {};
    if (adapterLimits) {
        for (const name in adapter.limits) requiredLimits[name] = adapter.limits[name];
    }
    return { adapter, device: await adapter.requestDevice({ requiredFeatures, requiredLimits }) };
}

export async function adapterSubgroupSize() {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter || !adapter.features.has("subgroups")) return 0;
    return adapter.info.subgroupMinSize || 0;
}

export async function compileEveryBuild(buildsJson, adapterLimits) {
    const builds = JSON.parse(buildsJson);
    const { adapter, device: gpu } = await device(adapterLimits);
    const problems = [];
    const modules = new Map(); // one module per source text
    let compiled = 0;
    for (const build of builds) {
        let module = modules.get(build.code);
        if (!module) {
            gpu.pushErrorScope("validation");
            module = gpu.createShaderModule({ label: build.label, code: build.code });
            const info = await module.getCompilationInfo();
            for (const m of info.messages) {
                problems.push(`${build.label}: ${m.type} at ${m.lineNum}:${m.linePos}: ${m.message}`);
            }
            const error = await gpu.popErrorScope();
            if (error) problems.push(`${build.label}: module: ${error.message}`);
            modules.set(build.code, module);
        }
        gpu.pushErrorScope("validation");
        try {
            await gpu.createComputePipelineAsync({
                label: build.label,
                layout: "auto",
                compute: { module, entryPoint: build.entry, constants: build.constants },
            });
            compiled += 1;
        } catch (e) {
            problems.push(`${build.label}: pipeline: ${e.message}`);
        }
        const error = await gpu.popErrorScope();
        if (error) problems.push(`${build.label}: ${error.message}`);
    }
    gpu.destroy();
    return JSON.stringify({
        adapter: adapter.info.description || adapter.info.vendor || "",
        subgroups: adapter.features.has("subgroups"),
        builds: builds.length,
        sources: modules.size,
        compiled,
        problems,
    });
}
