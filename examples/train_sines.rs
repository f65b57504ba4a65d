//! Training on the GPU: next-step prediction of noisy sine waves. Prints the loss as it
//! falls, compares with the task's persistence baseline, saves the loss curve and the trained
//! weights. Run: `cargo run --release --example train_sines [OUT_DIR]` (default `target/`).

use std::path::PathBuf;
use std::time::Instant;

use lstm_wgpu::gpu::{GpuContext, GpuTrainer};
use lstm_wgpu::io::{atomic::write_atomic, safetensors};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::data::{noisy_sines, persistence_mse};
use lstm_wgpu::train::{OptimizerConfig, OptimizerKind, TrainOptions, Trainer};
use lstm_wgpu::{Linear, LstmConfig, LstmWeights};

fn main() -> lstm_wgpu::Result<()> {
    let out_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target".into()));
    let (x, y) = noisy_sines(30, 16, 0.05, 1)?; // [T, B, 1] each
    let baseline = persistence_mse(&x, &y);
    let config = LstmConfig::new(1, 24);
    let weights = LstmWeights::init(&config, 0)?.with_head(Linear::init(24, 1, 1)?)?;
    let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Adam, 0.01));

    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.adapter_name());
    println!(
        "task: next value of noisy sines, T=30 B=16; predicting 'no change' scores {baseline:.4}"
    );
    let mut trainer = GpuTrainer::new(&ctx, &weights, options)?;
    let target = Target::Values(y);
    let start = Instant::now();
    let mut losses = Vec::new();
    for step in 1..=150 {
        let loss = trainer.step(&x, &target)?;
        losses.push(loss);
        if step % 25 == 0 || step == 1 {
            println!("step {step:4}  loss {loss:.5}");
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{:.1} steps/s; final loss {:.5} = {:.2}x the baseline",
        150.0 / seconds,
        losses[149],
        losses[149] / baseline
    );

    let plot = out_dir.join("train_sines_loss.png");
    write_atomic(
        &plot,
        &lstm_wgpu::plot::loss_png(&losses, "noisy sines, Adam lr 0.01 (GPU)")?,
    )?;
    let model = out_dir.join("train_sines.safetensors");
    safetensors::save(&model, &trainer.weights()?)?;
    println!("wrote {} and {}", plot.display(), model.display());
    Ok(())
}
