//! The engine in a browser (headless Chromium's WebGPU: Dawn, Tint, SwiftShader): the GPU
//! path against the CPU path on both `webgpu_limits` settings, over shapes that reach every
//! kernel variant the browser's limits allow; GPU-resident state and `step`; the state pool;
//! training with SGD and Adam; and every shader build the engine can make, compiled by Tint.
//! Run by `bash web/test.sh` (wasm-bindgen-test-runner with chromedriver).

use std::collections::BTreeSet;

use lstm_wgpu::check::{Tolerance, GPU_VS_F64};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::internals::shader_builds;
use lstm_wgpu::gpu::{
    ContextOptions, GpuContext, GpuLstm, GpuState, GpuStatePool, GpuTrainer, GpuWeights,
    KernelChoice, Recurrence, RecurrentShape, SequenceTiles, StepTiles,
};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::{
    CpuTrainer, OptimizerConfig, OptimizerKind, ParamLayout, TrainOptions, Trainer,
};
use lstm_wgpu::{wgpu, Inputs, Linear, LstmConfig, LstmWeights, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Parameters and losses after a few f32 steps, GPU against the CPU path: the bound the
/// native suite holds GPU training to against PyTorch (tests/train_golden.rs).
const TRAINED_WEIGHTS: Tolerance = Tolerance {
    abs: 2e-5,
    rel: 2e-4,
};
const LOSS: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-4,
};

async fn context(webgpu_limits: bool) -> GpuContext {
    GpuContext::new_async(ContextOptions { webgpu_limits, ..Default::default() })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no WebGPU device: {e}. Run in Chromium with --enable-unsafe-webgpu \
                 (bash web/test.sh does)"
            )
        })
}

fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let len = shape.iter().product();
    let data = (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::new(shape.to_vec(), data).unwrap()
}

fn to_f64(t: &Tensor) -> Tensor<f64> {
    t.map(f64::from)
}

fn assert_close(what: &str, got: &[f32], want: &[f64], tol: Tolerance) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(m) = tol.first_mismatch(got, want) {
        panic!(
            "{what}: {} of {} elements outside {tol:?}; first at index {}: got {}, want {}",
            m.count,
            got.len(),
            m.index,
            m.got,
            m.want
        );
    }
}

/// One forward case: sizes, and what it exercises besides the kernel.
#[derive(Clone, Copy, Debug)]
struct Case {
    hidden: usize,
    input: usize,
    batch: usize,
    seq_len: usize,
    layers: usize,
    bidirectional: bool,
    proj: usize,
    lengths: bool,
    state: bool,
    /// at most this many steps per submitted chunk
    chunk: Option<usize>,
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    //     H   I  B   T layers bidir proj lengths state chunk
    c(     1,  2, 1,  5, 1, false,   0, false, false, None),
    c(     8,  3, 3,  9, 2, true,    0, true,  true,  Some(4)),
    c(    17,  3, 5,  6, 1, true,    5, false, true,  None),
    c(    64,  5, 1,  7, 1, false,   0, true,  false, Some(3)),
    c(    65,  4, 4,  4, 2, true,   17, true,  true,  None),
    c(   130,  3, 9,  3, 1, false,   0, false, true,  Some(2)),
    c(   256,  2, 17, 2, 1, true,   64, true,  false, None),
];

#[allow(clippy::too_many_arguments)]
const fn c(
    hidden: usize,
    input: usize,
    batch: usize,
    seq_len: usize,
    layers: usize,
    bidirectional: bool,
    proj: usize,
    lengths: bool,
    state: bool,
    chunk: Option<usize>,
) -> Case {
    Case {
        hidden,
        input,
        batch,
        seq_len,
        layers,
        bidirectional,
        proj,
        lengths,
        state,
        chunk,
    }
}

