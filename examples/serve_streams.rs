//! A server's view: 1,000 independent streams of one model in a GPU state pool, arriving at
//! random (each step serves whichever streams sent a frame), then a sample of the streams
//! replayed on the CPU path and compared.
//!
//!     cargo run --release --example serve_streams [-- STREAMS STEPS]

use std::time::Instant;

use lstm_wgpu::check::GPU_VS_F64;
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::{GpuContext, GpuStatePool, GpuWeights};
use lstm_wgpu::{Linear, LstmConfig, LstmWeights, Result, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let streams = args.next().and_then(|a| a.ok()).unwrap_or(1000);
    let steps = args.next().and_then(|a| a.ok()).unwrap_or(40);
    let config = LstmConfig::new(16, 64).num_layers(2);
    let weights = LstmWeights::init(&config, 0)?.with_head(Linear::init(64, 4, 1)?)?;
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.adapter_name());
    let shared = GpuWeights::upload(&ctx, &weights)?;
    let mut pool = GpuStatePool::new(&ctx, &shared, streams)?;

    // every step, each stream sends a frame with probability 0.3
    let mut rng = StdRng::seed_from_u64(7);
    let input = config.input_size;
    let mut sent: Vec<Vec<f32>> = vec![Vec::new(); streams];
    let mut answers: Vec<Vec<f32>> = vec![Vec::new(); streams];
    let start = Instant::now();
    let mut served = 0;
    for _ in 0..steps {
        let active: Vec<usize> = (0..streams).filter(|_| rng.random_bool(0.3)).collect();
        if active.is_empty() {
            continue;
        }
        let frames: Vec<f32> = (0..active.len() * input)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let out = pool.step(
            &active,
            &Tensor::new([active.len(), input], frames.clone())?,
        )?;
        let width = out.shape()[1];
        for (row, &s) in active.iter().enumerate() {
            sent[s].extend_from_slice(&frames[row * input..(row + 1) * input]);
            answers[s].extend_from_slice(&out.data()[row * width..(row + 1) * width]);
        }
        served += active.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{streams} streams, {steps} steps, {served} stream-steps in {seconds:.2} s ({:.0} stream-steps/s, host in/out)",
        served as f64 / seconds
    );

    // replay a sample of streams alone on the CPU path, in f64
    let cpu = CpuLstm::<f64>::new(&weights);
    let mut worst = 0.0f64;
    let sample: Vec<usize> = (0..streams).step_by((streams / 25).max(1)).collect();
    for &s in &sample {
        let t = sent[s].len() / input;
        if t == 0 {
            continue;
        }
        let x = Tensor::new([t, 1, input], sent[s].iter().map(|&v| v as f64).collect())?;
        let want = cpu.forward(&x, None, None)?;
        for (&got, &want) in answers[s].iter().zip(want.output.data()) {
            let allowed = GPU_VS_F64.abs + GPU_VS_F64.rel * want.abs();
            let d = (got as f64 - want).abs();
            if d > allowed || d.is_nan() {
                return Err(lstm_wgpu::Error::Input(format!(
                    "stream {s}: the pool gave {got}, the CPU path {want}"
                )));
            }
            worst = worst.max(d);
        }
    }
    println!(
        "checked {} streams against the CPU path (f64): max |gpu - cpu| = {worst:.2e}, within |d| <= {} + {}*|cpu|",
        sample.len(),
        GPU_VS_F64.abs,
        GPU_VS_F64.rel
    );
    Ok(())
}
