//! `lstm-wgpu info`: adapters, the chosen one, and the limits that matter here.

use lstm_wgpu::gpu::wisdom::Wisdom;
use lstm_wgpu::gpu::{enumerate_adapters, relevant_limits, GpuContext};
use lstm_wgpu::Result;

use crate::gpu_args::GpuArgs;
use crate::stdout::outln;
use crate::weights_arg::Model;

/// `lstm-wgpu info [--weights FILE]`.
#[derive(clap::Args)]
pub struct Args {
    /// Also describe this model (safetensors or ONNX): sizes, cell, parameters
    #[arg(long)]
    weights: Option<std::path::PathBuf>,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn main(args: Args) -> Result<()> {
    if let Some(path) = &args.weights {
        describe_model(path)?;
    }
    let gpu = args.gpu;
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

/// The model at `path`: what it is, its sizes, cell and parameter count.
fn describe_model(path: &std::path::Path) -> Result<()> {
    let (kind, weights, reverse) = match crate::weights_arg::read(path)? {
        Model::Onnx(m) => ("ONNX", m.weights, m.reverse),
        Model::Safetensors(w) => ("safetensors", w, false),
    };
    let c = weights.config();
    let params: usize = weights
        .named_tensors()
        .iter()
        .map(|(_, t)| t.data().len())
        .sum();
    outln!(
        "model: {} ({kind}): input {} hidden {} layers {} directions {}{} proj {} bias {} \
         batch_first {}; cell: {}; {params} LSTM parameters{}",
        path.display(),
        c.input_size,
        c.hidden_size,
        c.num_layers,
        c.num_directions(),
        if reverse { " (reverse)" } else { "" },
        c.proj_size,
        c.bias,
        c.batch_first,
        c.cell.describe(),
        weights
            .head()
            .map_or(String::new(), |h| format!(", head O={}", h.out_features()))
    )
}