/// The kernel choices each case runs with (a choice that cannot run a shape is skipped):
/// the table's, each kernel forced, and exact per-step and sequence tiles.
fn choices() -> Vec<KernelChoice> {
    let step = |units, splits, rows, quads| {
        KernelChoice::Exact(Recurrence::PerStep(StepTiles {
            units,
            splits,
            rows,
            quads,
            span: 1,
        }))
    };
    let sequence = |splits, steps| {
        KernelChoice::Exact(Recurrence::Sequence(SequenceTiles {
            splits,
            steps,
            subgroups: false,
        }))
    };
    vec![
        KernelChoice::Auto,
        KernelChoice::Sequence,
        KernelChoice::PerStep,
        step(1, 1, 1, 1),
        step(4, 16, 1, 2),
        step(3, 5, 3, 3),
        step(8, 8, 16, 4),
        step(2, 16, 4, 1),
        sequence(1, 1),
        sequence(2, 3),
        sequence(4, 32),
    ]
}

/// Runs `case` with `kernel` against the CPU in f64; the variant that ran, or None when the
/// choice cannot run the shape on this device.
async fn run_case(
    ctx: &GpuContext,
    case: &Case,
    kernel: KernelChoice,
    seed: u64,
) -> Option<String> {
    let config = LstmConfig::new(case.input, case.hidden)
        .num_layers(case.layers)
        .bidirectional(case.bidirectional)
        .proj_size(case.proj);
    let shape = RecurrentShape {
        hidden: case.hidden,
        hidden_out: config.output_size(),
        batch: case.batch,
    };
    kernel.resolve(shape, &ctx.caps()).ok()?;
    let weights = LstmWeights::init(&config, seed).unwrap();
    let x = random_tensor(&[case.seq_len, case.batch, case.input], seed + 1);
    let states = config.num_layers * config.num_directions();
    let h0 = random_tensor(&[states, case.batch, config.output_size()], seed + 2);
    let c0 = random_tensor(&[states, case.batch, case.hidden], seed + 3);
    let (h0, c0) = if case.state {
        (Some(&h0), Some(&c0))
    } else {
        (None, None)
    };
    let lengths: Vec<usize> = (0..case.batch)
        .map(|b| 1 + (b * 5 + 2) % case.seq_len)
        .collect();
    let lengths = case.lengths.then_some(lengths.as_slice());

    let (x64, h064, c064) = (to_f64(&x), h0.map(to_f64), c0.map(to_f64));
    let want = CpuLstm::<f64>::new(&weights)
        .forward_with(
            &Inputs::new(&x64)
                .state(h064.as_ref(), c064.as_ref())
                .lengths(lengths),
        )
        .unwrap();
    let mut model = GpuLstm::new_async(ctx, &weights).await.unwrap();
    model.set_kernel(kernel);
    model.set_max_chunk_steps(case.chunk);
    let got = model
        .forward_with_async(&Inputs::new(&x).state(h0, c0).lengths(lengths))
        .await
        .unwrap_or_else(|e| panic!("{case:?} {kernel:?}: {e}"));
    let (variant, _) = model.kernel().unwrap();
    let what = |name: &str| format!("{name} {case:?} kernel {variant}");
    assert_close(
        &what("output"),
        got.output.data(),
        want.output.data(),
        GPU_VS_F64,
    );
    assert_close(&what("h_n"), got.h_n.data(), want.h_n.data(), GPU_VS_F64);
    assert_close(&what("c_n"), got.c_n.data(), want.c_n.data(), GPU_VS_F64);
    Some(variant.to_string())
}

/// The sweep on one limits setting: every case with every choice that can run it, and the
/// kinds of run the suite promises each happened at least once.
async fn forward_sweep(webgpu_limits: bool) {
    let ctx = context(webgpu_limits).await;
    let mut variants = BTreeSet::new();
    let (mut projected, mut bidirectional, mut lengths, mut chunked) = (0, 0, 0, 0);
    for (i, case) in CASES.iter().enumerate() {
        for (j, kernel) in choices().into_iter().enumerate() {
            let seed = 100 * i as u64 + j as u64;
            let Some(variant) = run_case(&ctx, case, kernel, seed).await else {
                continue;
            };
            variants.insert(variant);
            projected += (case.proj > 0) as usize;
            bidirectional += case.bidirectional as usize;
            lengths += case.lengths as usize;
            chunked += case.chunk.is_some() as usize;
        }
    }
    let sequence = variants
        .iter()
        .filter(|v| v.starts_with("sequence"))
        .count();
    let per_step = variants.iter().filter(|v| v.starts_with("step")).count();
    web_sys_log(&format!(
        "webgpu_limits={webgpu_limits}: {} variants ran: {variants:?}",
        variants.len()
    ));
    assert!(sequence >= 3, "sequence variants: {variants:?}");
    assert!(per_step >= 6, "per-step variants: {variants:?}");
    assert!(projected > 0 && bidirectional > 0 && lengths > 0 && chunked > 0);
}

