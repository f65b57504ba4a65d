//! The `lstm-wgpu` binary as a user runs it: init -> run round trips on both devices,
//! PyTorch-saved models, and every kind of bad input (non-zero exit, one line on stderr,
//! a pre-existing output file left untouched).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_close, VS_PYTORCH};
use lstm_wgpu::io::npy;
use lstm_wgpu::Tensor;

fn lstm_wgpu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = lstm_wgpu(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lstm-wgpu {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/cli/{name}")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.data().iter().map(|&x| x as f64).collect()
}

#[test]
fn init_then_run_on_both_devices() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    ok(&[
        "init",
        "--input-size",
        "3",
        "--hidden-size",
        "7",
        "--num-layers",
        "2",
        "--bidirectional",
        "--proj-size",
        "4",
        "--head",
        "5",
        "--seed",
        "3",
        "--out",
        s(&w),
    ]);
    let x = dir.path().join("x.npy");
    npy::write_f32(&x, &common::random_tensor(&[6, 2, 3], 1)).unwrap();
    let [gpu, cpu] = run_on_both_devices(dir.path(), &w, &x);
    assert_eq!(gpu[0].shape(), &[6, 2, 5]);
    assert_eq!(gpu[1].shape(), &[4, 2, 4]);
    assert_eq!(gpu[2].shape(), &[4, 2, 7]);
    assert_close(
        "gpu vs cpu output",
        gpu[0].data(),
        &f64s(&cpu[0]),
        common::GPU_VS_F64,
    );
}

/// `run` of `weights` on `x` with `--device gpu` and `--device cpu`: each one's
/// [output, h_n, c_n].
fn run_on_both_devices(dir: &Path, weights: &Path, x: &Path) -> [[Tensor; 3]; 2] {
    ["gpu", "cpu"].map(|device| {
        let files = ["y", "hn", "cn"].map(|n| dir.join(format!("{n}_{device}.npy")));
        let [y, hn, cn] = files.each_ref().map(|p| s(p));
        #[rustfmt::skip]
        ok(&["run", "--weights", s(weights), "--input", s(x), "--output", y,
             "--hn", hn, "--cn", cn, "--device", device]);
        files.map(|p| npy::read_f32(&p).unwrap())
    })
}

/// T = 140,000, B = 1, I = 1, H = 64: the input projection [T, B, 4H] (143 MB) is over
/// lavapipe's 128 MiB storage-binding maximum, so the GPU path runs in chunks over T and
/// carries the state across them; it matches the CPU path.
#[test]
fn a_sequence_longer_than_a_binding_runs_in_chunks_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    ok(&[
        "init",
        "--input-size",
        "1",
        "--hidden-size",
        "64",
        "--seed",
        "5",
        "--out",
        s(&w),
    ]);
    let x = dir.path().join("x.npy");
    npy::write_f32(&x, &common::random_tensor(&[140_000, 1, 1], 6)).unwrap();
    let [gpu, cpu] = run_on_both_devices(dir.path(), &w, &x);
    for (i, name) in ["output", "h_n", "c_n"].iter().enumerate() {
        assert_close(name, gpu[i].data(), &f64s(&cpu[i]), common::GPU_VS_F64);
    }
}

#[test]
fn pytorch_models_run_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    for device in ["gpu", "cpu"] {
        let (y, hn, cn) = (
            dir.path().join("y.npy"),
            dir.path().join("hn.npy"),
            dir.path().join("cn.npy"),
        );
        ok(&[
            "run",
            "--weights",
            &fixture("packed_model.safetensors"),
            "--input",
            &fixture("packed_x.npy"),
            "--h0",
            &fixture("packed_h0.npy"),
            "--c0",
            &fixture("packed_c0.npy"),
            "--lengths",
            &fixture("packed_lengths.npy"),
            "--output",
            s(&y),
            "--hn",
            s(&hn),
            "--cn",
            s(&cn),
            "--device",
            device,
        ]);
        for (got, want) in [
            (&y, "packed_y.npy"),
            (&hn, "packed_hn.npy"),
            (&cn, "packed_cn.npy"),
        ] {
            let (got, want) = (
                npy::read_f32(got).unwrap(),
                npy::read_f32(Path::new(&fixture(want))).unwrap(),
            );
            assert_eq!(got.shape(), want.shape());
            assert_close(
                &format!("{device} {want:?}"),
                got.data(),
                &f64s(&want),
                VS_PYTORCH,
            );
        }
        ok(&[
            "run",
            "--weights",
            &fixture("bf_model.safetensors"),
            "--input",
            &fixture("bf_x.npy"),
            "--lengths",
            &fixture("bf_lengths.npy"),
            "--batch-first",
            "--output",
            s(&y),
            "--device",
            device,
        ]);
        let want = npy::read_f32(Path::new(&fixture("bf_y.npy"))).unwrap();
        assert_close(
            &format!("{device} bf_y"),
            npy::read_f32(&y).unwrap().data(),
            &f64s(&want),
            VS_PYTORCH,
        );
    }
}

