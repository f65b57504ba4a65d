//! GPU faults as a library user meets them: errors outside the library recorded instead of
//! panicking, a caller's handler left in place, out of memory, device loss and recovery,
//! timeouts, and one context shared by 8 threads. Each test makes its own context where it
//! breaks one (a lost device stays lost).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{gpu, random_tensor};
use lstm_wgpu::gpu::{GpuContext, GpuLstm, GpuState, GpuStatePool, GpuTrainer, GpuWeights};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::{OptimizerConfig, OptimizerKind, TrainOptions, Trainer};
use lstm_wgpu::{Error, LstmConfig, LstmWeights, Tensor};

fn fresh_context() -> GpuContext {
    gpu(); // fails with instructions when there is no adapter
    GpuContext::new().expect("a second context on the same adapter")
}

fn small_model(seed: u64) -> LstmWeights {
    LstmWeights::init(&LstmConfig::new(3, 8).num_layers(2), seed).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

/// `f` on another thread; panics if it takes longer than `secs` (a hang).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || send.send(f()).ok());
    receive
        .recv_timeout(Duration::from_secs(secs))
        .expect("the call hung")
}

fn oversized_buffer(device: &wgpu::Device) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("too big"),
        size: device.limits().max_buffer_size + 4,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    })
}

#[test]
fn errors_outside_every_scope_are_recorded_not_panicking() {
    let ctx = fresh_context();
    // wgpu's default handler panics on this; the context's records it
    let _buffer = oversized_buffer(ctx.device());
    let errors = ctx.take_uncaptured_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("too big"), "{errors:?}");
    assert!(ctx.take_uncaptured_errors().is_empty(), "taken once");
    // the context goes on working
    let weights = small_model(1);
    let x = random_tensor(&[4, 2, 3], 2);
    GpuLstm::new(&ctx, &weights)
        .unwrap()
        .forward(&x, None, None)
        .unwrap();
}

#[test]
fn a_library_call_returns_its_gpu_error_and_leaves_the_callers_handler_in_place() {
    gpu();
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))
    .unwrap();
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    device.on_uncaptured_error(Arc::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let ctx = GpuContext::from_device(device.clone(), queue).unwrap();
    let _buffer = oversized_buffer(&device);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the caller's handler got it"
    );
    assert!(
        ctx.take_uncaptured_errors().is_empty(),
        "ours is not installed"
    );

    // a GPU error inside a library call (a write into a destroyed buffer) is that call's Err
    let weights = small_model(3);
    let state = GpuState::zeros(&ctx, weights.config(), 2).unwrap();
    state.h_buffer().destroy();
    let h = Tensor::full([2, 2, 8], 0.5f32);
    let err = state.write(&ctx, &h, &h).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Gpu {
                during: "writing a state",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "nothing reached the handler"
    );
}

