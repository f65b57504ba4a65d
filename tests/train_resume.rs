//! Runs that stop and go on (`lstm_wgpu::train::job`): interrupted mid-epoch, checkpointed
//! through the file format, resumed on a fresh trainer, they end with bitwise the weights
//! and history of the same run never stopped, on both paths, with dropout, shuffling, the
//! carried BPTT state, a schedule, warmup and validation in play. And early stopping and
//! best-weight selection on a validation sequence made to order; bad checkpoints.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use common::gpu;
use lstm_wgpu::gpu::GpuTrainer;
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::batches::{Batches, DataInput, Minibatches, SequenceData, TokenWindows};
use lstm_wgpu::train::checkpoint;
use lstm_wgpu::train::job::{Checkpoint, Ended, EvalRecord, Hooks, Job, JobOptions, JobState};
use lstm_wgpu::train::schedule::{LrSchedule, Schedule};
use lstm_wgpu::train::validation::Validation;
use lstm_wgpu::train::{
    CpuTrainer, Dropout, Inference, OptimizerConfig, OptimizerKind, StepLoss, TrainOptions,
    Trainer, TrainerSnapshot,
};
use lstm_wgpu::{Embedding, Inputs, Linear, LstmConfig, LstmOutput, LstmWeights, Tensor};

/// A run's setting: a model, options, data and the job's options.
struct Case {
    weights: LstmWeights,
    options: TrainOptions,
    batches: Box<dyn Batches>,
    validation: Option<Validation>,
    job: JobOptions,
    schedule: LrSchedule,
}

fn dropout(seed: u64) -> Dropout {
    Dropout {
        input: 0.1,
        between: 0.2,
        output: 0.1,
        seed,
    }
}

/// A 2-layer language model of 11 tokens over 3 streams in windows of 4 (the last shorter),
/// the state carried, dropout, Adam with warmup and a per-epoch StepLR, validation streams.
fn language_model() -> Case {
    let mut config = LstmConfig::new(5, 6);
    config.num_layers = 2;
    let weights = LstmWeights::init(&config, 3)
        .unwrap()
        .with_head(Linear::init(6, 11, 4).unwrap())
        .unwrap()
        .with_embedding(Embedding::init(11, 5, 5).unwrap())
        .unwrap();
    let stream = |n: usize, b: usize, seed: i64| {
        let data = (0..(n * b) as i64)
            .map(|i| (i * 7 + seed * 3 + i / 5) % 11)
            .collect();
        Tensor::new([n, b], data).unwrap()
    };
    let mut options = TrainOptions::new(
        Loss::CrossEntropy,
        OptimizerConfig::new(OptimizerKind::Adam, 0.02),
    );
    options.dropout = dropout(9);
    options.carry_state = true;
    options.clip_norm = Some(1.0);
    Case {
        weights,
        options,
        batches: Box::new(TokenWindows::new(stream(15, 3, 1), 4).unwrap()),
        validation: Some(Validation::Streams {
            tokens: stream(9, 3, 2),
            window: 4,
        }),
        job: JobOptions {
            steps: 11, // 4 windows an epoch: ends in the middle of the third
            eval_every: Some(3),
            early_stop: None,
            checkpoint_every: Some(2),
        },
        schedule: LrSchedule::new(
            0.02,
            Schedule::Step {
                every: 1,
                gamma: 0.7,
            },
            3,
        )
        .unwrap(),
    }
}

