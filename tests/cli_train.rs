//! `lstm-wgpu train` as a user runs it: one SGD step with lr 1 moves every weight by exactly
//! minus its gradient (on both devices), minibatches are deterministic, logs and plots are
//! written, and bad input fails cleanly without touching the output.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{assert_close, random_tensor, to_f64, Tolerance};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::io::{npy, safetensors};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::ParamLayout;
use lstm_wgpu::Inputs;

/// `train` on `setup`'s model and input in `d`, with `target` (a file name in `d`, or a path),
/// writing `out`, plus `extra` flags.
fn train_args(d: &Path, target: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let target = if Path::new(target).is_absolute() {
        target.to_string()
    } else {
        s(&d.join(target)).to_string()
    };
    let mut args: Vec<String> = [
        "train",
        "--weights",
        s(&d.join("init.safetensors")),
        "--input",
        s(&d.join("x.npy")),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend([
        "--target".to_string(),
        target,
        "--out".to_string(),
        s(out).to_string(),
    ]);
    args.extend(extra.iter().map(|e| e.to_string()));
    args
}

fn lstm_wgpu<A: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[A]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok<A: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[A]) -> String {
    let out = lstm_wgpu(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A model with a head and a batch for it, written to `dir`.
fn setup(dir: &Path) {
    ok(&[
        "init",
        "--input-size",
        "3",
        "--hidden-size",
        "6",
        "--num-layers",
        "2",
        "--bidirectional",
        "--head",
        "2",
        "--seed",
        "4",
        "--out",
        s(&dir.join("init.safetensors")),
    ]);
    npy::write_f32(&dir.join("x.npy"), &random_tensor(&[5, 8, 3], 1)).unwrap();
    npy::write_f32(&dir.join("y.npy"), &random_tensor(&[5, 8, 2], 2)).unwrap();
}

#[test]
fn one_sgd_step_with_lr_1_subtracts_the_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let init = safetensors::load(&d.join("init.safetensors")).unwrap();
    let x = npy::read_f32(&d.join("x.npy")).unwrap();
    let y = Target::Values(npy::read_f32(&d.join("y.npy")).unwrap());
    let (_, _, grads) = CpuLstm::<f64>::new(&init)
        .loss_gradients(&Inputs::new(&to_f64(&x)), Loss::Mse, &y)
        .unwrap();
    let layout = ParamLayout::new(&init);
    let want: Vec<f64> = layout
        .flatten(&init)
        .iter()
        .zip(layout.flatten(&grads.to_weights(&init).unwrap()))
        .map(|(&w, g)| w as f64 - g as f64)
        .collect();
    for device in ["gpu", "cpu"] {
        let out = d.join(format!("one_{device}.safetensors"));
        ok(&train_args(
            d,
            "y.npy",
            &out,
            &[
                "--steps",
                "1",
                "--optimizer",
                "sgd",
                "--lr",
                "1",
                "--device",
                device,
            ],
        ));
        let trained = safetensors::load(&out).unwrap();
        assert_close(
            &format!("{device}: w - grad"),
            &layout.flatten(&trained),
            &want,
            Tolerance {
                abs: 2e-5,
                rel: 1e-4,
            },
        );
    }
}

#[test]
fn minibatches_logs_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let run = |name: &str| {
        let out = d.join(format!("{name}.safetensors"));
        let log = d.join(format!("{name}.csv"));
        let plot = d.join(format!("{name}.png"));
        let stdout = ok(&train_args(
            d,
            "y.npy",
            &out,
            &[
                "--epochs",
                "2",
                "--batch-size",
                "3",
                "--optimizer",
                "adamw",
                "--lr",
                "0.01",
                "--clip-norm",
                "1",
                "--seed",
                "7",
                "--log",
                s(&log),
                "--plot",
                s(&plot),
            ],
        ));
        assert!(stdout.contains("trained 6 steps"), "{stdout}"); // 2 epochs of ceil(8 / 3) minibatches
        let csv = std::fs::read_to_string(&log).unwrap();
        assert_eq!(csv.lines().count(), 7, "{csv}");
        assert!(csv.starts_with("step,loss,epoch,lr\n1,"), "{csv}");
        assert!(std::fs::read(&plot).unwrap().starts_with(b"\x89PNG"));
        std::fs::read(&out).unwrap()
    };
    assert_eq!(run("a"), run("b"), "same seed, same weights");
}