#[test]
fn out_of_memory_names_the_buffer_and_the_context_stays_usable() {
    let ctx = gpu();
    let max = ctx.device().limits().max_buffer_size;
    // the layer output [T, B, H] of 1024 x 1024 x 600 f32 is 2.4 GB, over lavapipe's
    // max_buffer_size (2 GiB - 1); pick H so that it is over whatever the adapter's is
    let hidden = (max / (1024 * 1024 * 4) + 1) as usize;
    let big = LstmWeights::init(&LstmConfig::new(1, hidden), 0).unwrap();
    let x = Tensor::full([1024, 1024, 1], 0.25f32);
    let err = GpuLstm::new(ctx, &big)
        .unwrap()
        .forward(&x, None, None)
        .unwrap_err();
    let bytes = 1024 * 1024 * hidden as u64 * 4;
    match &err {
        Error::OutOfMemory {
            what,
            bytes: b,
            max_buffer_size,
            ..
        } => {
            assert!(what.contains("layer output"), "{err}");
            assert_eq!((*b, *max_buffer_size), (bytes, max));
        }
        other => panic!("expected out of memory, got {other}"),
    }
    assert!(err.to_string().contains(&bytes.to_string()), "{err}");

    // a state for more streams than any buffer holds
    let weights = small_model(4);
    let err = GpuState::zeros(ctx, weights.config(), usize::MAX / 2)
        .err()
        .expect("a state that large fails");
    assert!(
        matches!(&err, Error::OutOfMemory { what, .. } if what.contains("state h")),
        "{err}"
    );
    let err = GpuStatePool::new(
        ctx,
        &GpuWeights::upload(ctx, &weights).unwrap(),
        usize::MAX / 4,
    )
    .err()
    .expect("a pool that large fails");
    assert!(matches!(err, Error::OutOfMemory { .. }), "{err}");

    // the context and another model on it go on working
    let x = random_tensor(&[5, 2, 3], 5);
    let cpu = lstm_wgpu::cpu::CpuLstm::<f32>::new(&weights)
        .forward(&x, None, None)
        .unwrap();
    let out = GpuLstm::new(ctx, &weights)
        .unwrap()
        .forward(&x, None, None)
        .unwrap();
    let want: Vec<f64> = cpu.output.data().iter().map(|&v| v as f64).collect();
    common::assert_close("after OOM", out.output.data(), &want, common::GPU_VS_F64);
}

#[test]
fn a_lost_device_fails_every_call_without_hanging_and_recreate_recovers() {
    let ctx = fresh_context();
    let weights = small_model(6);
    let x = random_tensor(&[4, 2, 3], 7);
    let mut model = GpuLstm::new(&ctx, &weights).unwrap();
    let before = model.forward(&x, None, None).unwrap();
    let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Adam, 1e-2));
    let mut trainer = GpuTrainer::new(&ctx, &weights, options).unwrap();
    let y = Target::Values(random_tensor(&[4, 2, 8], 8));
    trainer.step(&x, &y).unwrap();
    let good = trainer.weights().unwrap();
    trainer.submit(&x, &y).unwrap();

    ctx.device().destroy();
    let (ctx2, x2, y2, weights2) = (ctx.clone(), x.clone(), y.clone(), weights.clone());
    // the loss shows from the first call that waits on the device (wgpu reports it once
    // the work in flight has drained), then in every call
    let (forward, new, state, step, flush, idle, host) = within(60, move || {
        let forward = model.forward(&x2, None, None).err();
        (
            forward,
            GpuLstm::new(&ctx2, &weights2).err(),
            GpuState::zeros(&ctx2, weights2.config(), 2).err(),
            trainer.step(&x2, &y2).err(),
            trainer.flush().err(),
            ctx2.wait_idle().err(),
            trainer.last_host_weights(),
        )
    });
    for (call, err) in [
        ("forward", forward),
        ("new", new),
        ("state", state),
        ("train step", step),
        ("flush", flush),
        ("wait_idle", idle),
    ] {
        match err {
            Some(Error::DeviceLost { reason, .. }) => {
                assert!(reason.contains("Destroyed"), "{call}: {reason}")
            }
            other => panic!("{call}: expected DeviceLost, got {other:?}"),
        }
    }
    assert!(ctx.lost_reason().is_some());
    // training stopped with its last good weights on the host
    assert_eq!(host.0, 1);
    assert_eq!(host.1.named_tensors().len(), good.named_tensors().len());
    for ((name, a), (_, b)) in host.1.named_tensors().iter().zip(good.named_tensors()) {
        assert_eq!(bits(a), bits(b), "{name}");
    }

    // a new device, the model uploaded again from its host weights
    let new = ctx.recreate().unwrap();
    let after = GpuLstm::new(&new, &weights)
        .unwrap()
        .forward(&x, None, None)
        .unwrap();
    assert_eq!(bits(&after.output), bits(&before.output));
}