/// A bidirectional classifier of 10 sequences in shuffled minibatches of 4 with lengths,
/// dropout, SGD with momentum and a cosine schedule, validated each epoch.
fn classifier() -> Case {
    let mut config = LstmConfig::new(3, 5);
    config.bidirectional = true;
    config.num_layers = 2;
    let weights = LstmWeights::init(&config, 7)
        .unwrap()
        .with_head(Linear::init(10, 4, 8).unwrap())
        .unwrap();
    let sequences = |b: usize, seed: usize| {
        let x = (0..6 * b * 3)
            .map(|i| (((i * 37 + seed * 11) % 23) as f32 / 23.0) - 0.5)
            .collect();
        let classes = (0..b).map(|i| ((i * 3 + seed) % 4) as i64).collect();
        let lengths = (0..b).map(|i| 3 + (i + seed) % 4).collect();
        SequenceData::new(
            DataInput::Values(Tensor::new([6, b, 3], x).unwrap()),
            Target::Classes(Tensor::new([b], classes).unwrap()),
            Some(lengths),
        )
        .unwrap()
    };
    let mut options = TrainOptions::new(
        Loss::CrossEntropy,
        OptimizerConfig {
            momentum: 0.9,
            ..OptimizerConfig::new(OptimizerKind::Sgd, 0.1)
        },
    );
    options.dropout = Dropout {
        input: 0.1,
        between: 0.2,
        output: 0.0, // a per-sequence target reads the final state, not the output
        seed: 4,
    };
    Case {
        weights,
        options,
        batches: Box::new(Minibatches::new(sequences(10, 0), 4, Some(6)).unwrap()),
        validation: Some(Validation::Sequences(sequences(5, 1))),
        job: JobOptions {
            steps: 14, // 3 minibatches an epoch
            eval_every: None,
            early_stop: None,
            checkpoint_every: None,
        },
        schedule: LrSchedule::new(
            0.1,
            Schedule::Cosine {
                t_max: 3,
                eta_min: 0.01,
            },
            2,
        )
        .unwrap(),
    }
}

fn trainer(device: &str, case: &Case) -> Box<dyn Trainer> {
    match device {
        "cpu" => Box::new(
            CpuTrainer::new(&case.weights, case.options)
                .unwrap()
                .with_threads(2)
                .unwrap(),
        ),
        _ => Box::new(GpuTrainer::new(gpu(), &case.weights, case.options).unwrap()),
    }
}

fn job(case: &Case) -> Job<'_> {
    let identity = BTreeMap::from([("case".to_string(), "test".to_string())]);
    Job::new(
        case.job,
        case.schedule.clone(),
        (case.batches.as_ref(), case.validation.as_ref()),
        case.options.loss,
        identity,
    )
    .unwrap()
}

/// Keeps every checkpoint (through the file format) and interrupts before step `stop + 1`.
struct Interrupt {
    stop: Option<u64>,
    taken: u64,
    saved: Vec<Checkpoint>,
}

impl Hooks for Interrupt {
    fn stepped(&mut self, record: &lstm_wgpu::train::job::StepRecord) {
        self.taken = record.step;
    }
    fn wants_checkpoints(&self) -> bool {
        true
    }
    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> lstm_wgpu::Result<()> {
        let bytes = checkpoint::encode(checkpoint)?;
        let read = checkpoint::decode(Path::new("ckpt"), &bytes)?;
        assert_eq!(
            read.identity, checkpoint.identity,
            "the file keeps the identity"
        );
        assert_eq!(
            read.trainer, checkpoint.trainer,
            "the file keeps the trainer"
        );
        assert_eq!(
            read.job.history, checkpoint.job.history,
            "the file keeps the history"
        );
        assert_eq!(
            read.job.evals, checkpoint.job.evals,
            "the file keeps the evaluations"
        );
        assert_eq!(
            read.job.schedule, checkpoint.job.schedule,
            "the file keeps the schedule"
        );
        assert_eq!(
            read.job.best, checkpoint.job.best,
            "the file keeps the best"
        );
        assert_eq!(&read, checkpoint, "the file format keeps everything");
        self.saved.push(read);
        Ok(())
    }
    fn interrupted(&mut self) -> bool {
        // the GPU reports a step's loss one step late: count submitted steps by the last
        // checkpoint or report, whichever is further
        self.stop.is_some_and(|s| self.taken >= s)
    }
}

/// The run never stopped: its final weights and state.
fn straight(device: &str, case: &Case) -> (LstmWeights, JobState) {
    let mut t = trainer(device, case);
    let mut j = job(case);
    let mut hooks = Interrupt {
        stop: None,
        taken: 0,
        saved: Vec::new(),
    };
    assert_eq!(j.run(t.as_mut(), &mut hooks).unwrap(), Ended::Finished);
    (t.weights().unwrap(), j.state().clone())
}