#[wasm_bindgen_test]
async fn forward_matches_cpu_with_the_adapters_limits() {
    forward_sweep(false).await;
}

#[wasm_bindgen_test]
async fn forward_matches_cpu_with_webgpu_default_limits() {
    forward_sweep(true).await;
}

/// A unidirectional model with a projection and a head, as the streaming paths serve.
fn stream_model() -> LstmWeights {
    let config = LstmConfig::new(3, 24).num_layers(2).proj_size(8);
    LstmWeights::init(&config, 41)
        .unwrap()
        .with_head(Linear::init(8, 2, 7).unwrap())
        .unwrap()
}

/// Rows `t0..t1` of a time-major `[T, B, W]` tensor.
fn steps(t: &Tensor, t0: usize, t1: usize) -> Tensor {
    let row: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = t1 - t0;
    Tensor::new(shape, t.data()[t0 * row..t1 * row].to_vec()).unwrap()
}

/// A state kept on the GPU: chunks through `forward_state` and single `step`s give what one
/// forward over the whole sequence gives on the CPU.
#[wasm_bindgen_test]
async fn gpu_state_and_step_match_one_cpu_forward() {
    for webgpu_limits in [false, true] {
        let ctx = context(webgpu_limits).await;
        let weights = stream_model();
        let (t, b) = (9, 3);
        let x = random_tensor(&[t, b, 3], 5);
        let want = CpuLstm::<f64>::new(&weights)
            .forward_with(&Inputs::new(&to_f64(&x)))
            .unwrap();
        let mut gpu = GpuLstm::new_async(&ctx, &weights).await.unwrap();
        let state = GpuState::zeros(&ctx, weights.config(), b).unwrap();
        let mut outputs = Vec::new();
        for (t0, t1) in [(0, 4), (4, 5)] {
            let y = gpu.forward_state_async(&steps(&x, t0, t1), &state).await;
            outputs.extend_from_slice(y.unwrap().data());
        }
        for t0 in 5..t {
            let x_t = steps(&x, t0, t0 + 1);
            let x_t = Tensor::new(vec![b, 3], x_t.data().to_vec()).unwrap();
            outputs.extend_from_slice(gpu.step_async(&x_t, &state).await.unwrap().data());
        }
        assert_close("streamed output", &outputs, want.output.data(), GPU_VS_F64);
        let (h, c) = state.read_async(&ctx).await.unwrap();
        assert_close("h after streaming", h.data(), want.h_n.data(), GPU_VS_F64);
        assert_close("c after streaming", c.data(), want.c_n.data(), GPU_VS_F64);
    }
}