#[test]
fn cross_entropy_training_lowers_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&[
        "init",
        "--input-size",
        "2",
        "--hidden-size",
        "8",
        "--head",
        "3",
        "--out",
        s(&d.join("w.safetensors")),
    ]);
    let x = random_tensor(&[6, 4, 2], 3);
    // class = which input feature is larger, plus one when both are positive: learnable
    let classes: Vec<i64> = x
        .data()
        .chunks(2)
        .map(|p| (p[0] > p[1]) as i64 + (p[0] > 0.0 && p[1] > 0.0) as i64)
        .collect();
    npy::write_f32(&d.join("x.npy"), &x).unwrap();
    std::fs::write(d.join("c.npy"), common::npy_i64(&[6, 4], &classes)).unwrap();
    let log = d.join("ce.csv");
    let stdout = ok(&[
        "train",
        "--weights",
        s(&d.join("w.safetensors")),
        "--input",
        s(&d.join("x.npy")),
        "--target",
        s(&d.join("c.npy")),
        "--loss",
        "cross-entropy",
        "--out",
        s(&d.join("t.safetensors")),
        "--steps",
        "60",
        "--lr",
        "0.05",
        "--log",
        s(&log),
    ]);
    let losses = common::logged_losses(&log);
    assert!(
        losses[59] < 0.7 * losses[0],
        "{} -> {}",
        losses[0],
        losses[59]
    );
    // the log has each step's accuracy beside its loss: a count of the 24 rows right
    let csv = std::fs::read_to_string(&log).unwrap();
    assert!(csv.starts_with("step,loss,accuracy,epoch,lr\n"), "{csv}");
    let accuracy: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(accuracy.len(), 60);
    for a in &accuracy {
        let right = a * 24.0;
        assert!(
            (right - right.round()).abs() < 1e-4 && (0.0..=1.0).contains(a),
            "{a}"
        );
    }
    assert!(
        accuracy[59] > accuracy[0],
        "{} -> {}",
        accuracy[0],
        accuracy[59]
    );
    assert!(stdout.contains(", accuracy "), "{stdout}");
    let trained = stdout.lines().find(|l| l.starts_with("trained")).unwrap();
    assert!(!trained.contains("perplexity"), "a float model: {trained}");
}

#[test]
fn bad_training_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    npy::write_f32(&d.join("y_wrong.npy"), &random_tensor(&[5, 8, 3], 2)).unwrap();
    npy::write_f32(&d.join("y_short.npy"), &random_tensor(&[4, 8, 2], 2)).unwrap();
    let out = d.join("out.safetensors");
    let base = |target: &str| -> Vec<String> { train_args(d, target, &out, &["--steps", "2"]) };
    let y = s(&d.join("y.npy")).to_string();
    let with = |target: &str, extra: &[&str]| -> Vec<String> {
        let mut v = base(target);
        v.extend(extra.iter().map(|e| e.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (with(s(&d.join("y_wrong.npy")), &[]), "[5, 8, 2]"),
        (with(s(&d.join("y_short.npy")), &[]), "[T, B] = [5, 8]"),
        (with(&y, &["--loss", "cross-entropy"]), "int64"),
        (with(&y, &["--optimizer", "rmsprop"]), "rmsprop"),
        (with(&y, &["--lr", "0"]), "learning rate"),
        (with(&y, &["--lr", "-1"]), "learning rate"),
        (with(&y, &["--batch-size", "9"]), "--batch-size"),
        (with(s(&d.join("missing.npy")), &[]), "missing.npy"),
    ];
    for (args, needle) in &cases {
        std::fs::write(&out, b"previous").unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let result = lstm_wgpu(&args);
        let stderr = String::from_utf8_lossy(&result.stderr);
        let lines = common::error_lines(&stderr);
        assert!(!result.status.success(), "{args:?} should fail");
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with("error:") && lines[0].contains(needle),
            "{args:?}: {:?} should name {needle}",
            lines[0]
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            b"previous",
            "{args:?} touched the output"
        );
    }
}

