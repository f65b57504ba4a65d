//! A soak test: 8 threads share one `GpuContext` for MINUTES minutes (default 10), each
//! mixing forwards of random shapes, streamed steps and training steps, every result checked
//! against the CPU path. Every few seconds it samples the process's RSS and the GPU memory
//! in use; at the end it prints the samples, the mismatches and the growth over the second
//! half of the run. Exits non-zero on a mismatch, an error or a panic.
//!
//!     cargo run --release --example soak -- 10        # or benches/soak.sh 10
//!
//! The adapter is the usual one (`WGPU_BACKEND=gl` for wgpu's GL backend).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lstm_wgpu::check::{Tolerance, GPU_VS_F64};
use lstm_wgpu::cpu::FastCpuLstm;
use lstm_wgpu::gpu::{GpuContext, GpuLstm, GpuState, GpuTrainer, GpuWeights};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::{CpuTrainer, OptimizerConfig, OptimizerKind, TrainOptions, Trainer};
use lstm_wgpu::{LstmConfig, LstmWeights, Result, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};

const THREADS: usize = 8;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// (seconds since the start, RSS bytes, GPU bytes in use where reported)
type Sample = (f64, u64, Option<u64>);

/// What the threads count.
#[derive(Default)]
struct Counts {
    forwards: AtomicUsize,
    steps: AtomicUsize,
    trained: AtomicUsize,
    mismatches: AtomicUsize,
    errors: AtomicUsize,
}

fn main() {
    let minutes: f64 = std::env::args()
        .nth(1)
        .map(|m| m.parse().expect("MINUTES must be a number"))
        .unwrap_or(10.0);
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    println!("adapter: {}", ctx.adapter_name());
    let config = LstmConfig::new(4, 24).num_layers(2);
    let weights = LstmWeights::init(&config, 1).unwrap();
    let shared = GpuWeights::upload(&ctx, &weights).unwrap();
    let cpu = FastCpuLstm::new(&weights).with_threads(1).unwrap();
    let (counts, stop) = (Counts::default(), AtomicBool::new(false));
    let samples = Mutex::new(Vec::<Sample>::new());
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(minutes * 60.0);
    let failures = Mutex::new(Vec::<String>::new());
    std::thread::scope(|scope| {
        for id in 0..THREADS {
            let (ctx, shared, cpu, weights) = (&ctx, &shared, &cpu, &weights);
            let (counts, stop, failures) = (&counts, &stop, &failures);
            scope.spawn(move || {
                let mut rng = StdRng::seed_from_u64(100 + id as u64);
                while !stop.load(Ordering::Relaxed) {
                    let work = rng.random_range(0..3);
                    let outcome =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match work {
                            0 => forward(ctx, shared, cpu, &mut rng, counts),
                            1 => stream(ctx, shared, cpu, &mut rng, counts),
                            _ => train(ctx, weights, &mut rng, counts),
                        }));
                    let message = match outcome {
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => format!("thread {id}: error: {e}"),
                        Err(_) => format!("thread {id}: panic"),
                    };
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                    failures.lock().unwrap().push(message);
                }
            });
        }
        while Instant::now() < end {
            samples.lock().unwrap().push((
                start.elapsed().as_secs_f64(),
                rss_bytes(),
                ctx.memory_in_use(),
            ));
            std::thread::sleep(SAMPLE_EVERY.min(end.saturating_duration_since(Instant::now())));
        }
        stop.store(true, Ordering::Relaxed);
    });
    samples.lock().unwrap().push((
        start.elapsed().as_secs_f64(),
        rss_bytes(),
        ctx.memory_in_use(),
    ));
    report(
        &counts,
        &samples.into_inner().unwrap(),
        &failures.into_inner().unwrap(),
    );
}

