//! GPU-resident state, streaming and the state pool: chunked equals whole (bitwise), streamed
//! equals whole, pool slots equal single streams, snapshot/restore, shared weights, errors.

mod common;

use common::{assert_close, gpu, random_tensor, to_f64, GPU_VS_F64};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::{GpuLstm, GpuState, GpuStatePool, GpuWeights, PREPARED_SHAPES};
use lstm_wgpu::{Dims, Linear, LstmConfig, LstmWeights, Tensor};

fn bits(t: &Tensor) -> Vec<u32> {
    t.data().iter().map(|x| x.to_bits()).collect()
}

/// Rows `t0..t1` of a time-major `[T, B, W]` tensor.
fn steps(t: &Tensor, t0: usize, t1: usize) -> Tensor {
    let row: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = t1 - t0;
    Tensor::new(shape, t.data()[t0 * row..t1 * row].to_vec()).unwrap()
}

/// (hidden, input, layers, proj, head): unidirectional models the streaming paths serve.
const MODELS: &[(usize, usize, usize, usize, bool)] = &[
    (16, 3, 1, 0, false),
    (32, 5, 2, 0, true),
    (24, 4, 2, 8, false),
    (130, 7, 1, 0, true),
];

fn model(i: usize) -> LstmWeights {
    let (hidden, input, layers, proj, head) = MODELS[i];
    let config = LstmConfig::new(input, hidden)
        .num_layers(layers)
        .proj_size(proj);
    let weights = LstmWeights::init(&config, 40 + i as u64).unwrap();
    if head {
        let width = config.output_size();
        weights
            .with_head(Linear::init(width, 2, 7).unwrap())
            .unwrap()
    } else {
        weights
    }
}

#[test]
fn chunks_through_a_state_equal_one_forward_bitwise() {
    let ctx = gpu();
    for i in 0..MODELS.len() {
        let weights = model(i);
        let (t, b) = (11, 3);
        let x = random_tensor(&[t, b, weights.config().input_size], 5 + i as u64);
        let mut gpu = GpuLstm::new(ctx, &weights).unwrap();
        let whole = gpu.forward(&x, None, None).unwrap();

        let state = GpuState::zeros(ctx, weights.config(), b).unwrap();
        let mut outputs = Vec::new();
        for (t0, t1) in [(0, 4), (4, 5), (5, 11)] {
            let y = gpu.forward_state(&steps(&x, t0, t1), &state).unwrap();
            outputs.extend(y.into_data());
        }
        let got = Tensor::new(whole.output.shape().to_vec(), outputs).unwrap();
        assert!(
            bits(&got) == bits(&whole.output),
            "model {i}: chunked output"
        );
        let (h, c) = state.read(ctx).unwrap();
        assert!(
            bits(&h) == bits(&whole.h_n),
            "model {i}: h after the chunks"
        );
        assert!(
            bits(&c) == bits(&whole.c_n),
            "model {i}: c after the chunks"
        );
    }
}

#[test]
fn steps_equal_one_forward_bitwise_and_match_the_cpu() {
    let ctx = gpu();
    for i in 0..MODELS.len() {
        let weights = model(i);
        let (t, b, input) = (7, 2, weights.config().input_size);
        let x = random_tensor(&[t, b, input], 9 + i as u64);
        let mut gpu = GpuLstm::new(ctx, &weights).unwrap();
        let whole = gpu.forward(&x, None, None).unwrap();
        let state = GpuState::zeros(ctx, weights.config(), b).unwrap();
        let mut outputs = Vec::new();
        for step in 0..t {
            let x_t = Tensor::new([b, input], steps(&x, step, step + 1).into_data()).unwrap();
            let y = gpu.step(&x_t, &state).unwrap();
            assert_eq!(y.shape()[0], b);
            outputs.extend(y.into_data());
        }
        let got = Tensor::new(whole.output.shape().to_vec(), outputs).unwrap();
        assert!(
            bits(&got) == bits(&whole.output),
            "model {i}: streamed output"
        );
        let want = CpuLstm::<f64>::new(&weights)
            .forward(&to_f64(&x), None, None)
            .unwrap();
        assert_close(
            &format!("model {i} streamed vs f64"),
            got.data(),
            want.output.data(),
            GPU_VS_F64,
        );
    }
}

