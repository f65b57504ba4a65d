//! The fast CPU path (packed weights, SIMD, threads) against the readable CPU reference in
//! f64, on a sweep of awkward shapes with every option, and its determinism: bitwise the
//! same run after run and across thread counts.

mod common;

use common::{assert_close, random_tensor, to_f64, GPU_VS_F64};
use lstm_wgpu::cpu::{CpuLstm, FastCpuLstm};
use lstm_wgpu::{Inputs, Linear, LstmConfig, LstmOutput, LstmWeights, Tensor};

/// (hidden, input, batch, T, layers, bidirectional, bias, proj, state, batch_first, head)
type Shape = (
    usize,
    usize,
    usize,
    usize,
    usize,
    bool,
    bool,
    usize,
    bool,
    bool,
    bool,
);

#[rustfmt::skip]
const SHAPES: &[Shape] = &[
    (  1,   1, 1,  1, 1, false, true,    0, false, false, false),
    (  2,   3, 3,  2, 1, true,  true,    0, true,  false, true),
    (  7,   5, 4,  9, 2, false, true,    0, true,  false, false),
    ( 17,   3, 8, 17, 2, true,  false,   0, false, true,  false),
    ( 63, 130, 3, 17, 1, false, true,    0, true,  false, true),
    ( 64,   1, 8,  2, 3, true,  true,    0, true,  true,  false),
    ( 65, 130, 1, 17, 2, false, true,    0, false, false, false),
    (256, 130, 7, 5,  2, true,  true,    0, false, false, false),
    (600,   3, 1, 6,  1, true,  true,  300, true,  false, false),
    ( 17,   3, 3, 17, 3, true,  true,    5, true,  true,  true),
    ( 65,   1, 8,  1, 2, false, false,  64, false, true,  false),
    (  2,   1, 1, 17, 3, false, true,    1, true,  false, false),
    ( 45,  16, 37, 4, 1, false, true,   40, false, false, false),
];

struct Case {
    weights: LstmWeights,
    x: Tensor,
    h0: Option<Tensor>,
    c0: Option<Tensor>,
    lengths: Option<Vec<usize>>,
}

fn case(shape: &Shape, seed: u64, with_lengths: bool) -> Case {
    let &(hidden, input, batch, seq, layers, bidir, bias, proj, state, batch_first, head) = shape;
    let config = LstmConfig::new(input, hidden)
        .num_layers(layers)
        .bidirectional(bidir)
        .bias(bias)
        .proj_size(proj)
        .batch_first(batch_first);
    let mut weights = LstmWeights::init(&config, seed).unwrap();
    if head {
        let width = config.num_directions() * config.output_size();
        weights = weights
            .with_head(Linear::init(width, 3, seed).unwrap())
            .unwrap();
    }
    let x_shape = if batch_first {
        [batch, seq, input]
    } else {
        [seq, batch, input]
    };
    let states = layers * config.num_directions();
    Case {
        weights,
        x: random_tensor(&x_shape, seed + 1),
        h0: state.then(|| random_tensor(&[states, batch, config.output_size()], seed + 2)),
        c0: state.then(|| random_tensor(&[states, batch, hidden], seed + 3)),
        lengths: with_lengths.then(|| (0..batch).map(|b| 1 + (b * 5 + 2) % seq).collect()),
    }
}

fn fast(case: &Case, threads: usize) -> LstmOutput<f32> {
    FastCpuLstm::new(&case.weights)
        .with_threads(threads)
        .unwrap()
        .forward_with(
            &Inputs::new(&case.x)
                .state(case.h0.as_ref(), case.c0.as_ref())
                .lengths(case.lengths.as_deref()),
        )
        .unwrap()
}

fn reference(case: &Case) -> LstmOutput<f64> {
    let (x, h0, c0) = (
        to_f64(&case.x),
        case.h0.as_ref().map(to_f64),
        case.c0.as_ref().map(to_f64),
    );
    CpuLstm::<f64>::new(&case.weights)
        .forward_with(
            &Inputs::new(&x)
                .state(h0.as_ref(), c0.as_ref())
                .lengths(case.lengths.as_deref()),
        )
        .unwrap()
}