#[test]
fn a_callers_device_is_marked_lost_by_its_owner_and_not_recreated_here() {
    let ctx = GpuContext::from_device(gpu().device().clone(), gpu().queue().clone()).unwrap();
    let err = ctx.recreate().err().expect("the caller recreates");
    assert!(matches!(err, Error::Config(_)), "{err}");
    ctx.mark_lost("the owner's callback said so");
    let err = GpuLstm::new(&ctx, &small_model(9)).err().unwrap();
    assert!(
        matches!(&err, Error::DeviceLost { reason, .. } if reason.contains("owner")),
        "{err}"
    );
}

#[test]
fn a_wait_longer_than_the_timeout_is_an_error_and_the_next_call_works() {
    let ctx = fresh_context();
    let weights = LstmWeights::init(&LstmConfig::new(64, 256), 10).unwrap();
    let x = random_tensor(&[200, 64, 64], 11);
    let mut model = GpuLstm::new(&ctx, &weights).unwrap();
    let want = model.forward(&x, None, None).unwrap();
    ctx.set_timeout(Duration::from_nanos(1));
    if ctx.adapter_info().unwrap().backend == wgpu::Backend::Gl {
        // GL runs a submission to the end inside `submit`: the wait for the readback finds
        // the work done, so no timeout can fire, and the result is whole
        let got = model.forward(&x, None, None).unwrap();
        assert_eq!(bits(&got.output), bits(&want.output));
        return;
    }
    let err = model.forward(&x, None, None).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    ctx.set_timeout(lstm_wgpu::gpu::DEFAULT_TIMEOUT);
    let got = model.forward(&x, None, None).unwrap();
    assert_eq!(bits(&got.output), bits(&want.output));
}

#[test]
fn contexts_models_and_pools_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GpuContext>();
    send_sync::<GpuLstm>();
    send_sync::<GpuWeights>();
    send_sync::<GpuState>();
    send_sync::<GpuStatePool>();
    send_sync::<GpuTrainer>();
}

/// One thread's work in the 8-thread test: forwards (thread i % 3 == 0), streamed steps
/// through a state pool (1) or training steps (2), as the bits of every result.
fn thread_work(
    ctx: &GpuContext,
    shared: &GpuWeights,
    weights: &LstmWeights,
    i: usize,
) -> Vec<Vec<u32>> {
    let x = random_tensor(&[6 + i, 1 + i % 3, 3], 100 + i as u64);
    match i % 3 {
        0 => {
            let mut model = GpuLstm::with_weights(ctx, shared);
            (0..3)
                .map(|_| bits(&model.forward(&x, None, None).unwrap().output))
                .collect()
        }
        1 => {
            let mut pool = GpuStatePool::new(ctx, shared, 4).unwrap();
            let batch = 1 + i % 3;
            let slots: Vec<usize> = (0..batch).collect();
            (0..6 + i)
                .map(|t| {
                    let x_t = Tensor::new(
                        [batch, 3],
                        x.data()[t * batch * 3..(t + 1) * batch * 3].to_vec(),
                    );
                    bits(&pool.step(&slots, &x_t.unwrap()).unwrap())
                })
                .collect()
        }
        _ => {
            let options =
                TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Adam, 1e-2));
            let mut trainer = GpuTrainer::new(ctx, weights, options).unwrap();
            let y = Target::Values(random_tensor(&[6 + i, 1 + i % 3, 8], 200 + i as u64));
            let mut out: Vec<Vec<u32>> = (0..2)
                .map(|_| vec![trainer.step(&x, &y).unwrap().to_bits()])
                .collect();
            let trained = trainer.weights().unwrap();
            out.extend(trained.named_tensors().iter().map(|(_, t)| bits(t)));
            out
        }
    }
}

