//! A reader that stops early (`lstm-wgpu info | head -1`) ends the binary quietly: status 0,
//! no panic, no broken-pipe or error line. And without `XDG_RUNTIME_DIR` a run prints no
//! `error:` line (the binary gives the driver a private runtime directory).
//!
//! These check stderr for what our program must not print, never for silence: a driver may
//! print notes of its own there.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_ends_quietly_with_status_0() {
    // `info` prints its first line before it opens a device, and the rest after: by then the
    // pipe below is closed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .arg("info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("one line arrives");
    assert!(
        first.starts_with("adapters wgpu sees"),
        "first line: {first:?}"
    );
    drop(stdout);

    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("stderr is text");
    let status = child.wait().expect("the binary exits");
    assert_quiet(&stderr);
    assert_eq!(status.code(), Some(0), "status 0 after the reader left");
}

/// Nothing on `stderr` that our program must not print.
fn assert_quiet(stderr: &str) {
    for bad in [
        "panicked",
        "Broken pipe",
        "RUST_BACKTRACE",
        "internal failure",
    ] {
        assert!(!stderr.contains(bad), "stderr has {bad:?}:\n{stderr}");
    }
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert!(errors.is_empty(), "error lines on stderr: {errors:?}");
}

#[test]
fn demo_without_a_runtime_dir_prints_no_error_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .arg("demo")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}");
    assert_quiet(&stderr);
}
