//! `lstm-wgpu stream` against PyTorch (tests/fixtures/make_golden_stream.py): one timestep
//! per stdin line, on both devices; a malformed line keeps the lines already answered and
//! writes no final state; a bidirectional model is an error.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{assert_close, VS_PYTORCH};
use lstm_wgpu::io::npy;

fn fixture(name: &str) -> String {
    format!("tests/fixtures/cli/{name}")
}

/// Runs `stream` with `args`, feeding `stdin`.
fn stream(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .arg("stream")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The fixture's x `[T, B, I]` as stdin: one line per step, B×I numbers (round-trip f32).
fn stdin_lines() -> (String, usize) {
    let x = npy::read_f32(fixture("stream_x.npy").as_ref()).unwrap();
    let t = x.shape()[0];
    let row = x.data().len() / t;
    let lines: Vec<String> = x
        .data()
        .chunks(row)
        .enumerate()
        .map(|(k, step)| {
            let sep = if k % 2 == 0 { " " } else { ", " }; // both separators
            step.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(sep)
        })
        .collect();
    (lines.join("\n") + "\n", t)
}

fn numbers(stdout: &[u8]) -> Vec<f32> {
    String::from_utf8_lossy(stdout)
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

#[test]
fn stream_matches_pytorch_on_both_devices() {
    let (input, t) = stdin_lines();
    let want = npy::read_f32(fixture("stream_y.npy").as_ref()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for device in ["gpu", "cpu"] {
        let (hn, cn) = (dir.path().join("hn.npy"), dir.path().join("cn.npy"));
        let weights = fixture("stream_model.safetensors");
        let (h0, c0) = (fixture("stream_h0.npy"), fixture("stream_c0.npy"));
        let args = [
            "--weights",
            &weights,
            "--batch",
            "2",
            "--device",
            device,
            "--h0",
            &h0,
            "--c0",
            &c0,
            "--hn",
            hn.to_str().unwrap(),
            "--cn",
            cn.to_str().unwrap(),
        ];
        let out = stream(&args, &input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{device}: {stderr}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), t, "{device}: one line per step");
        let want_y: Vec<f64> = want.data().iter().map(|&v| v as f64).collect();
        assert_close(
            &format!("{device} y"),
            &numbers(&out.stdout),
            &want_y,
            VS_PYTORCH,
        );
        for (path, name) in [(&hn, "stream_hn.npy"), (&cn, "stream_cn.npy")] {
            let got = npy::read_f32(path).unwrap();
            let want = npy::read_f32(fixture(name).as_ref()).unwrap();
            assert_eq!(got.shape(), want.shape());
            let want: Vec<f64> = want.data().iter().map(|&v| v as f64).collect();
            assert_close(&format!("{device} {name}"), got.data(), &want, VS_PYTORCH);
        }
    }
}

#[test]
fn a_malformed_line_keeps_earlier_answers_and_writes_no_state() {
    let (input, _) = stdin_lines();
    let mut lines: Vec<&str> = input.lines().take(2).collect();
    lines.push("1 2 3 4 5"); // 5 numbers where 6 are due
    let dir = tempfile::tempdir().unwrap();
    let hn = dir.path().join("hn.npy");
    std::fs::write(&hn, b"keep me").unwrap();
    let weights = fixture("stream_model.safetensors");
    for device in ["gpu", "cpu"] {
        let args = [
            "--weights",
            &weights,
            "--batch",
            "2",
            "--device",
            device,
            "--hn",
            hn.to_str().unwrap(),
        ];
        let out = stream(&args, &(lines.join("\n") + "\n"));
        assert_eq!(out.status.code(), Some(1), "{device}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("line 3")
                && stderr.contains("expected 6 numbers")
                && stderr.contains("got 5"),
            "{device}: {stderr}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            2,
            "{device}"
        );
        assert_eq!(
            std::fs::read(&hn).unwrap(),
            b"keep me",
            "{device}: hn untouched"
        );
        // a word that is not a number is named, NaN text is a number
        let out = stream(&args, "1 2 3 4 5 six\n");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("\"six\""), "{device}: {stderr}");
        let out = stream(
            &["--weights", &weights, "--batch", "2", "--device", device],
            "NaN 1 2 3 4 5\n",
        );
        assert!(out.status.success(), "{device}");
    }
}

#[test]
fn a_bidirectional_model_is_an_error() {
    let out = stream(
        &[
            "--weights",
            &fixture("packed_model.safetensors"),
            "--device",
            "cpu",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bidirectional"), "{stderr}");
}

/// A token model streams B ids per line: each line's output is that step of a whole-sequence
/// forward on the looked-up ids, on both devices; an id outside the vocabulary fails naming
/// the line.
#[test]
fn a_token_model_streams_ids() {
    use lstm_wgpu::cpu::CpuLstm;
    use lstm_wgpu::io::safetensors;
    use lstm_wgpu::{Embedding, LstmConfig, LstmWeights, Tensor};
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("lm.safetensors");
    let weights = LstmWeights::init(&LstmConfig::new(4, 5), 1)
        .unwrap()
        .with_embedding(Embedding::init(9, 4, 2).unwrap())
        .unwrap();
    safetensors::save(&model, &weights).unwrap();
    let (t, b) = (4, 2);
    let ids: Vec<i64> = (0..t * b).map(|i| ((i * 4 + 1) % 9) as i64).collect();
    let stdin: String = ids
        .chunks(b)
        .map(|row| {
            row.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
                + "\n"
        })
        .collect();
    let x = weights
        .embedding()
        .unwrap()
        .lookup(&Tensor::new([t, b], ids).unwrap())
        .unwrap();
    let want = CpuLstm::<f64>::new(&weights)
        .forward(&x.map(f64::from), None, None)
        .unwrap();
    for device in ["cpu", "gpu"] {
        let out = stream(
            &[
                "--weights",
                model.to_str().unwrap(),
                "--batch",
                "2",
                "--device",
                device,
            ],
            &stdin,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<f32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        common::assert_close(device, &got, want.output.data(), common::GPU_VS_F64);
    }
    let out = stream(
        &["--weights", model.to_str().unwrap(), "--batch", "2"],
        "1 2\n3 9\n",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stdin line 2") && stderr.contains("token id 9"),
        "{stderr}"
    );
}
