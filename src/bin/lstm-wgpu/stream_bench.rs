//! `lstm-wgpu bench --stream`: µs per streamed timestep on the GPU, the ways an application
//! streams: host in and out per step; GPU-resident (the caller's buffers, recorded into the
//! caller's encoder) submitted per step or once per frame of several steps; and a state pool
//! serving B active streams against one plain B-row step. With `--device cpu`: a
//! [`CpuStream`] step, one call per timestep.

use std::time::Instant;

use lstm_wgpu::cpu::{CpuStream, FastCpuLstm};
use lstm_wgpu::gpu::{GpuContext, GpuLstm, GpuState, GpuStatePool};
use lstm_wgpu::{Dims, LstmWeights, Result, Tensor};

use crate::stdout::outln;

/// What to time.
pub struct StreamSpec {
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    pub layers: usize,
    /// timed steps per figure
    pub steps: usize,
    /// steps per submission in the frame figure
    pub frame: usize,
    pub json: bool,
    /// also time each dispatch of one step (and the copies between)
    pub breakdown: bool,
}

/// µs per step of each way (pool only for B > 1).
struct Figures {
    host: f64,
    resident_step: f64,
    resident_frame: f64,
    pool: Option<f64>,
}

pub fn run(ctx: &GpuContext, weights: &LstmWeights, spec: &StreamSpec) -> Result<()> {
    let figures = measure(ctx, weights, spec)?;
    let adapter = ctx.adapter_name();
    let parts = match spec.breakdown {
        true => breakdown(ctx, weights, spec)?,
        false => Vec::new(),
    };
    if spec.json {
        let pool = figures.pool.map_or("null".into(), |p| format!("{p:.2}"));
        outln!(
            "{{\"kind\":\"stream\",\"device\":\"gpu\",\"adapter\":{adapter:?},\"batch\":{},\"input\":{},\"hidden\":{},\"layers\":{},\"host_us\":{:.2},\"resident_step_us\":{:.2},\"resident_frame_us\":{:.2},\"frame\":{},\"pool_us\":{pool},\"parts\":[{}]}}",
            spec.batch, spec.input, spec.hidden, spec.layers, figures.host, figures.resident_step, figures.resident_frame, spec.frame,
            parts.iter().map(Part::json).collect::<Vec<_>>().join(",")
        )?;
        return Ok(());
    }
    outln!("adapter: {adapter}")?;
    outln!(
        "streamed steps: B={} I={} H={} layers={}, {} steps per figure",
        spec.batch,
        spec.input,
        spec.hidden,
        spec.layers,
        spec.steps
    )?;
    outln!(
        "  host in/out, one wait per step:      {:9.2} µs/step",
        figures.host
    )?;
    outln!(
        "  GPU-resident, one submit per step:   {:9.2} µs/step",
        figures.resident_step
    )?;
    outln!(
        "  GPU-resident, one submit per {:3} steps: {:6.2} µs/step",
        spec.frame,
        figures.resident_frame
    )?;
    if spec.breakdown && parts.is_empty() {
        outln!("  (no per-dispatch breakdown: the device has no TIMESTAMP_QUERY)")?;
    }
    if !parts.is_empty() {
        outln!("  one step's GPU time, medians (copies and barriers before each dispatch, then the dispatch):")?;
    }
    for part in &parts {
        let (kernel, us) = match part.kernel {
            "-" => ("(end)".to_string(), String::new()),
            k => (k.to_string(), format!("{:9.2} µs", part.us)),
        };
        outln!(
            "    {:>3} transfers ({:>9} B) {:9.2} µs   {kernel:<14} {us}",
            part.transfers,
            part.bytes,
            part.gap_us,
        )?;
    }
    if let Some(last) = parts.last() {
        outln!("    step total {:.2} µs of GPU time", last.end_us)?;
    }
    if let Some(pool) = figures.pool {
        outln!(
            "  state pool, {} active streams:     {:9.2} µs/step ({:.2}x the plain B={} step)",
            spec.batch,
            pool,
            pool / figures.resident_step,
            spec.batch
        )?;
    }
    Ok(())
}