/// Pool slots stepped in changing groups match each stream run alone on the CPU, and a
/// snapshot taken midway restores the stream.
#[wasm_bindgen_test]
async fn state_pool_slots_match_single_streams() {
    let ctx = context(true).await;
    let weights = stream_model();
    let gpu_weights = GpuWeights::upload_async(&ctx, &weights).await.unwrap();
    let mut pool = GpuStatePool::new(&ctx, &gpu_weights, 4).unwrap();
    let t = 5;
    let streams: Vec<Tensor> = (0..4).map(|s| random_tensor(&[t, 1, 3], 60 + s)).collect();
    let want: Vec<_> = streams
        .iter()
        .map(|x| {
            CpuLstm::<f64>::new(&weights)
                .forward_with(&Inputs::new(&to_f64(x)))
                .unwrap()
        })
        .collect();
    // each step advances a different group of slots; every slot gets all t steps
    let mut next = [0usize; 4];
    let groups: [&[usize]; 6] = [
        &[0, 1, 2, 3],
        &[2, 0],
        &[1, 3, 0],
        &[3],
        &[0, 1, 2, 3],
        &[1, 2, 3],
    ];
    let mut snapshot = None;
    for (g, slots) in groups.iter().cycle().take(12).enumerate() {
        let slots: Vec<usize> = slots.iter().copied().filter(|&s| next[s] < t).collect();
        if slots.is_empty() {
            continue;
        }
        let mut x = Vec::new();
        for &s in &slots {
            x.extend_from_slice(steps(&streams[s], next[s], next[s] + 1).data());
        }
        let y = pool
            .step_async(&slots, &Tensor::new(vec![slots.len(), 3], x).unwrap())
            .await
            .unwrap();
        for (row, &s) in slots.iter().enumerate() {
            let width = 2;
            let want_row = &want[s].output.data()[next[s] * width..(next[s] + 1) * width];
            let got_row = &y.data()[row * width..(row + 1) * width];
            assert_close(
                &format!("slot {s} step {}", next[s]),
                got_row,
                want_row,
                GPU_VS_F64,
            );
            next[s] += 1;
        }
        if g == 2 {
            snapshot = Some((pool.snapshot_async(1).await.unwrap(), next[1]));
        }
    }
    assert_eq!(next, [t; 4]);
    // slot 1 again from the snapshot: the same remaining outputs
    let (state, from) = snapshot.unwrap();
    pool.restore(1, &state).unwrap();
    for step in from..t {
        let y = pool
            .step_async(
                &[1],
                &steps(&streams[1], step, step + 1)
                    .reshape(vec![1, 3])
                    .unwrap(),
            )
            .await
            .unwrap();
        let want_row = &want[1].output.data()[step * 2..(step + 1) * 2];
        assert_close(
            &format!("restored slot 1 step {step}"),
            y.data(),
            want_row,
            GPU_VS_F64,
        );
    }
}

/// Several steps of SGD (with momentum) and of Adam on the GPU give the CPU trainer's
/// losses and weights, with a head, two layers and both directions.
#[wasm_bindgen_test]
async fn training_matches_the_cpu_trainer() {
    let ctx = context(true).await;
    let config = LstmConfig::new(3, 12).num_layers(2).bidirectional(true);
    let weights = LstmWeights::init(&config, 3)
        .unwrap()
        .with_head(Linear::init(24, 2, 4).unwrap())
        .unwrap();
    let (t, b) = (6, 4);
    let batches: Vec<(Tensor, Target)> = (0..4)
        .map(|i| {
            let x = random_tensor(&[t, b, 3], 10 + i);
            let y = random_tensor(&[t, b, 2], 20 + i);
            (x, Target::Values(y))
        })
        .collect();
    let mut sgd = OptimizerConfig::new(OptimizerKind::Sgd, 0.1);
    sgd.momentum = 0.9;
    let adam = OptimizerConfig::new(OptimizerKind::Adam, 0.01);
    for optimizer in [sgd, adam] {
        let mut options = TrainOptions::new(Loss::Mse, optimizer);
        options.clip_norm = Some(1.0);
        let mut gpu = GpuTrainer::new_async(&ctx, &weights, options)
            .await
            .unwrap();
        let mut cpu = CpuTrainer::new(&weights, options).unwrap();
        for (step, (x, y)) in batches.iter().enumerate() {
            let got = gpu.step_async(x, y).await.unwrap();
            let want = cpu.step(x, y).unwrap();
            let what = format!("{:?} step {step} loss", optimizer.kind);
            assert_close(&what, &[got], &[want as f64], LOSS);
        }
        let got = gpu.weights_async().await.unwrap();
        let want = cpu.weights().unwrap();
        let layout = ParamLayout::new(&weights);
        let (got, want) = (layout.flatten(&got), layout.flatten(&want));
        let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        assert_close(
            &format!("{:?} weights", optimizer.kind),
            &got,
            &want,
            TRAINED_WEIGHTS,
        );
    }
}