/// A forward of a random shape on the GPU against the CPU path.
fn forward(
    ctx: &GpuContext,
    shared: &GpuWeights,
    cpu: &FastCpuLstm,
    rng: &mut StdRng,
    counts: &Counts,
) -> Result<()> {
    let (seq, batch) = (rng.random_range(1..40), rng.random_range(1..6));
    let x = random(rng, [seq, batch, 4]);
    let got = GpuLstm::with_weights(ctx, shared).forward(&x, None, None)?;
    let want = cpu.forward(&x, None, None)?;
    check(&got.output, &want.output, GPU_VS_F64, counts);
    counts.forwards.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Streamed steps from a zero state against one forward over the same steps.
fn stream(
    ctx: &GpuContext,
    shared: &GpuWeights,
    cpu: &FastCpuLstm,
    rng: &mut StdRng,
    counts: &Counts,
) -> Result<()> {
    let (steps, batch) = (rng.random_range(1..12), rng.random_range(1..4));
    let x = random(rng, [steps, batch, 4]);
    let mut model = GpuLstm::with_weights(ctx, shared);
    let state = GpuState::zeros(ctx, &cpu.model().config, batch)?;
    let want = cpu.forward(&x, None, None)?;
    let width = want.output.data().len() / steps;
    for t in 0..steps {
        let x_t = Tensor::new(
            [batch, 4],
            x.data()[t * batch * 4..(t + 1) * batch * 4].to_vec(),
        )?;
        let y = model.step(&x_t, &state)?;
        let row = Tensor::new(
            [batch, width / batch],
            want.output.data()[t * width..(t + 1) * width].to_vec(),
        )?;
        check(&y, &row, GPU_VS_F64, counts);
    }
    counts.steps.fetch_add(steps, Ordering::Relaxed);
    Ok(())
}

/// Two training steps on the GPU against the same on the CPU path.
fn train(ctx: &GpuContext, weights: &LstmWeights, rng: &mut StdRng, counts: &Counts) -> Result<()> {
    let (seq, batch) = (rng.random_range(2..10), rng.random_range(1..4));
    let x = random(rng, [seq, batch, 4]);
    let y = Target::Values(random(rng, [seq, batch, 24]));
    let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Adam, 1e-2));
    let mut gpu = GpuTrainer::new(ctx, weights, options)?;
    let mut cpu = CpuTrainer::new(weights, options)?;
    for _ in 0..2 {
        let (a, b) = (gpu.step(&x, &y)?, cpu.step(&x, &y)?);
        let (a, b) = (Tensor::new([1], vec![a])?, Tensor::new([1], vec![b])?);
        check(
            &a,
            &b,
            Tolerance {
                abs: 1e-5,
                rel: 1e-4,
            },
            counts,
        );
    }
    counts.trained.fetch_add(2, Ordering::Relaxed);
    Ok(())
}

fn random<const N: usize>(rng: &mut StdRng, shape: [usize; N]) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap()
}

fn check(got: &Tensor, want: &Tensor, tol: Tolerance, counts: &Counts) {
    let bad = got.shape() != want.shape()
        || got
            .data()
            .iter()
            .zip(want.data())
            .any(|(g, w)| ((g - w).abs() as f64) > tol.abs + tol.rel * (*w as f64).abs());
    if bad {
        counts.mismatches.fetch_add(1, Ordering::Relaxed);
    }
}

/// The process's resident set, from /proc (0 where there is none).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn report(counts: &Counts, samples: &[Sample], failures: &[String]) {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!("  time s    RSS MiB   GPU MiB");
    for (t, rss, gpu) in samples {
        let gpu = gpu.map_or("-".to_string(), |g| format!("{:.1}", mib(g)));
        println!("{t:8.0} {:10.1} {gpu:>9}", mib(*rss));
    }
    // memory in use swings with the work in flight: compare the peaks of the second half's
    // two quarters (a leak raises the later peak)
    let half = &samples[samples.len() / 2..];
    let (third, fourth) = half.split_at(half.len() / 2);
    let peak =
        |part: &[Sample], pick: fn(&Sample) -> Option<u64>| part.iter().filter_map(pick).max();
    let growth = |first: u64, last: u64| 100.0 * (last as f64 - first as f64) / first.max(1) as f64;
    let rss = match (peak(third, |s| Some(s.1)), peak(fourth, |s| Some(s.1))) {
        (Some(a), Some(b)) => growth(a, b),
        _ => 0.0,
    };
    let gpu = peak(third, |s| s.2)
        .zip(peak(fourth, |s| s.2))
        .map(|(a, b)| growth(a, b));
    let load = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    println!(
        "forwards {}, streamed steps {}, training steps {}, mismatches {}, errors {}",
        load(&counts.forwards),
        load(&counts.steps),
        load(&counts.trained),
        load(&counts.mismatches),
        load(&counts.errors)
    );
    println!(
        "growth over the second half (peak of its last quarter against its third): RSS {rss:+.2}%, GPU memory {}",
        gpu.map_or("- (not reported)".into(), |g| format!("{g:+.2}%"))
    );
    for failure in failures.iter().take(10) {
        println!("{failure}");
    }
    if load(&counts.mismatches) > 0 || load(&counts.errors) > 0 {
        std::process::exit(1);
    }
}