/// Rounds of steps timed on the CPU; the median round's µs per step is the figure.
const CPU_ROUNDS: usize = 11;

/// `lstm-wgpu bench --stream --device cpu`: µs per [`CpuStream::step`], the median of
/// [`CPU_ROUNDS`] rounds of at least 1,000 steps (a step is too short to time alone).
pub fn run_cpu(weights: &LstmWeights, spec: &StreamSpec) -> Result<()> {
    let (b, input) = (spec.batch, spec.input);
    let model = FastCpuLstm::new(weights);
    let lanes = model.simd_lanes();
    let mut stream = CpuStream::new(model, b)?;
    let x: Vec<f32> = (0..b * input).map(|i| (i % 7) as f32 * 0.1).collect();
    let steps = spec.steps.max(1000);
    for _ in 0..steps {
        stream.step(&x)?;
    }
    let mut rounds = Vec::with_capacity(CPU_ROUNDS);
    for _ in 0..CPU_ROUNDS {
        let start = Instant::now();
        for _ in 0..steps {
            std::hint::black_box(stream.step(std::hint::black_box(&x))?);
        }
        rounds.push(start.elapsed().as_secs_f64() * 1e6 / steps as f64);
    }
    let fastest = rounds.iter().copied().fold(f64::INFINITY, f64::min);
    let us = median(&mut rounds);
    if spec.json {
        outln!(
            "{{\"kind\":\"stream\",\"device\":\"cpu\",\"adapter\":\"CPU f32, 1 thread, {lanes}-lane SIMD (CpuStream)\",\"simd_lanes\":{lanes},\"threads\":1,\"batch\":{b},\"input\":{input},\"hidden\":{},\"layers\":{},\"step_us\":{us:.3},\"min_step_us\":{fastest:.3},\"steps_per_round\":{steps}}}",
            spec.hidden, spec.layers
        )?;
        return Ok(());
    }
    outln!("device: CPU f32, 1 thread, {lanes}-lane SIMD (CpuStream)")?;
    outln!(
        "streamed steps: B={b} I={input} H={} layers={}, median of {CPU_ROUNDS} rounds of {steps} steps",
        spec.hidden,
        spec.layers
    )?;
    outln!("  one step per call:                  {us:9.3} µs/step (fastest round {fastest:.3})")?;
    Ok(())
}