/// Runs a bad command and checks: non-zero exit, one `error:` line naming `needle`, and the
/// output file that existed before is byte-for-byte unchanged.
fn fails(args: &[&str], output: &Path, needle: &str) {
    std::fs::write(output, b"previous contents").unwrap();
    let out = lstm_wgpu(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    let ours = common::error_lines(&stderr);
    assert_eq!(
        ours.len(),
        1,
        "{args:?}: expected one error line on stderr, got {stderr}"
    );
    assert!(
        ours[0].contains(needle) && !stderr.contains("panicked"),
        "{args:?}: {:?} should name {needle:?}",
        ours[0]
    );
    assert_eq!(
        std::fs::read(output).unwrap(),
        b"previous contents",
        "{args:?} touched the output"
    );
    let leftovers: Vec<PathBuf> = std::fs::read_dir(output.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn bad_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let y = p("y.npy");
    let weights = fixture("packed_model.safetensors");
    let x = fixture("packed_x.npy");
    // inputs made for the occasion
    npy::write_f32(&p("x_wide.npy"), &Tensor::full([7, 4, 5], 0.0)).unwrap();
    npy::write_f32(&p("h0_bad.npy"), &Tensor::full([4, 4, 3], 0.0)).unwrap();
    std::fs::write(p("x_int.npy"), common::npy_i64(&[7, 4, 3], &[0; 84])).unwrap();
    std::fs::write(p("lengths_long.npy"), common::npy_i64(&[4], &[7, 3, 8, 1])).unwrap();
    std::fs::write(p("lengths_zero.npy"), common::npy_i64(&[4], &[7, 0, 5, 1])).unwrap();
    std::fs::write(p("not_safetensors.safetensors"), b"hello").unwrap();
    write_bad_keys(&p("bad_keys.safetensors"));

    let run = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "--output", s(&y)]
            .iter()
            .map(|a| a.to_string())
            .collect();
        v.extend(extra.iter().map(|a| a.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            run(&["--weights", s(&p("missing.safetensors")), "--input", &x]),
            "missing.safetensors",
        ),
        (
            run(&["--weights", &weights, "--input", s(&p("missing.npy"))]),
            "missing.npy",
        ),
        (
            run(&[
                "--weights",
                s(&p("not_safetensors.safetensors")),
                "--input",
                &x,
            ]),
            "not a valid safetensors file",
        ),
        (
            run(&["--weights", s(&p("bad_keys.safetensors")), "--input", &x]),
            "decoder.weight",
        ),
        (
            run(&["--weights", &weights, "--input", s(&p("x_wide.npy"))]),
            "[7, 4, 5]",
        ),
        (
            run(&["--weights", &weights, "--input", s(&p("x_int.npy"))]),
            "dtype i8",
        ),
        (
            run(&[
                "--weights",
                &weights,
                "--input",
                &x,
                "--h0",
                s(&p("h0_bad.npy")),
            ]),
            "h0",
        ),
        (
            run(&[
                "--weights",
                &weights,
                "--input",
                &x,
                "--lengths",
                s(&p("lengths_long.npy")),
            ]),
            "lengths[2] = 8",
        ),
        (
            run(&[
                "--weights",
                &weights,
                "--input",
                &x,
                "--lengths",
                s(&p("lengths_zero.npy")),
            ]),
            "lengths[1] = 0",
        ),
        (
            run(&[
                "--weights",
                &weights,
                "--input",
                &x,
                "--device",
                "cpu",
                "--hn",
                s(&p("no_such_dir/hn.npy")),
            ]),
            "no_such_dir",
        ),
    ];
    for (args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&args, &y, needle);
    }
}