fn interrupted_then_resumed(device: &str, case: &Case, stop: u64) -> (LstmWeights, JobState) {
    let mut first = trainer(device, case);
    let mut j = job(case);
    let mut hooks = Interrupt {
        stop: Some(stop),
        taken: 0,
        saved: Vec::new(),
    };
    assert_eq!(
        j.run(first.as_mut(), &mut hooks).unwrap(),
        Ended::Interrupted
    );
    let saved = hooks.saved.pop().unwrap();
    let per_epoch = case.batches.per_epoch() as u64;
    assert!(saved.job.step < case.job.steps, "stopped before the end");
    assert_ne!(
        saved.job.step % per_epoch,
        0,
        "stopped in the middle of an epoch"
    );
    drop(first);
    // a fresh trainer and job, from the checkpoint
    let mut second = trainer(device, case);
    let mut j = job(case);
    j.resume(second.as_mut(), &saved).unwrap();
    let mut hooks = Interrupt {
        stop: None,
        taken: 0,
        saved: Vec::new(),
    };
    assert_eq!(j.run(second.as_mut(), &mut hooks).unwrap(), Ended::Finished);
    (second.weights().unwrap(), j.state().clone())
}

fn check_resume(device: &str, case: &Case, stop: u64) {
    let (want, want_state) = straight(device, case);
    let (got, got_state) = interrupted_then_resumed(device, case, stop);
    assert_eq!(
        got, want,
        "{device}: the resumed run's weights are bitwise the straight run's"
    );
    assert_eq!(
        got_state, want_state,
        "{device}: and so are its history, evaluations, best"
    );
    // the run did something that a resume could get wrong
    assert!(want_state.evals.len() >= 3, "{device}: evaluations");
    let lrs: Vec<f64> = want_state.history.iter().map(|r| r.lr).collect();
    assert!(
        lrs.windows(2).any(|w| w[0] != w[1]),
        "{device}: the rate changes"
    );
}

#[test]
fn cpu_language_model_resumes_bitwise() {
    check_resume("cpu", &language_model(), 6);
}

#[test]
fn gpu_language_model_resumes_bitwise() {
    check_resume("gpu", &language_model(), 6);
}

#[test]
fn cpu_classifier_resumes_bitwise() {
    check_resume("cpu", &classifier(), 4);
}

#[test]
fn gpu_classifier_resumes_bitwise() {
    check_resume("gpu", &classifier(), 4);
}

/// The carried state matters to the resume: restoring a checkpoint without it (from zeros)
/// gives other weights, so the test above would catch a lost state.
#[test]
fn a_resume_without_the_carried_state_differs() {
    let case = language_model();
    let (want, _) = straight("cpu", &case);
    let mut first = trainer("cpu", &case);
    let mut j = job(&case);
    let mut hooks = Interrupt {
        stop: Some(6),
        taken: 0,
        saved: Vec::new(),
    };
    j.run(first.as_mut(), &mut hooks).unwrap();
    let mut saved = hooks.saved.pop().unwrap();
    assert!(saved.trainer.carried.is_some());
    saved.trainer.carried = None;
    let mut second = trainer("cpu", &case);
    let mut j = job(&case);
    j.resume(second.as_mut(), &saved).unwrap();
    j.run(
        second.as_mut(),
        &mut Interrupt {
            stop: None,
            taken: 0,
            saved: Vec::new(),
        },
    )
    .unwrap();
    assert_ne!(second.weights().unwrap(), want);
}

#[test]
fn a_checkpoint_of_another_run_is_refused_naming_the_difference() {
    let case = language_model();
    let mut t = trainer("cpu", &case);
    let mut j = job(&case);
    let saved = j.checkpoint(t.as_mut()).unwrap();
    // another model: more parameters
    let mut other = saved.clone();
    other.identity.insert("case".into(), "another".into());
    let error = j.resume(t.as_mut(), &other).unwrap_err().to_string();
    assert!(
        error.contains("case: the checkpoint's another, this run's test"),
        "{error}"
    );
    // the same identity but another size of model
    let mut other = saved.clone();
    other.trainer.params.push(0.0);
    let error = j.resume(t.as_mut(), &other).unwrap_err().to_string();
    assert!(error.contains("parameters"), "{error}");
    // other data
    let other_case = classifier();
    let other_job = job(&other_case);
    let mut j2 = job(&case);
    let other_saved = {
        let mut t2 = trainer("cpu", &other_case);
        let mut j3 = other_job;
        j3.checkpoint(t2.as_mut()).unwrap()
    };
    let error = j2.resume(t.as_mut(), &other_saved).unwrap_err().to_string();
    assert!(error.contains("data:"), "{error}");
}

