//! `lstm-wgpu check`: random configurations on both paths; non-zero exit on any mismatch.

use lstm_wgpu::check::{Case, GPU_VS_F64};
use lstm_wgpu::{Error, Result};

use crate::gpu_args::GpuArgs;
use crate::progress::Progress;
use crate::stdout::outln;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 20)]
    cases: u64,
    /// Check this model (safetensors or ONNX) on random inputs instead of random models
    #[arg(long)]
    weights: Option<std::path::PathBuf>,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn main(args: Args) -> Result<()> {
    let ctx = args.gpu.context()?;
    outln!("adapter: {}", ctx.adapter_name())?;
    outln!(
        "tolerance: |gpu - cpu_f64| <= {} + {} * |cpu_f64|",
        GPU_VS_F64.abs,
        GPU_VS_F64.rel
    )?;
    let model = args
        .weights
        .as_deref()
        .map(crate::weights_arg::load)
        .transpose()?;
    let mut progress = Progress::new(args.cases, "checking");
    let mut failures = 0;
    for i in 0..args.cases {
        let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(i);
        let case = match &model {
            Some(weights) => Case::for_weights(weights.clone(), seed)?,
            None => Case::random(seed)?,
        };
        match case.compare(&ctx, GPU_VS_F64)? {
            None => progress.bar_println(&format!(
                "ok    case {i} (seed {seed}): {}",
                case.describe()
            ))?,
            Some((what, m)) => {
                failures += 1;
                progress.bar_println(&format!(
                    "FAIL  case {i} (seed {seed}): {}: {what}[{}] got {} want {} ({} elements off)",
                    case.describe(),
                    m.index,
                    m.got,
                    m.want,
                    m.count
                ))?;
            }
        }
        progress.tick();
    }
    progress.finish();
    outln!("{} passed, {} failed", args.cases - failures, failures)?;
    if failures > 0 {
        return Err(Error::Input(format!(
            "{failures} of {} cases differ between GPU and CPU",
            args.cases
        )));
    }
    Ok(())
}