#[test]
fn fast_cpu_matches_f64_reference_on_shape_sweep() {
    for (i, shape) in SHAPES.iter().enumerate() {
        for with_lengths in [false, true] {
            let case = case(shape, 10 * i as u64, with_lengths);
            let want = reference(&case);
            for threads in [1, 2, 3] {
                let got = fast(&case, threads);
                let what =
                    |name| format!("{name} {shape:?} lengths {with_lengths} threads {threads}");
                assert_eq!(got.output.shape(), want.output.shape(), "{}", what("shape"));
                assert_close(
                    &what("output"),
                    got.output.data(),
                    want.output.data(),
                    GPU_VS_F64,
                );
                assert_close(&what("h_n"), got.h_n.data(), want.h_n.data(), GPU_VS_F64);
                assert_close(&what("c_n"), got.c_n.data(), want.c_n.data(), GPU_VS_F64);
            }
        }
    }
}

#[test]
fn fast_cpu_is_bitwise_reproducible_and_equal_across_thread_counts() {
    let shape: Shape = (96, 40, 13, 9, 2, true, true, 24, true, false, true);
    let case = case(&shape, 7, true);
    let bits = |out: &LstmOutput<f32>| -> Vec<u32> {
        [out.output.data(), out.h_n.data(), out.c_n.data()]
            .concat()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    };
    let first = bits(&fast(&case, 1));
    assert_eq!(first, bits(&fast(&case, 1)), "threads 1, run twice");
    for threads in [2, 3, 5] {
        assert_eq!(first, bits(&fast(&case, threads)), "threads {threads} vs 1");
    }
}

#[test]
fn absurd_thread_counts_are_clear_errors_or_capped() {
    let weights = LstmWeights::init(&LstmConfig::new(2, 3), 0).unwrap();
    let msg = FastCpuLstm::new(&weights)
        .with_threads(0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("threads must be at least 1"), "{msg}");
    let msg = FastCpuLstm::new(&weights)
        .with_threads(1_000_000)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("threads = 1000000 is more than the 1024"),
        "{msg}"
    );
    // far more threads than work: the plan uses what there is work for, the results hold
    let x = Tensor::full([4, 2, 2], 0.25f32);
    let many = FastCpuLstm::new(&weights).with_threads(64).unwrap();
    let one = FastCpuLstm::new(&weights).with_threads(1).unwrap();
    assert_eq!(
        many.forward(&x, None, None).unwrap().output.data(),
        one.forward(&x, None, None).unwrap().output.data()
    );
}

/// Non-finite input reaches the output as it does in the reference, rather than being
/// clamped away by the vector exp.
#[test]
fn nan_and_infinity_propagate() {
    let weights = LstmWeights::init(&LstmConfig::new(2, 9), 3).unwrap();
    let mut data = vec![0.5f32; 3 * 2 * 2];
    data[0] = f32::NAN;
    data[6] = f32::INFINITY;
    let x = Tensor::new([3, 2, 2], data).unwrap();
    let got = FastCpuLstm::new(&weights).forward(&x, None, None).unwrap();
    let want = CpuLstm::<f32>::new(&weights)
        .forward(&x, None, None)
        .unwrap();
    for (g, w) in got.output.data().iter().zip(want.output.data()) {
        assert_eq!(g.is_nan(), w.is_nan(), "got {g} want {w}");
        if !w.is_nan() {
            assert!((g - w).abs() < 1e-5, "got {g} want {w}");
        }
    }
}

