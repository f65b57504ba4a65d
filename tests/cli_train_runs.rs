//! `lstm-wgpu train` as a run that lasts: a byte-level language model from a text file with
//! truncated BPTT and validation, a real SIGINT / SIGTERM with the checkpoint written and the
//! run resumed to bitwise the weights of the run never stopped (both paths), and checkpoints
//! of another run or cut short refused with clear errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lstm_wgpu::io::safetensors;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
}

fn run(args: &[String]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn ok(args: &[String]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small text (varied enough to learn something) and a byte-level model for it.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let mut text = String::new();
    for i in 0..120 {
        text.push_str(&format!(
            "line {i}: the quick brown fox {} over the lazy dog {}.\n",
            ["jumps", "leaps", "hops"][i % 3],
            i * 7 % 13
        ));
    }
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, text).unwrap();
    let init = dir.join("init.safetensors");
    ok(&strings(&[
        "init",
        "--input-size",
        "8",
        "--hidden-size",
        "16",
        "--num-layers",
        "2",
        "--embedding",
        "256",
        "--head",
        "256",
        "--seed",
        "3",
        "--out",
        s(&init),
    ]));
    (corpus, init)
}

fn text_args(corpus: &Path, init: &Path, out: &Path, device: &str, extra: &[&str]) -> Vec<String> {
    let mut args = strings(&[
        "train",
        "--weights",
        s(init),
        "--text",
        s(corpus),
        "--streams",
        "4",
        "--bptt",
        "12",
        "--lr",
        "0.01",
        "--dropout",
        "0.1",
        "--lr-schedule",
        "step:1:0.7",
        "--warmup",
        "4",
        "--seed",
        "5",
        "--device",
        device,
        "--out",
        s(out),
    ]);
    args.extend(extra.iter().map(|e| e.to_string()));
    args
}

/// `args` with `flag`'s value replaced.
fn set(mut args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    let at = args.iter().position(|a| a == flag).unwrap();
    args[at + 1] = value.to_string();
    args
}

#[test]
fn a_language_model_trains_on_a_text_file_with_validation() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, init) = setup(dir.path());
    let (out, last, log, plot) = (
        dir.path().join("lm.safetensors"),
        dir.path().join("last.safetensors"),
        dir.path().join("log.csv"),
        dir.path().join("curves.png"),
    );
    let stdout = ok(&text_args(
        &corpus,
        &init,
        &out,
        "cpu",
        &[
            "--epochs",
            "3",
            "--val-fraction",
            "0.2",
            "--eval-every",
            "20",
            "--out-last",
            s(&last),
            "--log",
            s(&log),
            "--plot",
            s(&plot),
        ],
    ));
    assert!(stdout.contains("validation bits per byte"), "{stdout}");
    assert!(std::fs::read(&plot).unwrap().starts_with(b"\x89PNG"));
    // the log: the rate in use, and validation rows whose bits per byte are loss / ln 2
    let csv = std::fs::read_to_string(&log).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "step",
            "loss",
            "accuracy",
            "perplexity",
            "epoch",
            "lr",
            "val_loss",
            "val_accuracy",
            "val_perplexity",
            "val_bits_per_byte"
        ]
    );
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    // the bytes less the last 20 %, in 4 streams, each predicting all but its first byte
    let len = std::fs::metadata(&corpus).unwrap().len() as usize;
    let held = (len as f64 * 0.2).round() as usize;
    let per_stream = (len - held) / 4;
    let per_epoch = (per_stream - 1).div_ceil(12);
    assert_eq!(rows.len(), 3 * per_epoch);
    let lr = |r: &Vec<String>| r[5].parse::<f64>().unwrap();
    // warmup 4 (LinearLR from 1/4), then StepLR(1, 0.7) per epoch
    assert!((lr(&rows[0]) - 0.0025).abs() < 1e-12, "{}", rows[0][5]);
    assert!((lr(&rows[4]) - 0.01).abs() < 1e-12);
    assert!((lr(&rows[per_epoch]) - 0.007).abs() < 1e-12);
    let mut evals = Vec::new();
    for r in &rows {
        if !r[6].is_empty() {
            let (loss, bits): (f64, f64) = (r[6].parse().unwrap(), r[9].parse().unwrap());
            assert!((bits - loss / std::f64::consts::LN_2).abs() < 1e-5, "{r:?}");
            evals.push((r[0].parse::<usize>().unwrap(), loss));
        }
    }
    // every 20 steps and after the last
    let total = 3 * per_epoch;
    assert_eq!(
        evals.len(),
        total / 20 + usize::from(!total.is_multiple_of(20))
    );
    let first = rows[0][1].parse::<f64>().unwrap();
    assert!(
        evals[evals.len() - 1].1 < first,
        "validation improves on the first loss"
    );
    // --out holds the best evaluation's weights: the last ones when the last was best
    let best = evals.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
    let same = std::fs::read(&out).unwrap() == std::fs::read(&last).unwrap();
    assert_eq!(same, best == 3 * per_epoch, "best at step {best}");
}

#[test]
fn text_training_refuses_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, init) = setup(dir.path());
    let out = dir.path().join("lm.safetensors");
    let small = dir.path().join("small.safetensors");
    ok(&strings(&[
        "init",
        "--input-size",
        "4",
        "--hidden-size",
        "4",
        "--embedding",
        "10",
        "--head",
        "10",
        "--out",
        s(&small),
    ]));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            text_args(&corpus, &small, &out, "cpu", &[]),
            "embedding of 256 rows",
        ),
        (
            text_args(&corpus, &init, &out, "cpu", &["--batch-size", "2"]),
            "--batch-size shuffles",
        ),
        (
            text_args(&corpus, &init, &out, "cpu", &["--early-stop", "2"]),
            "--early-stop watches the validation loss",
        ),
        (
            set(
                text_args(&corpus, &init, &out, "cpu", &[]),
                "--lr-schedule",
                "step:0:1",
            ),
            "EVERY",
        ),
        (
            text_args(&corpus, &init, &out, "cpu", &["--val-fraction", "1.5"]),
            "(0, 1)",
        ),
    ];
    for (args, needle) in cases {
        let result = run(&args);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "nothing written");
    }
}