#[test]
fn truncated_or_corrupt_checkpoints_are_errors_not_panics() {
    let case = language_model();
    let mut t = trainer("cpu", &case);
    let mut j = job(&case);
    let mut hooks = Interrupt {
        stop: Some(5),
        taken: 0,
        saved: Vec::new(),
    };
    j.run(t.as_mut(), &mut hooks).unwrap();
    let bytes = checkpoint::encode(hooks.saved.last().unwrap()).unwrap();
    let path = Path::new("ckpt.safetensors");
    for cut in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
        let error = checkpoint::decode(path, &bytes[..cut])
            .unwrap_err()
            .to_string();
        assert!(error.contains("ckpt.safetensors"), "cut at {cut}: {error}");
    }
    // a flipped byte in the header
    let mut flipped = bytes.clone();
    flipped[12] ^= 0x55;
    assert!(checkpoint::decode(path, &flipped).is_err());
    // a model file is not a checkpoint
    let model = lstm_wgpu::io::safetensors::encode(&case.weights).unwrap();
    let error = checkpoint::decode(path, &model).unwrap_err().to_string();
    assert!(error.contains("not a checkpoint"), "{error}");
}

/// A trainer whose validation loss is scripted: its model outputs the next value of `script`
/// everywhere (MSE against 0: the loss is its square), its weights' head bias is the step.
struct Scripted {
    weights: LstmWeights,
    step: u64,
    script: Rc<RefCell<Vec<f32>>>,
    lrs: Rc<RefCell<Vec<f32>>>,
}

impl Trainer for Scripted {
    fn submit_with(&mut self, _: &Inputs<'_>, _: &Target) -> lstm_wgpu::Result<Vec<StepLoss>> {
        self.step += 1;
        Ok(vec![StepLoss {
            step: self.step,
            loss: 1.0,
            accuracy: None,
        }])
    }
    fn submit_ids(
        &mut self,
        _: &Tensor<i64>,
        _: Option<&[usize]>,
        _: &Target,
    ) -> lstm_wgpu::Result<Vec<StepLoss>> {
        unreachable!()
    }
    fn flush(&mut self) -> lstm_wgpu::Result<Vec<StepLoss>> {
        Ok(Vec::new())
    }
    fn weights(&self) -> lstm_wgpu::Result<LstmWeights> {
        let head = self.weights.head().unwrap();
        let bias = Tensor::full([1], self.step as f32);
        self.weights
            .clone()
            .with_head(Linear::new(head.weight.clone(), Some(bias))?)
    }
    fn reset_state(&mut self) {}
    fn restore_last_good(&mut self, _: u64) -> lstm_wgpu::Result<()> {
        Ok(())
    }
    fn set_lr(&mut self, lr: f32) -> lstm_wgpu::Result<()> {
        self.lrs.borrow_mut().push(lr);
        Ok(())
    }
    fn snapshot(&mut self) -> lstm_wgpu::Result<TrainerSnapshot> {
        unreachable!()
    }
    fn restore(&mut self, _: &TrainerSnapshot) -> lstm_wgpu::Result<()> {
        unreachable!()
    }
    fn inference(&mut self) -> lstm_wgpu::Result<Box<dyn Inference>> {
        let value = self.script.borrow_mut().remove(0);
        Ok(Box::new(Constant(value)))
    }
}

struct Constant(f32);

impl Inference for Constant {
    fn forward_with(&mut self, inputs: &Inputs<'_>) -> lstm_wgpu::Result<LstmOutput> {
        let shape = inputs.x.shape();
        Ok(LstmOutput {
            output: Tensor::full([shape[0], shape[1], 1], self.0),
            h_n: Tensor::full([1, shape[1], 2], 0.0),
            c_n: Tensor::full([1, shape[1], 2], 0.0),
        })
    }
}

