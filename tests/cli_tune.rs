//! `lstm-wgpu tune` end to end on a real adapter (lavapipe in CI): the table it prints, the
//! wisdom file it saves (which `info` counts and `bench` then runs), two processes tuning into
//! one file at once, and bad input refused with one error line and nothing lost.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use lstm_wgpu::gpu::wisdom::Wisdom;

fn lstm_wgpu(args: &[&str], wisdom: &Path) -> Output {
    common::gpu(); // fails with instructions when there is no adapter
    Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(args)
        .env("LSTM_WGPU_TUNE_FILE", wisdom)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SHAPE: &[&str] = &[
    "--seq", "6", "--batch", "2", "--input", "3", "--hidden", "20",
];

#[test]
fn tune_saves_wisdom_that_info_counts_and_bench_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wisdom.json");
    let mut args = vec!["tune", "--budget-s", "2", "--runs", "2"];
    args.extend(SHAPE);
    let out = lstm_wgpu(&args, &file);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("table choice"), "{stdout}");
    for family in ["recurrence", "gemv"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("T=6 B=2 I=3 H=20 fwd") && l.contains(family)),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("saved: {}", file.display())),
        "{stdout}"
    );
    let wisdom = Wisdom::decode_any(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(wisdom.len(), 2);

    let info = text(&lstm_wgpu(&["info"], &file)).0;
    assert!(
        info.contains(&format!(
            "wisdom: {} (2 choices for 1 shape classes",
            file.display()
        )),
        "{info}"
    );
    let mut bench = vec!["bench", "--device", "gpu", "--iters", "1", "--warmup", "0"];
    bench.extend(SHAPE);
    let stdout = text(&lstm_wgpu(&bench, &file)).0;
    assert!(stdout.contains("(from the wisdom)"), "{stdout}");
    // no file: the table
    let stdout = text(&lstm_wgpu(&bench, &dir.path().join("none.json"))).0;
    assert!(stdout.contains("(from the table)"), "{stdout}");
}

#[test]
fn two_processes_tuning_into_one_file_leave_a_valid_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wisdom.json");
    common::gpu();
    let spawn = |hidden: &str| {
        Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .args([
                "tune", "--seq", "4", "--batch", "1", "--input", "2", "--hidden", hidden,
            ])
            .args(["--budget-s", "1", "--runs", "1", "--out"])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("8"), spawn("40"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let wisdom = Wisdom::decode_any(&std::fs::read(&file).unwrap()).unwrap();
    // each save merges with what the file holds then: the last one's entries are all there
    assert!(wisdom.len() >= 2, "{} entries", wisdom.len());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left");
}

#[test]
fn bad_input_is_one_error_line_and_another_adapters_file_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wisdom.json");
    let mut args = vec!["tune", "--budget-s=-1"];
    args.extend(SHAPE);
    let (_, stderr) = text(&lstm_wgpu(&args, &file));
    assert!(
        common::error_lines(&stderr)[0].contains("--budget-s"),
        "{stderr}"
    );
    let missing = dir.path().join("shapes.txt");
    let out = lstm_wgpu(&["tune", "--shapes", missing.to_str().unwrap()], &file);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("shapes.txt"), "{}", text(&out).1);
    assert!(!file.exists(), "nothing written");

    // another adapter's wisdom at --out: refused, kept byte for byte
    let mut other = common::gpu().adapter_key().unwrap();
    other.name = "Some Other GPU".into();
    let foreign = Wisdom::new(other).encode();
    std::fs::write(&file, &foreign).unwrap();
    let mut args = vec!["tune", "--budget-s", "30", "--runs", "1"];
    args.extend(SHAPE);
    let out = lstm_wgpu(&args, &file);
    let (stdout, stderr) = text(&out);
    assert_eq!(stdout, "", "refused before measuring anything");
    assert!(!out.status.success());
    let errors = common::error_lines(&stderr);
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("holds the wisdom of Some Other GPU"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ignoring wisdom file"),
        "one warning: {stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), foreign);
}