/// Forwards, a state pool's streamed steps and training on 8 threads sharing one context
/// (and, for the forwards and the pool, one upload of the weights) give bitwise the results
/// of the same work run one thread at a time.
#[test]
fn eight_threads_on_one_context_give_the_serial_results() {
    let ctx = gpu();
    let weights = small_model(12);
    let shared = GpuWeights::upload(ctx, &weights).unwrap();
    let serial: Vec<Vec<Vec<u32>>> = (0..8)
        .map(|i| thread_work(ctx, &shared, &weights, i))
        .collect();
    let parallel: Vec<Vec<Vec<u32>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (shared, weights) = (&shared, &weights);
                scope.spawn(move || thread_work(ctx, shared, weights, i))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (got, want)) in parallel.iter().zip(&serial).enumerate() {
        assert!(got == want, "thread {i} differs from the serial run");
    }
}

#[test]
fn the_cli_reports_out_of_memory_in_one_line_and_leaves_the_output_alone() {
    let ctx = gpu();
    let hidden = (ctx.device().limits().max_buffer_size / (1024 * 1024 * 4) + 1) as usize;
    let dir = tempfile::tempdir().unwrap();
    let (weights, x, y) = (
        dir.path().join("big.safetensors"),
        dir.path().join("x.npy"),
        dir.path().join("y.npy"),
    );
    let big = LstmWeights::init(&LstmConfig::new(1, hidden), 0).unwrap();
    lstm_wgpu::io::safetensors::save(&weights, &big).unwrap();
    lstm_wgpu::io::npy::write_f32(&x, &Tensor::full([1024, 1024, 1], 0.25f32)).unwrap();
    std::fs::write(&y, b"previous contents").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(["run", "--device", "gpu", "--weights"])
        .arg(&weights)
        .arg("--input")
        .arg(&x)
        .arg("--output")
        .arg(&y)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = common::error_lines(&stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("out of GPU memory") && lines[0].contains("layer output"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&y).unwrap(), b"previous contents");
}

/// A panic raised inside a submission (the fault hook, as a panic inside wgpu would be)
/// does not unwind into the caller: forward, stream and training calls each return
/// `DeviceLost` naming it, the context is marked lost, and `recreate` gives a working one.
#[test]
fn a_panic_inside_a_submission_is_an_error_and_recreate_recovers() {
    use lstm_wgpu::gpu::fault_hooks::panic_in_next_submission;
    let weights = small_model(21);
    let x = random_tensor(&[4, 2, 3], 22);
    let want = GpuLstm::new(gpu(), &weights)
        .unwrap()
        .forward(&x, None, None)
        .unwrap();
    let lost = |err: Option<Error>, call: &str| match err {
        Some(Error::DeviceLost { reason, .. }) => {
            assert!(
                reason.contains("injected fault: a panic inside a submission"),
                "{call}: {reason}"
            )
        }
        other => panic!("{call}: expected DeviceLost, got {other:?}"),
    };
    // each call on its own context, which the panic marks lost
    let ctx = fresh_context();
    let mut model = GpuLstm::new(&ctx, &weights).unwrap();
    panic_in_next_submission();
    lost(model.forward(&x, None, None).err(), "forward");
    assert!(ctx.lost_reason().unwrap().contains("injected fault"));
    lost(model.forward(&x, None, None).err(), "the forward after");

    let ctx = fresh_context();
    let mut model = GpuLstm::new(&ctx, &weights).unwrap();
    let state = GpuState::zeros(&ctx, weights.config(), 2).unwrap();
    let x_t = random_tensor(&[2, 3], 23);
    model.step(&x_t, &state).unwrap();
    panic_in_next_submission();
    lost(model.step(&x_t, &state).err(), "stream step");

    let ctx = fresh_context();
    let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Adam, 1e-2));
    let mut trainer = GpuTrainer::new(&ctx, &weights, options).unwrap();
    let y = Target::Values(random_tensor(&[4, 2, 8], 24));
    trainer.step(&x, &y).unwrap();
    panic_in_next_submission();
    lost(trainer.step(&x, &y).err(), "training step");

    // a new device gives the results of a healthy one
    let new = ctx.recreate().unwrap();
    let got = GpuLstm::new(&new, &weights)
        .unwrap()
        .forward(&x, None, None)
        .unwrap();
    assert_eq!(bits(&got.output), bits(&want.output));
}