#[test]
fn a_step_recorded_in_the_callers_encoder_equals_a_host_step() {
    let ctx = gpu();
    let weights = model(1);
    let (b, input) = (4, weights.config().input_size);
    let x_t = random_tensor(&[b, input], 3);
    let mut host = GpuLstm::new(ctx, &weights).unwrap();
    let host_state = GpuState::zeros(ctx, weights.config(), b).unwrap();
    let mut on_gpu = GpuLstm::with_weights(ctx, &host.gpu_weights());
    let gpu_state = GpuState::zeros(ctx, weights.config(), b).unwrap();
    on_gpu
        .prepare(Dims {
            seq_len: 1,
            batch: b,
        })
        .unwrap();

    use wgpu::util::DeviceExt;
    let device = ctx.device();
    let input_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("caller input"),
        contents: bytemuck::cast_slice(x_t.data()),
        usage: wgpu::BufferUsages::COPY_SRC,
    });
    let out_len = b * 2; // the head's width
    let output_buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("caller output"),
        size: (out_len * 4) as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: (out_len * 4) as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    for step in 0..3 {
        let want = host.step(&x_t, &host_state).unwrap();
        let mut encoder = device.create_command_encoder(&Default::default());
        on_gpu
            .encode_step(&mut encoder, &input_buffer, &output_buffer, &gpu_state)
            .unwrap();
        encoder.copy_buffer_to_buffer(&output_buffer, 0, &readback, 0, (out_len * 4) as u64);
        ctx.queue().submit([encoder.finish()]);
        readback
            .slice(..)
            .map_async(wgpu::MapMode::Read, |r| r.unwrap());
        device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        let got: Vec<f32> =
            bytemuck::cast_slice(&readback.slice(..).get_mapped_range().unwrap()).to_vec();
        readback.unmap();
        let want_bits: Vec<u32> = want.data().iter().map(|x| x.to_bits()).collect();
        let got_bits: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got_bits, want_bits, "step {step}");
    }
    // a buffer without COPY_SRC is a clear error, not a GPU fault
    let wrong = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("no copy src"),
        size: 1024,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    let err = on_gpu
        .encode_step(&mut encoder, &wrong, &output_buffer, &gpu_state)
        .unwrap_err()
        .to_string();
    assert!(err.contains("COPY_SRC"), "{err}");
}

#[test]
fn pool_slots_served_one_at_a_time_equal_single_streams_bitwise() {
    let ctx = gpu();
    let weights = model(2);
    let input = weights.config().input_size;
    let shared = GpuWeights::upload(ctx, &weights).unwrap();
    let mut pool = GpuStatePool::new(ctx, &shared, 3).unwrap();
    let mut alone: Vec<(GpuLstm, GpuState)> = (0..3)
        .map(|_| {
            let m = GpuLstm::with_weights(ctx, &shared);
            let s = GpuState::zeros(ctx, weights.config(), 1).unwrap();
            (m, s)
        })
        .collect();
    // streams interleave: 0, 2, 0, 1, 2, 2, 0 ...
    for (k, &slot) in [0usize, 2, 0, 1, 2, 2, 0, 1].iter().enumerate() {
        let x = random_tensor(&[1, input], 100 + k as u64);
        let got = pool.step(&[slot], &x).unwrap();
        let (m, s) = &mut alone[slot];
        let want = m.step(&x, s).unwrap();
        assert!(bits(&got) == bits(&want), "step {k} slot {slot}");
    }
}