/// Gradients of every parameter and input from the fast kernels against the f64 reference.
#[test]
fn fast_cpu_gradients_match_f64_reference() {
    use lstm_wgpu::loss::{Loss, Target};
    let tol = lstm_wgpu::check::Tolerance {
        abs: 5e-5,
        rel: 1e-3,
    };
    for (i, shape) in SHAPES.iter().enumerate() {
        for with_lengths in [false, true] {
            let case = case(shape, 10 * i as u64 + 5, with_lengths);
            let out = reference(&case);
            let target = Target::Values(random_tensor(out.output.shape(), 99));
            let inputs = Inputs::new(&case.x)
                .state(case.h0.as_ref(), case.c0.as_ref())
                .lengths(case.lengths.as_deref());
            let (x, h0, c0) = (
                to_f64(&case.x),
                case.h0.as_ref().map(to_f64),
                case.c0.as_ref().map(to_f64),
            );
            let inputs64 = Inputs::new(&x)
                .state(h0.as_ref(), c0.as_ref())
                .lengths(case.lengths.as_deref());
            let (want_loss, _, want) = CpuLstm::<f64>::new(&case.weights)
                .loss_gradients(&inputs64, Loss::Mse, &target)
                .unwrap();
            let mut first_bits: Option<Vec<u32>> = None;
            for threads in [1, 2, 3] {
                let (loss, _, got) = FastCpuLstm::new(&case.weights)
                    .with_threads(threads)
                    .unwrap()
                    .loss_gradients(&inputs, Loss::Mse, &target)
                    .unwrap();
                let what = |name: &str| {
                    format!("{name} {shape:?} lengths {with_lengths} threads {threads}")
                };
                assert_close(&what("loss"), &[loss], &[want_loss], tol);
                let want_flat = flat(&want);
                assert_close(&what("gradients"), &flat(&got), &want_flat, tol);
                // bitwise the same whatever the thread count
                let bits: Vec<u32> = flat(&got).iter().map(|x| x.to_bits()).collect();
                match &first_bits {
                    Some(first) => assert!(first == &bits, "{}", what("bits vs 1 thread")),
                    None => first_bits = Some(bits),
                }
            }
        }
    }
}

/// Every gradient in one vector: each layer's parameters, the head's, then dx, dh0, dc0.
fn flat<T: lstm_wgpu::cpu::Real>(g: &lstm_wgpu::cpu::Gradients<T>) -> Vec<T> {
    let mut v = Vec::new();
    for l in &g.layers {
        v.extend(l.w_ih.iter().chain(&l.w_hh).chain(&l.b_ih).chain(&l.b_hh));
        v.extend(l.w_hr.iter().flatten());
    }
    if let Some(h) = &g.head {
        v.extend(h.weight.iter().chain(&h.bias));
    }
    v.extend(g.dx.data().iter().chain(g.dh0.data()).chain(g.dc0.data()));
    v
}