/// Only GL's single-threaded driver context gets the lock that takes device work in turn.
#[test]
fn device_work_is_taken_in_turn_on_gl_only() {
    let ctx = gpu();
    let backend = ctx.adapter_info().unwrap().backend;
    assert_eq!(ctx.serializes_device_work(), backend == wgpu::Backend::Gl);
}

/// Dropping models on one thread while another uses the same context, dropping the context
/// while a model holds a clone of it, and `recreate` while other threads are mid-call: each
/// is correct, never a panic or a hang.
#[test]
fn drops_and_recreate_beside_running_calls_are_safe() {
    let ctx = fresh_context();
    let weights = small_model(31);
    let x = random_tensor(&[5, 2, 3], 32);
    let want = bits(
        &GpuLstm::new(&ctx, &weights)
            .unwrap()
            .forward(&x, None, None)
            .unwrap()
            .output,
    );
    let (ctx2, weights2, x2, want2) = (ctx.clone(), weights.clone(), x.clone(), want.clone());
    within(300, move || {
        std::thread::scope(|scope| {
            // forwards on one thread ...
            let runner = scope.spawn(|| {
                let mut model = GpuLstm::new(&ctx2, &weights2).unwrap();
                for _ in 0..20 {
                    assert_eq!(bits(&model.forward(&x2, None, None).unwrap().output), want2);
                }
            });
            // ... while another makes, uses and drops models, states and trainers
            for i in 0..10 {
                let mut model = GpuLstm::new(&ctx2, &weights2).unwrap();
                if i % 2 == 0 {
                    model.forward(&x2, None, None).unwrap();
                }
                drop(GpuState::zeros(&ctx2, weights2.config(), 2).unwrap());
                drop(model);
            }
            // ... and recreates the context: the old one keeps working for its models
            let fresh = ctx2.recreate().unwrap();
            let mut model = GpuLstm::new(&fresh, &weights2).unwrap();
            assert_eq!(bits(&model.forward(&x2, None, None).unwrap().output), want2);
            runner.join().unwrap();
        });
    });
    // the context dropped while a model still holds its clone: the model goes on
    let mut model = GpuLstm::new(&ctx, &weights).unwrap();
    drop(ctx);
    assert_eq!(bits(&model.forward(&x, None, None).unwrap().output), want);
}

/// Two contexts on the same adapter used at once (on GL: two driver contexts, each with its
/// own lock, taken in turn by its own context) give the serial results.
#[test]
fn two_contexts_used_at_once_give_the_serial_results() {
    let weights = small_model(41);
    let inputs: Vec<Tensor> = (0..4)
        .map(|i| random_tensor(&[5 + i, 2, 3], 42 + i as u64))
        .collect();
    let want: Vec<Vec<u32>> = inputs
        .iter()
        .map(|x| {
            bits(
                &GpuLstm::new(gpu(), &weights)
                    .unwrap()
                    .forward(x, None, None)
                    .unwrap()
                    .output,
            )
        })
        .collect();
    let contexts = [fresh_context(), fresh_context()];
    let (weights, inputs, want2) = (Arc::new(weights), Arc::new(inputs), want.clone());
    within(600, move || {
        std::thread::scope(|scope| {
            for (k, ctx) in contexts.iter().enumerate() {
                for i in 0..4 {
                    let (weights, inputs, want) = (&weights, &inputs, &want2);
                    scope.spawn(move || {
                        let mut model = GpuLstm::new(ctx, weights).unwrap();
                        for _ in 0..2 {
                            let got = model.forward(&inputs[i], None, None).unwrap();
                            assert!(bits(&got.output) == want[i], "context {k}, thread {i}");
                        }
                    });
                }
            }
        });
    });
}