#[test]
fn pool_streams_arriving_at_random_match_the_cpu() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let ctx = gpu();
    let weights = model(1);
    let input = weights.config().input_size;
    let streams = 20;
    let shared = GpuWeights::upload(ctx, &weights).unwrap();
    let mut pool = GpuStatePool::new(ctx, &shared, 8).unwrap();
    pool.grow(streams).unwrap();
    assert_eq!(pool.capacity(), streams);
    let mut rng = StdRng::seed_from_u64(1);
    let mut inputs: Vec<Vec<f32>> = vec![Vec::new(); streams];
    let mut outputs: Vec<Vec<f32>> = vec![Vec::new(); streams];
    for round in 0..6 {
        let mut active: Vec<usize> = (0..streams).filter(|_| rng.random_bool(0.5)).collect();
        if active.is_empty() {
            active.push(round);
        }
        active.reverse(); // any order
        let x = random_tensor(&[active.len(), input], 200 + round as u64);
        let y = pool.step(&active, &x).unwrap();
        let width = y.shape()[1];
        for (r, &s) in active.iter().enumerate() {
            inputs[s].extend_from_slice(&x.data()[r * input..(r + 1) * input]);
            outputs[s].extend_from_slice(&y.data()[r * width..(r + 1) * width]);
        }
    }
    let cpu = CpuLstm::<f64>::new(&weights);
    for s in (0..streams).filter(|&s| !inputs[s].is_empty()) {
        let t = inputs[s].len() / input;
        let x = Tensor::new([t, 1, input], inputs[s].clone()).unwrap();
        let want = cpu.forward(&to_f64(&x), None, None).unwrap();
        assert_close(
            &format!("stream {s}"),
            &outputs[s],
            want.output.data(),
            GPU_VS_F64,
        );
    }
}

#[test]
fn snapshot_and_restore_round_trip() {
    let ctx = gpu();
    let weights = model(0);
    let input = weights.config().input_size;
    let shared = GpuWeights::upload(ctx, &weights).unwrap();
    let mut pool = GpuStatePool::new(ctx, &shared, 4).unwrap();
    let x = random_tensor(&[1, input], 1);
    pool.step(&[2], &x).unwrap();
    let saved = pool.snapshot(2).unwrap();
    let first = pool.step(&[2], &x).unwrap();
    pool.restore(2, &saved).unwrap();
    assert_eq!(pool.snapshot(2).unwrap(), saved);
    let again = pool.step(&[2], &x).unwrap();
    assert!(
        bits(&first) == bits(&again),
        "the restored slot steps the same"
    );
    pool.reset(2).unwrap();
    let zero = pool.snapshot(2).unwrap();
    assert!(zero.h.data().iter().chain(zero.c.data()).all(|&v| v == 0.0));
    // other slots untouched by the step of slot 2
    let other = pool.snapshot(1).unwrap();
    assert!(other.h.data().iter().all(|&v| v == 0.0));
}

#[test]
fn bad_slots_and_bidirectional_models_are_errors() {
    let ctx = gpu();
    let weights = model(0);
    let input = weights.config().input_size;
    let shared = GpuWeights::upload(ctx, &weights).unwrap();
    let mut pool = GpuStatePool::new(ctx, &shared, 4).unwrap();
    let x = random_tensor(&[1, input], 1);
    let err = pool.step(&[4], &x).unwrap_err().to_string();
    assert!(err.contains("slot 4 is out of range"), "{err}");
    let x2 = random_tensor(&[2, input], 1);
    let err = pool.step(&[1, 1], &x2).unwrap_err().to_string();
    assert!(err.contains("twice"), "{err}");
    let err = pool.step(&[0], &x2).unwrap_err().to_string();
    assert!(err.contains("[B, I]"), "{err}");
    assert!(pool.snapshot(9).is_err());

    let bi = LstmWeights::init(&LstmConfig::new(3, 8).bidirectional(true), 0).unwrap();
    let bi_shared = GpuWeights::upload(ctx, &bi).unwrap();
    let err = GpuStatePool::new(ctx, &bi_shared, 2)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("bidirectional"), "{err}");
    let mut model = GpuLstm::with_weights(ctx, &bi_shared);
    let state = GpuState::zeros(ctx, bi.config(), 1).unwrap();
    let err = model.step(&random_tensor(&[1, 3], 0), &state).unwrap_err();
    assert!(err.to_string().contains("unidirectional"), "{err}");
    // a state of the wrong batch is an error naming both shapes
    let mut uni = GpuLstm::new(ctx, &weights).unwrap();
    let small = GpuState::zeros(ctx, weights.config(), 1).unwrap();
    let err = uni
        .forward_state(&random_tensor(&[2, 3, input], 0), &small)
        .unwrap_err()
        .to_string();
    assert!(err.contains("state holds"), "{err}");
}