/// A model keeps its big buffers between calls. Whatever an earlier call left in them (here
/// NaN everywhere, from a NaN input), a later call gives bitwise what a fresh model gives,
/// and `loss_parameter_gradients` gives `loss_gradients`' parameter gradients without dx.
#[test]
fn reused_buffers_give_the_results_of_a_fresh_model() {
    use lstm_wgpu::loss::{Loss, Target};
    for (i, shape) in SHAPES.iter().enumerate() {
        let case = case(shape, 10 * i as u64 + 7, true);
        let inputs = Inputs::new(&case.x)
            .state(case.h0.as_ref(), case.c0.as_ref())
            .lengths(case.lengths.as_deref());
        let fresh = || FastCpuLstm::new(&case.weights).with_threads(2).unwrap();
        let want_out = fresh().forward_with(&inputs).unwrap();
        let target = Target::Values(random_tensor(want_out.output.shape(), 98));
        let (want_loss, _, want) = fresh().loss_gradients(&inputs, Loss::Mse, &target).unwrap();

        let kept = fresh();
        let poison = Tensor::full(case.x.shape(), f32::NAN);
        let (nan_loss, _, _) = kept
            .loss_gradients(&Inputs::new(&poison), Loss::Mse, &target)
            .unwrap();
        assert!(nan_loss.is_nan(), "{shape:?}: the poisoning call saw NaN");
        let (loss, _, got) = kept
            .loss_parameter_gradients(&inputs, Loss::Mse, &target)
            .unwrap();
        assert_eq!(loss.to_bits(), want_loss.to_bits(), "{shape:?} loss");
        assert_eq!(got.dx.shape(), &[0], "{shape:?}: no dx");
        let params = |g: &lstm_wgpu::cpu::Gradients<f32>| {
            let mut v = flat(g);
            v.truncate(v.len() - g.dx.data().len() - g.dh0.data().len() - g.dc0.data().len());
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        assert!(
            params(&got) == params(&want),
            "{shape:?} parameter gradients"
        );
        let out = kept.forward_with(&inputs).unwrap();
        let bits = |t: &Tensor| t.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(
            bits(&out.output) == bits(&want_out.output),
            "{shape:?} output"
        );
    }
}

#[test]
fn set_weights_takes_same_shaped_weights_only() {
    let config = LstmConfig::new(3, 5).num_layers(2);
    let mut model = FastCpuLstm::new(&LstmWeights::init(&config, 1).unwrap())
        .with_threads(2)
        .unwrap();
    let other = LstmWeights::init(&config, 2).unwrap();
    model.set_weights(&other).unwrap();
    assert_eq!(model.threads(), 2);
    let x = random_tensor(&[4, 2, 3], 3);
    let got = model.forward(&x, None, None).unwrap();
    let want = FastCpuLstm::new(&other).forward(&x, None, None).unwrap();
    assert_eq!(got.output.data(), want.output.data());

    let wider = LstmWeights::init(&LstmConfig::new(3, 6).num_layers(2), 1).unwrap();
    let err = model.set_weights(&wider).unwrap_err().to_string();
    assert!(err.contains("differ in shape"), "{err}");
    let with_head = other.with_head(Linear::init(5, 1, 0).unwrap()).unwrap();
    assert!(model.set_weights(&with_head).is_err());
}

/// The widths the fast path can run on here, widest first: the CPU's widest, then each
/// narrower one down to scalar (AVX-512's 16 lanes, AVX2's 8 and scalar on this x86-64).
fn simd_widths(weights: &LstmWeights) -> Vec<usize> {
    let mut widths = vec![FastCpuLstm::new(weights).simd_lanes()];
    for cap in [8, 4, 1] {
        let lanes = FastCpuLstm::new(weights)
            .with_simd_lanes(cap)
            .unwrap()
            .simd_lanes();
        if lanes < *widths.last().unwrap() {
            widths.push(lanes);
        }
    }
    widths
}

/// Every SIMD width gives bitwise the same forward outputs, loss and gradients (mse, and
/// cross-entropy through a head whose width is no multiple of 16), on one thread and on
/// three: the lane count changes how many units a vector holds, never the order of a sum.
#[test]
fn every_simd_width_gives_the_same_bits() {
    use lstm_wgpu::loss::{Loss, Target};
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    for (i, shape) in SHAPES.iter().enumerate() {
        let case = case(shape, 40 + i as u64, i % 2 == 1);
        let widths = simd_widths(&case.weights);
        assert!(widths.len() >= 2 || widths == [1], "widths {widths:?}");
        let inputs = Inputs::new(&case.x)
            .state(case.h0.as_ref(), case.c0.as_ref())
            .lengths(case.lengths.as_deref());
        let run = |lanes: usize, threads: usize| {
            let model = FastCpuLstm::new(&case.weights)
                .with_threads(threads)
                .unwrap()
                .with_simd_lanes(lanes)
                .unwrap();
            assert_eq!(model.simd_lanes(), lanes);
            let out = model.forward_with(&inputs).unwrap();
            let target = Target::Values(random_tensor(out.output.shape(), 7));
            let (loss, _, grads) = model.loss_gradients(&inputs, Loss::Mse, &target).unwrap();
            let mut all = out.output.data().to_vec();
            all.extend(out.h_n.data().iter().chain(out.c_n.data()));
            all.push(loss);
            all.extend(flat(&grads));
            bits(&all)
        };
        let want = run(widths[0], 1);
        for &lanes in &widths {
            for threads in [1, 3] {
                assert!(
                    run(lanes, threads) == want,
                    "{shape:?}: {lanes} lanes, {threads} threads vs {} lanes, 1 thread",
                    widths[0]
                );
            }
        }
    }
    // a language model's step: ids-free here, a 37-wide head and per-step classes
    let config = LstmConfig::new(5, 33).num_layers(2);
    let weights = LstmWeights::init(&config, 3)
        .unwrap()
        .with_head(Linear::init(33, 37, 4).unwrap())
        .unwrap();
    let (seq, batch) = (6, 700); // 4,200 rows of 37 logits: enough for a team of threads
    let x = random_tensor(&[seq, batch, 5], 5);
    let classes: Vec<i64> = (0..seq * batch).map(|r| (r * 13 % 37) as i64).collect();
    let target = Target::Classes(Tensor::new([seq, batch], classes).unwrap());
    let step = |lanes: usize, threads: usize| {
        let (loss, _, grads) = FastCpuLstm::new(&weights)
            .with_threads(threads)
            .unwrap()
            .with_simd_lanes(lanes)
            .unwrap()
            .loss_gradients(&Inputs::new(&x), Loss::CrossEntropy, &target)
            .unwrap();
        let mut all = vec![loss];
        all.extend(flat(&grads));
        bits(&all)
    };
    let widths = simd_widths(&weights);
    let want = step(widths[0], 1);
    for &lanes in &widths {
        for threads in [1, 2] {
            assert!(
                step(lanes, threads) == want,
                "{lanes} lanes, {threads} threads"
            );
        }
    }
}

#[test]
fn zero_simd_lanes_is_an_error() {
    let weights = LstmWeights::init(&LstmConfig::new(2, 3), 0).unwrap();
    let msg = FastCpuLstm::new(&weights)
        .with_simd_lanes(0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("simd lanes must be at least 1"), "{msg}");
}

#[test]
fn a_step_too_small_for_a_barrier_runs_on_one_thread() {
    use lstm_wgpu::cpu::SPLIT_STEP_MIN_MACS;
    use lstm_wgpu::Dims;
    let small = LstmWeights::init(&LstmConfig::new(1, 40), 1).unwrap();
    let big = LstmWeights::init(&LstmConfig::new(8, 64), 1).unwrap();
    let fast = |w: &LstmWeights| FastCpuLstm::new(w).with_threads(2).unwrap();
    let split = |w: &LstmWeights, batch| {
        let plan = fast(w).plan(
            0,
            Dims {
                seq_len: 100,
                batch,
            },
        );
        plan.groups.iter().map(|g| g.threads()).max().unwrap()
    };
    // 4 * 40 * 40 = 6,400 multiply-adds a step at B = 1; 4 * 64 * 64 = 16,384
    const { assert!(4 * 40 * 40 < SPLIT_STEP_MIN_MACS && 4 * 64 * 64 >= SPLIT_STEP_MIN_MACS) };
    assert_eq!(split(&small, 1), 1);
    // above the floor the measured meeting decides: split exactly when the step repays it
    for (weights, batch, macs) in [(&small, 4, 25_600), (&big, 1, 16_384)] {
        let plan = fast(weights).plan(
            0,
            Dims {
                seq_len: 100,
                batch,
            },
        );
        let from = plan.split_from.unwrap();
        assert!(from >= SPLIT_STEP_MIN_MACS);
        assert_eq!(plan.step_macs, macs);
        assert_eq!(
            split(weights, batch),
            if macs >= from { 2 } else { 1 },
            "{plan}"
        );
    }
    assert_eq!(fast(&small).threads(), 2, "the upper bound stays as set");
    // B = 2 at H = 24 (4,608 multiply-adds a step): rows in two independent recurrences,
    // no barrier
    let tiny = LstmWeights::init(&LstmConfig::new(1, 24), 1).unwrap();
    let plan = fast(&tiny).plan(
        0,
        Dims {
            seq_len: 100,
            batch: 2,
        },
    );
    assert_eq!(plan.groups.len(), 2);
    assert!(plan.to_string().contains("independent groups"), "{plan}");
}