/// A safetensors file with a valid LSTM plus a key that is no LSTM parameter.
fn write_bad_keys(path: &Path) {
    use safetensors::tensor::{Dtype, TensorView};
    let zeros = vec![0u8; 4 * 4 * 2];
    let tensors = vec![
        (
            "weight_ih_l0".to_string(),
            TensorView::new(Dtype::F32, vec![4, 2], &zeros).unwrap(),
        ),
        (
            "weight_hh_l0".to_string(),
            TensorView::new(Dtype::F32, vec![4, 1], &zeros[..16]).unwrap(),
        ),
        (
            "decoder.weight".to_string(),
            TensorView::new(Dtype::F32, vec![2, 2], &zeros[..16]).unwrap(),
        ),
    ];
    std::fs::write(path, safetensors::serialize(tensors, None).unwrap()).unwrap();
}

#[test]
fn info_check_and_bench_run() {
    let info = ok(&["info"]);
    assert!(
        info.contains("chosen:") && info.contains("max_storage_buffer_binding_size"),
        "{info}"
    );
    let check = ok(&["check", "--seed", "5", "--cases", "3"]);
    assert!(check.contains("3 passed, 0 failed"), "{check}");
    let bench = ok(&[
        "bench", "--seq", "3", "--batch", "2", "--input", "4", "--hidden", "8", "--iters", "2",
        "--warmup", "1", "--json",
    ]);
    let lines: Vec<serde_json::Value> = bench
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, device) in lines.iter().zip(["gpu", "cpu"]) {
        assert_eq!(line["device"], device);
        for key in [
            "adapter",
            "seq",
            "batch",
            "input",
            "hidden",
            "layers",
            "median_ms",
            "min_ms",
            "us_per_step",
            "kernel",
            "dispatches",
            "gflops",
        ] {
            assert!(!line[key].is_null(), "{key} missing in {line}");
        }
        let us = line["us_per_step"].as_f64().unwrap();
        assert!((us * 3.0 - line["median_ms"].as_f64().unwrap() * 1e3).abs() < 1e-6 * us);
        // 2 * 4H * (I + H) per step and row: 2 * 32 * 12 * 3 * 2 = 4608 FLOP
        let gflops = line["gflops"].as_f64().unwrap();
        let median_ms = line["median_ms"].as_f64().unwrap();
        assert!(
            (gflops * median_ms * 1e6 - 4608.0).abs() < 1e-6 * 4608.0,
            "{line}"
        );
    }
    // H = 8: the sequence kernel, 1 gemm + 1 dispatch; GPU time where timestamps exist
    assert!(
        lines[0]["kernel"].as_str().unwrap().starts_with("sequence"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["dispatches"], 2);
    let table = ok(&[
        "bench",
        "--seq",
        "2",
        "--batch",
        "1",
        "--input",
        "2",
        "--hidden",
        "4",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--kernel",
        "step u=2 ks=1 bt=1 qpi=1",
        "--webgpu-limits",
    ]);
    assert!(table.contains("GPU/CPU"), "{table}");
    assert!(
        table.contains("kernel: step u=2 ks=1 bt=1 qpi=1"),
        "{table}"
    );
    assert!(table.contains("3 dispatches"), "{table}");
    // the CPU's streamed step, and a plan named on the CPU row
    let stream = ok(&[
        "bench", "--stream", "--device", "cpu", "--seq", "1", "--batch", "2", "--input", "3",
        "--hidden", "8", "--iters", "1", "--json",
    ]);
    let line: serde_json::Value = serde_json::from_str(stream.trim()).unwrap();
    assert_eq!(
        (line["device"].as_str(), line["batch"].as_u64()),
        (Some("cpu"), Some(2))
    );
    assert!(line["step_us"].as_f64().unwrap() > 0.0, "{line}");
    let cpu = ok(&[
        "bench",
        "--device",
        "cpu",
        "--seq",
        "4",
        "--batch",
        "1",
        "--input",
        "2",
        "--hidden",
        "4",
        "--layers",
        "2",
        "--bidirectional",
        "--threads",
        "2",
        "--iters",
        "1",
    ]);
    assert!(
        cpu.contains("2 directions side by side; 1 thread per recurrence"),
        "{cpu}"
    );
    let out = lstm_wgpu(&[
        "bench", "--seq", "2", "--batch", "1", "--input", "2", "--hidden", "4", "--kernel", "fast",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kernel `fast`"), "{stderr}");
    let out = lstm_wgpu(&[
        "bench", "--seq", "2", "--batch", "1", "--input", "2", "--hidden", "300", "--device",
        "gpu", "--kernel", "sequence",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error:") && l.contains("max_compute_invocations_per_workgroup")),
        "{stderr}"
    );
}