#[test]
fn models_share_one_upload_and_keep_several_shapes() {
    let ctx = gpu();
    let weights = model(1);
    let input = weights.config().input_size;
    let shared = GpuWeights::upload(ctx, &weights).unwrap();
    let mut a = GpuLstm::with_weights(ctx, &shared);
    let mut b = GpuLstm::new(ctx, &weights).unwrap();
    let x = random_tensor(&[5, 2, input], 4);
    let ya = a.forward(&x, None, None).unwrap();
    let yb = b.forward(&x, None, None).unwrap();
    assert!(bits(&ya.output) == bits(&yb.output));
    for t in 1..=PREPARED_SHAPES + 1 {
        a.forward(&random_tensor(&[t, 2, input], 1), None, None)
            .unwrap();
    }
    let shapes = a.prepared_shapes();
    assert_eq!(shapes.len(), PREPARED_SHAPES);
    assert_eq!(
        shapes[0],
        Dims {
            seq_len: PREPARED_SHAPES + 1,
            batch: 2
        }
    );
    assert!(
        !shapes.contains(&Dims {
            seq_len: 1,
            batch: 2
        }),
        "least recent dropped"
    );
}

#[test]
fn a_trainers_weights_become_an_inference_model_on_the_gpu() {
    use lstm_wgpu::gpu::GpuTrainer;
    use lstm_wgpu::loss::{Loss, Target};
    use lstm_wgpu::train::{OptimizerConfig, OptimizerKind, TrainOptions, Trainer};
    let ctx = gpu();
    let weights = model(1);
    let input = weights.config().input_size;
    let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Adam, 1e-2));
    let mut trainer = GpuTrainer::new(ctx, &weights, options).unwrap();
    let x = random_tensor(&[6, 3, input], 1);
    let y = Target::Values(random_tensor(&[6, 3, 2], 2));
    for _ in 0..3 {
        trainer.submit(&x, &y).unwrap();
    }
    let mut inference = trainer.inference_model().unwrap();
    let got = inference.forward(&x, None, None).unwrap();
    let trained = trainer.weights().unwrap();
    let want = GpuLstm::new(ctx, &trained)
        .unwrap()
        .forward(&x, None, None)
        .unwrap();
    assert!(
        bits(&got.output) == bits(&want.output),
        "the trained weights"
    );
    trainer.step(&x, &y).unwrap();
    let later = inference.forward(&x, None, None).unwrap();
    assert!(
        bits(&later.output) == bits(&got.output),
        "a copy, not a view"
    );
}

#[test]
fn a_profiled_step_times_every_dispatch_of_the_plan_in_order() {
    let ctx = gpu();
    let weights = model(0);
    let cfg = weights.config().clone();
    let mut model = GpuLstm::new(ctx, &weights).unwrap();
    let state = GpuState::zeros(ctx, &cfg, 2).unwrap();
    let x = random_tensor(&[2, cfg.input_size], 3);
    let Some(parts) = model.profile_step(&x, &state).unwrap() else {
        assert!(
            !ctx.has_timestamps(),
            "timestamps exist but no profile came back"
        );
        return;
    };
    model
        .prepare(lstm_wgpu::Dims {
            seq_len: 1,
            batch: 2,
        })
        .unwrap();
    let plan = model.plan().unwrap();
    assert_eq!(
        parts.len(),
        plan.dispatch_count() + 1,
        "every dispatch, then the end"
    );
    let mut last = 0.0;
    for (part, (start, end)) in &parts {
        assert!(
            *start >= last && end >= start,
            "{part:?}: {start} .. {end} after {last}"
        );
        last = *end;
    }
    assert_eq!(parts.last().unwrap().0.kernel, "-");
    // the profiled step advanced the state like a plain step
    let (h, _) = state.read(ctx).unwrap();
    let mut plain = GpuLstm::new(ctx, &weights).unwrap();
    let fresh = GpuState::zeros(ctx, &cfg, 2).unwrap();
    plain.step(&x, &fresh).unwrap();
    assert_eq!(bits(&h), bits(&fresh.read(ctx).unwrap().0));
}