#[wasm_bindgen(module = "/tests/tint_check.js")]
extern "C" {
    /// Compiles each build (JSON: label, code, entry, constants) with Tint on a fresh device
    /// (the adapter's limits, or WebGPU's defaults) and returns a JSON report.
    #[wasm_bindgen(js_name = compileEveryBuild)]
    async fn compile_every_build(builds: String, adapter_limits: bool) -> JsValue;

    /// The adapter's smallest subgroup size when it offers `subgroups`, else 0.
    #[wasm_bindgen(js_name = adapterSubgroupSize)]
    async fn adapter_subgroup_size() -> JsValue;
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn web_sys_log(s: &str);
}

/// Every shader build the engine can make on this adapter (each kernel with each set of
/// override constants; the subgroup variants at the adapter's subgroup size, though wgpu 30
/// does not yet enable them here) compiles under Tint with no error and no warning, and
/// its pipeline is created.
#[wasm_bindgen_test]
async fn tint_compiles_every_shader_build() {
    for webgpu_limits in [false, true] {
        let ctx = context(webgpu_limits).await;
        let info = ctx.adapter_info().expect("the crate made this device");
        assert_eq!(info.backend, wgpu::Backend::BrowserWebGpu);
        let mut caps = ctx.caps();
        let subgroup_size = adapter_subgroup_size().await.as_f64().unwrap() as u32;
        if subgroup_size > 0 {
            caps.subgroup_size = Some(subgroup_size);
        }
        let builds = shader_builds(&caps);
        let json: Vec<serde_json::Value> = builds
            .iter()
            .map(|b| {
                let constants: serde_json::Map<_, _> = b
                    .constants
                    .iter()
                    .map(|&(k, v)| (k.to_string(), serde_json::json!(v)))
                    .collect();
                serde_json::json!({
                    "label": b.label,
                    "code": b.kernel.source_for(wgpu::Backend::BrowserWebGpu),
                    "entry": b.kernel.spec().entry,
                    "constants": constants,
                    "subgroups": b.kernel.uses_subgroups(),
                })
            })
            .collect();
        let report = compile_every_build(serde_json::Value::from(json).to_string(), !webgpu_limits)
            .await
            .as_string()
            .expect("a JSON report");
        web_sys_log(&format!("tint, webgpu_limits={webgpu_limits}: {report}"));
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(report["compiled"], builds.len(), "{report}");
        assert!(
            report["problems"].as_array().unwrap().is_empty(),
            "{report}"
        );
        let subgroup_build = builds.iter().find(|b| b.kernel.uses_subgroups());
        if subgroup_size > 0 {
            assert_eq!(report["subgroups"], true, "{report}");
            // the check can fail: the native source (no directive) is an error under Tint
            let build = subgroup_build.expect("subgroup builds at the adapter's size");
            let native = serde_json::json!([{
                "label": build.label,
                "code": build.kernel.source_for(wgpu::Backend::Vulkan),
                "entry": build.kernel.spec().entry,
                "constants": {},
            }]);
            let report = compile_every_build(native.to_string(), !webgpu_limits)
                .await
                .as_string()
                .unwrap();
            let report: serde_json::Value = serde_json::from_str(&report).unwrap();
            let problems = report["problems"].to_string();
            assert!(problems.contains("subgroups"), "{report}");
        }
    }
}

/// wasm32 has no threads: the CPU path runs on one, and asking for more is a clear error
/// (not a panic when the thread would be spawned).
#[wasm_bindgen_test]
fn the_cpu_path_runs_on_one_thread() {
    let weights = LstmWeights::init(&LstmConfig::new(3, 8), 0).unwrap();
    let fast = lstm_wgpu::cpu::FastCpuLstm::new(&weights);
    assert_eq!(fast.threads(), 1);
    let Err(error) = fast.with_threads(2) else {
        panic!("two threads accepted on wasm32");
    };
    assert!(
        error.to_string().contains("wasm32 has no threads"),
        "{error}"
    );
    let x = random_tensor(&[4, 2, 3], 1);
    let fast = lstm_wgpu::cpu::FastCpuLstm::new(&weights);
    let got = fast.forward(&x, None, None).unwrap();
    let want = CpuLstm::<f64>::new(&weights)
        .forward_with(&Inputs::new(&to_f64(&x)))
        .unwrap();
    assert_close(
        "one-thread CPU forward",
        got.output.data(),
        want.output.data(),
        GPU_VS_F64,
    );
}
