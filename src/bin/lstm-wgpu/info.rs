//! `lstm-wgpu info`: adapters, the chosen one, and the limits that matter here.

use lstm_wgpu::gpu::{enumerate_adapters, relevant_limits};
use lstm_wgpu::Result;

use crate::gpu_args::GpuArgs;
use crate::stdout::outln;

pub fn main(gpu: GpuArgs) -> Result<()> {
    let adapters = enumerate_adapters();
    outln!("adapters wgpu sees ({}):", adapters.len())?;
    for a in &adapters {
        let i = &a.info;
        outln!(
            "  {} | {:?} | {:?} | driver: {} {}",
            i.name,
            i.backend,
            i.device_type,
            i.driver,
            i.driver_info
        )?;
    }
    let ctx = gpu.context()?;
    outln!("chosen: {}", ctx.adapter_name())?;
    let adapter = adapters
        .iter()
        .find(|a| Some(&a.info) == ctx.adapter_info());
    let requested = if gpu.webgpu_limits {
        "WebGPU's defaults (--webgpu-limits)"
    } else {
        "the adapter's own limits"
    };
    outln!("limits (device requested with {requested}; adapter maximum in brackets):")?;
    let device_limits = ctx.device().limits();
    let adapter_limits = adapter.map(|a| relevant_limits(&a.limits));
    for (i, (name, value)) in relevant_limits(&device_limits).into_iter().enumerate() {
        match &adapter_limits {
            Some(max) => outln!("  {name}: {value} [{}]", max[i].1)?,
            None => outln!("  {name}: {value}")?,
        }
    }
    if let Some(a) = adapter {
        let interesting = [
            ("SHADER_F16", wgpu::Features::SHADER_F16),
            ("TIMESTAMP_QUERY", wgpu::Features::TIMESTAMP_QUERY),
            ("SUBGROUP", wgpu::Features::SUBGROUP),
        ];
        let present: Vec<&str> = interesting
            .iter()
            .filter(|(_, f)| a.features.contains(*f))
            .map(|(n, _)| *n)
            .collect();
        outln!(
            "adapter features of interest: {}",
            if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            }
        )?;
    }
    Ok(())
}