fn measure(ctx: &GpuContext, weights: &LstmWeights, spec: &StreamSpec) -> Result<Figures> {
    let (b, input) = (spec.batch, spec.input);
    let config = weights.config();
    let x = Tensor::try_from_fn("stream input [B, I]", [b, input], |i| (i % 7) as f32 * 0.1)?;
    let mut model = GpuLstm::new(ctx, weights)?;
    let state = GpuState::zeros(ctx, config, b)?;
    let steps = spec.steps.max(1);

    // host in/out: each step waits for its output
    for _ in 0..3 {
        model.step(&x, &state)?;
    }
    let mut times = Vec::with_capacity(steps.min(1 << 16));
    for _ in 0..steps {
        let start = Instant::now();
        model.step(&x, &state)?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let host = median(&mut times);

    // GPU-resident: the caller's buffers, the caller's encoder
    model.prepare(Dims {
        seq_len: 1,
        batch: b,
    })?;
    let device = ctx.device();
    let width = weights
        .head()
        .map_or(config.output_size(), |h| h.out_features());
    let (input_buffer, output_buffer) = caller_buffers(device, b * input, b * width);
    let per_submit = |per: usize,
                      record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>|
     -> Result<f64> {
        let mut rounds = Vec::new();
        for round in 0..4 {
            let start = Instant::now();
            for _ in 0..steps.div_ceil(per) {
                let mut encoder = device.create_command_encoder(&Default::default());
                for _ in 0..per {
                    record(&mut encoder)?;
                }
                ctx.queue().submit([encoder.finish()]);
            }
            ctx.wait_idle()?;
            if round > 0 {
                let n = steps.div_ceil(per) * per;
                rounds.push(start.elapsed().as_secs_f64() * 1e6 / n as f64);
            }
        }
        Ok(median(&mut rounds))
    };
    let mut one =
        |e: &mut wgpu::CommandEncoder| model.encode_step(e, &input_buffer, &output_buffer, &state);
    let resident_step = per_submit(1, &mut one)?;
    let resident_frame = per_submit(spec.frame.max(1), &mut one)?;

    let pool = if b > 1 {
        let mut pool = GpuStatePool::new(ctx, &model.gpu_weights(), b)?;
        let slots: Vec<usize> = (0..b).collect();
        let mut served = |e: &mut wgpu::CommandEncoder| {
            pool.encode_step(e, &slots, &input_buffer, &output_buffer)
        };
        Some(per_submit(1, &mut served)?)
    } else {
        None
    };
    Ok(Figures {
        host,
        resident_step,
        resident_frame,
        pool,
    })
}

/// An input buffer of `inputs` f32 (COPY_SRC) and an output buffer of `outputs` f32
/// (COPY_DST), as an application would own.
fn caller_buffers(
    device: &wgpu::Device,
    inputs: usize,
    outputs: usize,
) -> (wgpu::Buffer, wgpu::Buffer) {
    let make = |label, len: usize, usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len.max(1) * 4) as u64,
            usage,
            mapped_at_creation: false,
        })
    };
    (
        make(
            "caller input",
            inputs,
            wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        ),
        make("caller output", outputs, wgpu::BufferUsages::COPY_DST),
    )
}

/// One dispatch of a profiled step: the transfers before it and their time (the gap since
/// the previous dispatch ended), and its own time; medians.
struct Part {
    kernel: &'static str,
    transfers: usize,
    bytes: u64,
    gap_us: f64,
    us: f64,
    /// the median end of the span, from the start mark
    end_us: f64,
}

impl Part {
    fn json(&self) -> String {
        format!(
            "{{\"kernel\":{:?},\"transfers_before\":{},\"bytes_before\":{},\"gap_us\":{:.2},\"us\":{:.2}}}",
            self.kernel, self.transfers, self.bytes, self.gap_us, self.us
        )
    }
}

/// Times each dispatch of one host-fed step, `spec.steps` times: empty without timestamps.
fn breakdown(ctx: &GpuContext, weights: &LstmWeights, spec: &StreamSpec) -> Result<Vec<Part>> {
    let (b, input) = (spec.batch, spec.input);
    let x = Tensor::try_from_fn("stream input [B, I]", [b, input], |i| (i % 7) as f32 * 0.1)?;
    let mut model = GpuLstm::new(ctx, weights)?;
    let state = GpuState::zeros(ctx, weights.config(), b)?;
    let mut runs = Vec::new();
    for i in 0..spec.steps.max(1) + 3 {
        let Some(parts) = model.profile_step(&x, &state)? else {
            return Ok(Vec::new());
        };
        if i >= 3 {
            runs.push(parts);
        }
    }
    let first = &runs[0];
    Ok((0..first.len())
        .map(|d| {
            let mut gaps: Vec<f64> = runs
                .iter()
                .map(|r| r[d].1 .0 - if d == 0 { 0.0 } else { r[d - 1].1 .1 })
                .collect();
            let mut times: Vec<f64> = runs.iter().map(|r| r[d].1 .1 - r[d].1 .0).collect();
            let mut ends: Vec<f64> = runs.iter().map(|r| r[d].1 .1).collect();
            Part {
                kernel: first[d].0.kernel,
                transfers: first[d].0.transfers_before,
                bytes: first[d].0.bytes_before,
                gap_us: median(&mut gaps),
                us: median(&mut times),
                end_us: median(&mut ends),
            }
        })
        .collect())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
