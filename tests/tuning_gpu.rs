//! Measured kernel choices on a real adapter (lavapipe in CI): tuning a shape saves choices
//! that run right (against the CPU reference in f64) and the same bits run after run; the
//! table policy reproduces the built-in choices bitwise; `Measure` tunes on first use; a
//! foreign wisdom file is ignored, or refused when loaded explicitly.

mod common;

use std::path::Path;

use common::{assert_close, random_tensor, to_f64, GPU_VS_F64};
use lstm_wgpu::check::GPU_GRADIENTS_VS_F64;
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::wisdom::search::Budget;
use lstm_wgpu::gpu::wisdom::{Choice, Family, ShapeClass, Source, Wisdom};
use lstm_wgpu::gpu::{
    tune_forward, tune_training, ContextOptions, GpuContext, GpuLstm, GpuTrainer, KernelChoice,
    Recurrence, RecurrentShape, Tuning,
};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::{OptimizerConfig, OptimizerKind, TrainOptions, Trainer};
use lstm_wgpu::{Dims, Inputs, LstmConfig, LstmWeights, Tensor};

const BUDGET: Budget = Budget {
    seconds: 3.0,
    runs: 2,
};

fn context(tuning: Tuning, file: &Path) -> GpuContext {
    common::gpu(); // fails with instructions when there is no adapter
    GpuContext::with_options(ContextOptions {
        webgpu_limits: false,
        tuning,
        wisdom_file: Some(file.to_path_buf()),
    })
    .unwrap()
}

fn forward_bits(ctx: &GpuContext, weights: &LstmWeights, x: &Tensor) -> (Vec<u32>, Source) {
    let mut model = GpuLstm::new(ctx, weights).unwrap();
    let out = model.forward_with(&Inputs::new(x)).unwrap();
    let bits = [&out.output, &out.h_n, &out.c_n]
        .iter()
        .flat_map(|t| t.data().iter().map(|v| v.to_bits()))
        .collect();
    (bits, model.kernel_source().unwrap())
}

fn as_f32(bits: &[u32]) -> Vec<f32> {
    bits.iter().map(|&b| f32::from_bits(b)).collect()
}

/// (config, T, B): one sequence-kernel shape, one per-step shape with a projection.
fn shapes() -> Vec<(LstmConfig, usize, usize)> {
    vec![
        (LstmConfig::new(5, 24), 9, 3),
        (
            LstmConfig::new(7, 160).proj_size(40).bidirectional(true),
            5,
            6,
        ),
    ]
}

#[test]
fn a_tuned_forward_is_right_and_the_same_bits_run_after_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wisdom.json");
    for (config, t, b) in shapes() {
        let dims = Dims {
            seq_len: t,
            batch: b,
        };
        let tuner = context(Tuning::Wisdom, &file);
        let report = tune_forward(&tuner, &config, dims, BUDGET).unwrap();
        assert_eq!(report.families.len(), 2);
        for f in &report.families {
            assert!(f.rejected().next().is_none(), "{:?}", f.verdicts);
            assert!(f.chosen.1.is_some(), "{:?} timed nothing", f.family);
        }
        tuner.save_wisdom().unwrap();

        let weights = LstmWeights::init(&config, 11).unwrap();
        let x = random_tensor(&[t, b, config.input_size], 12);
        let want = CpuLstm::<f64>::new(&weights)
            .forward_with(&Inputs::new(&to_f64(&x)))
            .unwrap();
        let want: Vec<f64> = [&want.output, &want.h_n, &want.c_n]
            .iter()
            .flat_map(|t| t.data().to_vec())
            .collect();
        // two processes' worth: fresh contexts reading the same file
        let (first, source) = forward_bits(&context(Tuning::Wisdom, &file), &weights, &x);
        let (second, _) = forward_bits(&context(Tuning::Wisdom, &file), &weights, &x);
        assert_eq!(source, Source::Wisdom);
        assert_eq!(first, second, "the same wisdom, the same bits");
        assert_close("tuned forward", &as_f32(&first), &want, GPU_VS_F64);

        // the recurrent kernel that ran is the saved one
        let shape = RecurrentShape {
            hidden: config.hidden_size,
            hidden_out: config.output_size(),
            batch: b,
        };
        let class = ShapeClass::of(shape, config.num_directions(), false);
        let saved = context(Tuning::Wisdom, &file).wisdom().unwrap();
        let entry = saved.get(Family::Recurrence, class).unwrap();
        let mut model = GpuLstm::new(&context(Tuning::Wisdom, &file), &weights).unwrap();
        model.forward_with(&Inputs::new(&x)).unwrap();
        assert_eq!(Choice::Recurrence(model.kernel().unwrap().0), entry.choice);

        // `Table` ignores the file and runs what the built-in table runs, bitwise
        let (table, source) = forward_bits(&context(Tuning::Table, &file), &weights, &x);
        assert_eq!(source, Source::Table);
        let mut forced = GpuLstm::new(common::gpu(), &weights).unwrap();
        let chosen = Recurrence::choose(shape, &common::gpu().caps());
        forced.set_kernel(KernelChoice::Exact(chosen));
        let out = forced.forward_with(&Inputs::new(&x)).unwrap();
        let today: Vec<u32> = [&out.output, &out.h_n, &out.c_n]
            .iter()
            .flat_map(|t| t.data().iter().map(|v| v.to_bits()))
            .collect();
        assert_eq!(table, today, "Table reproduces the built-in choice bitwise");
    }
}