/// Starts `args`, waits until its checkpoint exists, sends `signal`, and returns the exit.
fn interrupt(args: &[String], checkpoint: &Path, signal: &str) -> Output {
    let child = bin()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !checkpoint.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint came"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // the shell's own kill: no procps needed
    let sent = Command::new("sh")
        .args(["-c", &format!("kill {signal} {}", child.id())])
        .status()
        .unwrap();
    assert!(sent.success());
    child.wait_with_output().unwrap()
}

fn check_interrupt_and_resume(device: &str, signal: &str, status: i32) {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, init) = setup(dir.path());
    let steps = if device == "cpu" { "400" } else { "150" };
    let extra = |ckpt: &Path| -> Vec<String> {
        strings(&[
            "--steps",
            steps,
            "--val-fraction",
            "0.2",
            "--eval-every",
            "25",
            "--checkpoint",
            s(ckpt),
            "--checkpoint-every",
            "1",
        ])
    };
    let with = |out: &Path, ckpt: &Path, more: &[&str]| -> Vec<String> {
        let mut args = text_args(&corpus, &init, out, device, &[]);
        args.extend(extra(ckpt));
        args.extend(strings(more));
        args
    };
    // the run never stopped
    let straight = dir.path().join("straight.safetensors");
    ok(&with(&straight, &dir.path().join("straight.ckpt"), &[]));

    // stopped by a signal in the middle, then the same command line with --resume
    let (out, ckpt) = (
        dir.path().join("out.safetensors"),
        dir.path().join("run.ckpt"),
    );
    let first = interrupt(&with(&out, &ckpt, &[]), &ckpt, signal);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(
        first.status.code(),
        Some(status),
        "{device} {signal}: {stderr}"
    );
    assert!(stderr.contains("interrupted after step"), "{stderr}");
    let stopped: u64 = stderr
        .split("interrupted after step ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(stopped < steps.parse().unwrap(), "stopped before the end");
    assert!(out.exists(), "--out written on the way out");
    let stdout = ok(&with(&out, &ckpt, &["--resume", s(&ckpt)]));
    assert!(
        stdout.contains(&format!(
            "trained {} steps",
            steps.parse::<u64>().unwrap() - stopped
        )),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&straight).unwrap(),
        "{device}: interrupted at step {stopped} and resumed, the weights are bitwise the \
         straight run's"
    );
}

#[test]
fn cpu_sigint_then_resume_is_bitwise_the_straight_run() {
    check_interrupt_and_resume("cpu", "-INT", 130);
}

#[test]
fn cpu_sigterm_then_resume_is_bitwise_the_straight_run() {
    check_interrupt_and_resume("cpu", "-TERM", 143);
}

#[test]
fn gpu_sigint_then_resume_is_bitwise_the_straight_run() {
    check_interrupt_and_resume("gpu", "-INT", 130);
}

#[test]
fn checkpoints_of_another_run_or_cut_short_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, init) = setup(dir.path());
    let (out, ckpt) = (
        dir.path().join("lm.safetensors"),
        dir.path().join("run.ckpt"),
    );
    let base = |more: &[&str]| {
        let mut args = text_args(
            &corpus,
            &init,
            &out,
            "cpu",
            &["--steps", "6", "--checkpoint", s(&ckpt)],
        );
        args.extend(strings(more));
        args
    };
    ok(&base(&[]));
    let saved = std::fs::read(&ckpt).unwrap();
    // another learning rate, another model
    let other = dir.path().join("other.safetensors");
    ok(&strings(&[
        "init",
        "--input-size",
        "8",
        "--hidden-size",
        "12",
        "--num-layers",
        "2",
        "--embedding",
        "256",
        "--head",
        "256",
        "--out",
        s(&other),
    ]));
    let mut other_model = base(&["--resume", s(&ckpt)]);
    let at = other_model.iter().position(|a| a == s(&init)).unwrap();
    other_model[at] = s(&other).to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            set(base(&["--resume", s(&ckpt)]), "--lr", "0.02"),
            "optimizer: the checkpoint's",
        ),
        (other_model, "hidden 16"),
        (set(base(&["--resume", s(&ckpt)]), "--bptt", "6"), "bptt"),
    ];
    for (args, needle) in cases {
        let result = run(&args);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{args:?}");
        assert!(
            stderr.contains("checkpoint is of another run") && stderr.contains(needle),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read(&ckpt).unwrap(),
            saved,
            "the checkpoint is left as it was"
        );
    }
    // cut short, or not a checkpoint at all
    let cut = dir.path().join("cut.ckpt");
    for len in [0, 7, 100, saved.len() / 2, saved.len() - 1] {
        std::fs::write(&cut, &saved[..len]).unwrap();
        let result = run(&base(&["--resume", s(&cut)]));
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{len}: {stderr}");
        assert!(
            stderr.contains("cut.ckpt") && !stderr.contains("panicked"),
            "{len}: {stderr}"
        );
    }
    let result = run(&base(&["--resume", s(&init)]));
    assert!(String::from_utf8_lossy(&result.stderr).contains("not a checkpoint"));
    // a resumed run that is already complete takes no steps
    let stdout = ok(&base(&["--resume", s(&ckpt)]));
    assert!(stdout.contains("trained 0 steps"), "{stdout}");
    let _ = safetensors::load(&out).unwrap();
}