#[test]
fn a_non_finite_loss_stops_training_and_keeps_the_last_good_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let out = d.join("out.safetensors");
    for device in ["gpu", "cpu"] {
        // lr 1e30: step 1's loss is finite, its update makes step 2's loss overflow
        let result = lstm_wgpu(&train_args(
            d,
            "y.npy",
            &out,
            &[
                "--steps",
                "5",
                "--optimizer",
                "sgd",
                "--lr",
                "1e30",
                "--device",
                device,
            ],
        ));
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success());
        assert!(
            stderr.contains("at step 2") && stderr.contains("weights of step 1"),
            "{device}: {stderr}"
        );
        // the weights step 2 was computed on gave a non-finite loss; those of step 1 did not:
        // step 1 was computed on the initial weights, so they are what --out holds
        assert_eq!(
            safetensors::load(&out).unwrap(),
            safetensors::load(&d.join("init.safetensors")).unwrap(),
            "{device}"
        );
    }
}

#[test]
fn bench_times_training_steps() {
    let out = lstm_wgpu(&[
        "bench",
        "--train",
        "--seq",
        "3",
        "--batch",
        "2",
        "--input",
        "2",
        "--hidden",
        "4",
        "--out-features",
        "2",
        "--optimizer",
        "sgd",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, device) in lines.iter().zip(["gpu", "cpu"]) {
        assert_eq!(line["device"], device);
        assert_eq!(line["train"], true);
        assert_eq!(line["out_features"], 2);
        assert_eq!(line["optimizer"], "sgd");
        let (ms, per_s) = (
            line["median_ms"].as_f64().unwrap(),
            line["steps_per_s"].as_f64().unwrap(),
        );
        assert!(ms > 0.0 && (ms * per_s - 1e3).abs() < 1e-6, "{line}");
        assert_eq!(line["task"], "step");
    }
    // sequence classification: cross-entropy on one class per sequence
    let out = ok(&[
        "bench",
        "--train",
        "--task",
        "sequence",
        "--seq",
        "3",
        "--batch",
        "3",
        "--input",
        "2",
        "--hidden",
        "4",
        "--out-features",
        "2",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--json",
    ]);
    for line in out.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["task"], "sequence", "{line}");
        assert!(line["median_ms"].as_f64().unwrap() > 0.0, "{line}");
    }
    // a language model: ids, embedding, dropout, cross-entropy over the vocabulary
    let out = ok(&[
        "bench",
        "--train",
        "--task",
        "lm",
        "--vocab",
        "17",
        "--dropout",
        "0.3",
        "--seq",
        "3",
        "--batch",
        "2",
        "--input",
        "4",
        "--hidden",
        "5",
        "--layers",
        "2",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--json",
    ]);
    for line in out.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["task"], "lm", "{line}");
        assert_eq!(line["vocab"], 17, "{line}");
        assert_eq!(line["out_features"], 17, "{line}");
        assert!(line["median_ms"].as_f64().unwrap() > 0.0, "{line}");
    }
    let out = lstm_wgpu(&[
        "bench",
        "--train",
        "--seq",
        "3",
        "--batch",
        "2",
        "--input",
        "2",
        "--hidden",
        "4",
        "--out-features",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out-features"));
}

/// `train --lengths` on a per-sequence cross-entropy target (a bidirectional classifier from
/// PyTorch, tests/fixtures/train_seq) gives PyTorch's losses and weights on both devices, and
/// minibatches gather the lengths and the [B] target along B.
#[test]
fn per_sequence_targets_with_lengths_match_pytorch() {
    let fixtures = Path::new("tests/fixtures/train_seq");
    let cases = common::fixture_cases(fixtures);
    let case = cases
        .iter()
        .find(|c| c["name"] == "seq_ce_bidir_lengths")
        .unwrap();
    let want_losses = common::case_losses(case);
    let file = |suffix: &str| fixtures.join(format!("seq_ce_bidir_lengths_{suffix}"));
    let dir = tempfile::tempdir().unwrap();
    let (init, x, y, lengths) = (
        file("init.safetensors"),
        file("x.npy"),
        file("y.npy"),
        file("lengths.npy"),
    );
    for device in ["cpu", "gpu"] {
        let (out, log) = (
            dir.path().join("out.safetensors"),
            dir.path().join("log.csv"),
        );
        let args = [
            "train",
            "--weights",
            s(&init),
            "--input",
            s(&x),
            "--target",
            s(&y),
            "--lengths",
            s(&lengths),
            "--loss",
            "cross-entropy",
            "--optimizer",
            "adam",
            "--lr",
            "0.02",
            "--steps",
            "3",
            "--device",
            device,
            "--out",
            s(&out),
            "--log",
            s(&log),
        ];
        ok(&args);
        let losses = common::logged_losses(&log);
        assert_close(
            &format!("{device} losses"),
            &losses,
            &want_losses,
            common::TRAINED_LOSS,
        );
        let (got, want) = common::flat_pair(
            &safetensors::load(&out).unwrap(),
            &safetensors::load(&file("final.safetensors")).unwrap(),
        );
        assert_close(
            &format!("{device} weights"),
            &got,
            &want,
            common::TRAINED_WEIGHTS,
        );

        // minibatches of 3 of the 4 sequences: lengths and [B] classes follow the rows
        let mut mini = args.map(str::to_string).to_vec();
        mini.extend(["--batch-size", "3"].map(str::to_string));
        ok(&mini);
    }
    // lengths that do not fit the batch: an error naming the file, nothing written
    let out = dir.path().join("bad.safetensors");
    let bad = dir.path().join("bad_lengths.npy");
    std::fs::write(&bad, common::npy_i64(&[3], &[1, 2, 3])).unwrap();
    let result = lstm_wgpu(&[
        "train",
        "--weights",
        s(&init),
        "--input",
        s(&x),
        "--target",
        s(&y),
        "--lengths",
        s(&bad),
        "--loss",
        "cross-entropy",
        "--out",
        s(&out),
    ]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("bad_lengths.npy") && stderr.contains("B = 4"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// A language model from the command line: `train` on int64 token ids (PyTorch's embedding +
/// LSTM + head, tests/fixtures/train_tok) gives PyTorch's losses and weights on both devices;
/// `init --embedding` writes a token model that `run` and `eval` take ids for; an id outside
/// the vocabulary fails naming it, and nothing is written.
#[test]
fn token_models_train_run_and_fail_cleanly() {
    let fixtures = Path::new("tests/fixtures/train_tok");
    let cases = common::fixture_cases(fixtures);
    let case = &cases[0];
    assert_eq!(case["name"], "lm_adam_lengths");
    let want_losses = common::case_losses(case);
    let file = |suffix: &str| fixtures.join(format!("lm_adam_lengths_{suffix}"));
    let (init, ids, y, lengths) = (
        file("init.safetensors"),
        file("ids.npy"),
        file("y.npy"),
        file("lengths.npy"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (
        dir.path().join("out.safetensors"),
        dir.path().join("log.csv"),
    );
    for device in ["cpu", "gpu"] {
        let stdout = ok(&[
            "train",
            "--weights",
            s(&init),
            "--input",
            s(&ids),
            "--target",
            s(&y),
            "--lengths",
            s(&lengths),
            "--loss",
            "cross-entropy",
            "--optimizer",
            "adam",
            "--lr",
            "0.02",
            "--steps",
            "3",
            "--device",
            device,
            "--out",
            s(&out),
            "--log",
            s(&log),
        ]);
        assert!(stdout.contains("perplexity"), "{stdout}");
        // a token model's log: perplexity = exp(loss) beside each step's accuracy
        let csv = std::fs::read_to_string(&log).unwrap();
        assert!(
            csv.starts_with("step,loss,accuracy,perplexity,epoch,lr\n"),
            "{csv}"
        );
        for line in csv.lines().skip(1) {
            let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
            assert!((v[3] - v[1].exp()).abs() <= 1e-5 * v[3], "{line}");
            assert!((0.0..=1.0).contains(&v[2]), "{line}");
        }
        let losses = common::logged_losses(&log);
        assert_close(
            &format!("{device} losses"),
            &losses,
            &want_losses,
            common::TRAINED_LOSS,
        );
        let (got, want) = common::flat_pair(
            &safetensors::load(&out).unwrap(),
            &safetensors::load(&file("final.safetensors")).unwrap(),
        );
        assert_close(
            &format!("{device} weights"),
            &got,
            &want,
            common::TRAINED_WEIGHTS,
        );
    }

    // init --embedding, then run and eval on ids
    let model = dir.path().join("lm.safetensors");
    ok(&[
        "init",
        "--input-size",
        "6",
        "--hidden-size",
        "5",
        "--head",
        "11",
        "--embedding",
        "11",
        "--out",
        s(&model),
    ]);
    let weights = safetensors::load(&model).unwrap();
    assert_eq!(weights.embedding().unwrap().weight.shape(), &[11, 6]);
    let y_out = dir.path().join("y.npy");
    ok(&[
        "run",
        "--weights",
        s(&model),
        "--input",
        s(&ids),
        "--output",
        s(&y_out),
        "--device",
        "cpu",
    ]);
    let got = npy::read_f32(&y_out).unwrap();
    let want = CpuLstm::<f64>::new(&weights)
        .forward_with(&Inputs::new(&to_f64(
            &weights
                .embedding()
                .unwrap()
                .lookup(&npy::read_i64(&ids).unwrap())
                .unwrap(),
        )))
        .unwrap();
    assert_close(
        "run on ids",
        got.data(),
        want.output.data(),
        common::GPU_VS_F64,
    );
    let stdout = ok(&[
        "eval",
        "--weights",
        s(&model),
        "--input",
        s(&ids),
        "--target",
        s(&y),
        "--loss",
        "cross-entropy",
        "--lengths",
        s(&lengths),
    ]);
    assert!(
        stdout.contains("accuracy") && stdout.contains("perplexity"),
        "{stdout}"
    );

    // an id outside 0..11: the error names it and its place; nothing is written
    let bad = dir.path().join("bad_ids.npy");
    let mut values = npy::read_i64(&ids).unwrap().data().to_vec();
    values[4] = 11;
    std::fs::write(&bad, common::npy_i64(&[7, 3], &values)).unwrap();
    let fresh = dir.path().join("never.safetensors");
    let result = lstm_wgpu(&[
        "train",
        "--weights",
        s(&init),
        "--input",
        s(&bad),
        "--target",
        s(&y),
        "--loss",
        "cross-entropy",
        "--out",
        s(&fresh),
    ]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("bad_ids.npy") && stderr.contains("token id 11 at position [1, 1]"),
        "{stderr}"
    );
    assert!(!fresh.exists());
    // a float input to a token model
    let result = lstm_wgpu(&[
        "run",
        "--weights",
        s(&init),
        "--input",
        "tests/fixtures/cli/packed_x.npy",
        "--output",
        s(&fresh),
    ]);
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("int64 token ids"));
}

/// `train --tie-weights` on PyTorch's tied language model gives PyTorch's losses, and the
/// written head and embedding are equal.
#[test]
fn tied_weights_from_the_command_line() {
    let fixtures = Path::new("tests/fixtures/train_tok");
    let cases = common::fixture_cases(fixtures);
    let case = cases.iter().find(|c| c["name"] == "lm_tied_adam").unwrap();
    let want = common::case_losses(case);
    let file = |suffix: &str| fixtures.join(format!("lm_tied_adam_{suffix}"));
    let (init, ids, y, lengths) = (
        file("init.safetensors"),
        file("ids.npy"),
        file("y.npy"),
        file("lengths.npy"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (
        dir.path().join("out.safetensors"),
        dir.path().join("log.csv"),
    );
    for device in ["cpu", "gpu"] {
        ok(&[
            "train",
            "--weights",
            s(&init),
            "--input",
            s(&ids),
            "--target",
            s(&y),
            "--lengths",
            s(&lengths),
            "--loss",
            "cross-entropy",
            "--optimizer",
            "adam",
            "--lr",
            "0.02",
            "--steps",
            "3",
            "--tie-weights",
            "--device",
            device,
            "--out",
            s(&out),
            "--log",
            s(&log),
        ]);
        let losses = common::logged_losses(&log);
        assert_close(
            &format!("{device} tied losses"),
            &losses,
            &want,
            common::TRAINED_LOSS,
        );
        let trained = safetensors::load(&out).unwrap();
        assert_eq!(
            trained.head().unwrap().weight,
            trained.embedding().unwrap().weight
        );
    }
}