fn scripted(
    script: &[f32],
    options: JobOptions,
    schedule: LrSchedule,
) -> (Vec<EvalRecord>, JobState, Ended, Vec<f32>) {
    let weights = LstmWeights::init(&LstmConfig::new(1, 2), 0)
        .unwrap()
        .with_head(Linear::init(2, 1, 0).unwrap())
        .unwrap();
    let data = SequenceData::new(
        DataInput::Values(Tensor::full([3, 2, 1], 0.0)),
        Target::Values(Tensor::full([3, 2, 1], 0.0)),
        None,
    )
    .unwrap();
    let batches = Minibatches::new(data.clone(), 2, None).unwrap();
    let validation = Validation::Sequences(data);
    let lrs = Rc::new(RefCell::new(Vec::new()));
    let mut trainer = Scripted {
        weights,
        step: 0,
        script: Rc::new(RefCell::new(script.to_vec())),
        lrs: lrs.clone(),
    };
    let mut job = Job::new(
        options,
        schedule,
        (&batches, Some(&validation)),
        Loss::Mse,
        BTreeMap::new(),
    )
    .unwrap();
    struct Seen(Vec<EvalRecord>);
    impl Hooks for Seen {
        fn evaluated(&mut self, record: &EvalRecord, _: bool) {
            self.0.push(*record);
        }
    }
    let mut seen = Seen(Vec::new());
    let ended = job.run(&mut trainer, &mut seen).unwrap();
    let lrs = lrs.borrow().clone();
    (seen.0, job.state().clone(), ended, lrs)
}

/// Validation losses 25, 9, 16, 4, 6.25, 4.41, 5.29, ... (the squares of the script): with
/// patience 3 the run stops after the 7th evaluation, the best being the 4th (step 4).
#[test]
fn early_stopping_keeps_the_best_evaluation_and_stops_after_patience() {
    let script = [5.0, 3.0, 4.0, 2.0, 2.5, 2.1, 2.3, 1.0, 1.0];
    let options = JobOptions {
        steps: 9,
        eval_every: None, // one step an epoch: every step
        early_stop: Some(3),
        checkpoint_every: None,
    };
    let schedule = LrSchedule::new(0.1, Schedule::Constant, 0).unwrap();
    let (evals, state, ended, _) = scripted(&script, options, schedule);
    assert_eq!(ended, Ended::EarlyStopped);
    assert_eq!(evals.len(), 7);
    assert_eq!(state.step, 7);
    let (best, weights) = state.best.unwrap();
    assert_eq!(best.step, 4);
    assert_eq!(best.metrics.loss, 4.0);
    // the best weights are those after step 4 (the scripted trainer's bias is its step)
    assert_eq!(
        weights.head().unwrap().bias.as_ref().unwrap().data(),
        &[4.0]
    );
    assert_eq!(state.evals_since_best, 3);
}

/// ReduceLROnPlateau(factor 0.5, patience 1) on the same losses: the rate halves after the
/// second evaluation in a row without improvement (the 3rd is worse than the 2nd: one bad;
/// the 5th and 6th are worse than the 4th: two bad, so the 7th step runs at half the rate).
#[test]
fn a_plateau_schedule_follows_the_validation_losses() {
    let script = [5.0, 3.0, 4.0, 2.0, 2.5, 2.1, 2.3, 1.0, 1.0];
    let options = JobOptions {
        steps: 8,
        eval_every: None,
        early_stop: None,
        checkpoint_every: None,
    };
    let schedule = LrSchedule::new(
        0.1,
        Schedule::Plateau {
            factor: 0.5,
            patience: 1,
        },
        0,
    )
    .unwrap();
    let (_, _, ended, lrs) = scripted(&script, options, schedule);
    assert_eq!(ended, Ended::Finished);
    // losses 25 9 16 4 6.25 4.41 5.29: bad counts 0 0 1 0 1 2→reduce(0) 1
    assert_eq!(lrs, [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05]);
}
