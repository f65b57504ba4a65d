//! `lstm-wgpu info`: adapters, the chosen one, and the limits that matter here.

use lstm_wgpu::gpu::wisdom::Wisdom;
use lstm_wgpu::gpu::{enumerate_adapters, relevant_limits, GpuContext};
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
    print_wisdom(&ctx)?;
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

/// The wisdom file in use, how many shape classes it holds, or why it is ignored.
fn print_wisdom(ctx: &GpuContext) -> Result<()> {
    let Some(path) = ctx.wisdom_file() else {
        return outln!("wisdom: no file (no cache directory; set LSTM_WGPU_TUNE_FILE)");
    };
    let state = match (std::fs::read(&path), ctx.adapter_key()) {
        (Err(_), _) => "none yet (`lstm-wgpu tune` writes it)".to_string(),
        (Ok(bytes), Some(key)) => match Wisdom::decode(&bytes, &key) {
            Ok(w) => {
                let classes: std::collections::BTreeSet<_> =
                    w.entries().map(|(_, c, _)| c).collect();
                format!("{} choices for {} shape classes", w.len(), classes.len())
            }
            Err(e) => format!("ignored: {e}"),
        },
        (Ok(_), None) => "not used for a caller's device".to_string(),
    };
    outln!(
        "wisdom: {} ({state}; policy {:?})",
        path.display(),
        ctx.tuning()
    )
}