#[test]
fn a_tuned_training_step_has_the_reference_gradients_run_after_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wisdom.json");
    let config = LstmConfig::new(3, 20).num_layers(2);
    let (t, b) = (6, 5);
    let tuner = context(Tuning::Wisdom, &file);
    let report = tune_training(
        &tuner,
        &config,
        Dims {
            seq_len: t,
            batch: b,
        },
        BUDGET,
    )
    .unwrap();
    let families: Vec<Family> = report.families.iter().map(|f| f.family).collect();
    assert_eq!(
        families,
        [
            Family::Recurrence,
            Family::Gemv,
            Family::Backward,
            Family::KSplit
        ]
    );
    for f in &report.families {
        assert!(f.rejected().next().is_none(), "{:?}", f.verdicts);
    }
    tuner.save_wisdom().unwrap();

    let weights = LstmWeights::init(&config, 21).unwrap();
    let x = random_tensor(&[t, b, 3], 22);
    let target = Target::Values(random_tensor(&[t, b, 20], 23));
    let (_, _, want) = CpuLstm::<f64>::new(&weights)
        .loss_gradients(&Inputs::new(&to_f64(&x)), Loss::Mse, &target)
        .unwrap();
    let want = want.to_weights(&weights).unwrap();
    let flat = |w: &LstmWeights| -> Vec<f32> {
        w.named_tensors()
            .into_iter()
            .flat_map(|(_, t)| t.data().to_vec())
            .collect()
    };
    let want: Vec<f64> = flat(&want).into_iter().map(f64::from).collect();
    let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Sgd, 0.1));
    let run = || {
        let ctx = context(Tuning::Wisdom, &file);
        let mut trainer = GpuTrainer::new(&ctx, &weights, options).unwrap();
        let grads = trainer.gradients(&Inputs::new(&x), &target).unwrap();
        let loss = trainer.step(&x, &target).unwrap();
        assert_eq!(trainer.kernel_source().unwrap(), Source::Wisdom);
        (flat(&grads.grads), loss.to_bits())
    };
    let (first, loss_a) = run();
    let (second, loss_b) = run();
    assert_eq!(
        first.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        second.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "the same wisdom, the same gradient bits"
    );
    assert_eq!(loss_a, loss_b);
    assert_close("tuned gradients", &first, &want, GPU_GRADIENTS_VS_F64);
}

#[test]
fn measure_tunes_a_new_shape_on_first_use_and_saves_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cache/wisdom.json");
    let ctx = context(Tuning::Measure, &file);
    let config = LstmConfig::new(4, 12);
    let weights = LstmWeights::init(&config, 31).unwrap();
    let x = random_tensor(&[4, 2, 4], 32);
    let (bits, source) = forward_bits(&ctx, &weights, &x);
    assert_eq!(source, Source::Wisdom, "measured before the first run");
    let saved =
        Wisdom::decode(&std::fs::read(&file).unwrap(), &ctx.adapter_key().unwrap()).unwrap();
    let families: Vec<Family> = saved.entries().map(|(f, _, _)| f).collect();
    assert_eq!(families, [Family::Recurrence, Family::Gemv]);
    // a second model of the shape uses the saved choice without measuring again
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let (again, _) = forward_bits(&ctx, &weights, &x);
    assert_eq!(again, bits);
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn another_adapters_wisdom_is_ignored_at_start_and_refused_when_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wisdom.json");
    let mut other = common::gpu().adapter_key().unwrap();
    other.name = "Some Other GPU".into();
    let mut wisdom = Wisdom::new(other);
    let shape = RecurrentShape {
        hidden: 24,
        hidden_out: 24,
        batch: 3,
    };
    let choice = Choice::Recurrence(Recurrence::per_step_for(shape, &common::gpu().caps()));
    wisdom.insert(
        Family::Recurrence,
        ShapeClass::of(shape, 1, false),
        lstm_wgpu::gpu::wisdom::Entry {
            choice,
            table: choice,
            table_ms: Some(1.0),
            tuned_ms: 1.0,
        },
    );
    std::fs::write(&file, wisdom.encode()).unwrap();
    let ctx = context(Tuning::Wisdom, &file);
    assert!(ctx.wisdom().is_none(), "ignored (with a warning)");
    let weights = LstmWeights::init(&LstmConfig::new(5, 24), 41).unwrap();
    let x = random_tensor(&[9, 3, 5], 42);
    let (_, source) = forward_bits(&ctx, &weights, &x);
    assert_eq!(source, Source::Table);
    let msg = ctx.load_wisdom(&file).unwrap_err().to_string();
    assert!(msg.contains("Some Other GPU"), "{msg}");
    let msg = ctx.use_wisdom(wisdom).unwrap_err().to_string();
    assert!(msg.contains("Some Other GPU"), "{msg}");
    // a corrupt file: ignored, and the table runs
    std::fs::write(&file, b"{\"format\": ").unwrap();
    let (_, source) = forward_bits(&context(Tuning::Wisdom, &file), &weights, &x);
    assert_eq!(source, Source::Table);
}
