//! `lstm-wgpu sample` as a user runs it, on a model from `lstm-wgpu init --embedding 256
//! --head 256`: seeded text that repeats, greedy text against the f64 reference, primes of
//! any bytes, `--length 0`, a closed stdout, and bad input (non-zero exit, one clear line).

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::io::safetensors;
use lstm_wgpu::sample::{START, VOCAB};
use lstm_wgpu::Tensor;

fn lstm_wgpu<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `lstm-wgpu sample` with `args`: its stdout bytes, after checking it succeeded.
fn sample<S: AsRef<OsStr>>(args: &[S]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .arg("sample")
        .args(args)
        .output()
        .expect("the binary runs");
    let shown: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sample {shown:?} failed: {stderr}");
    out.stdout
}

/// `lstm-wgpu sample` with `args`, which must fail: its stderr, after checking it is one
/// clear line and no panic.
fn sample_fails(args: &[&str]) -> String {
    let out = lstm_wgpu(&[&["sample"], args].concat());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "sample {args:?} succeeded");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal failure"),
        "sample {args:?} panicked: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", out.stdout);
    stderr
}

/// `lstm-wgpu init` with `args` into `dir/name`.
fn init(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut all = vec!["init", "--out", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = lstm_wgpu(&all);
    assert!(
        out.status.success(),
        "init {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// A byte-level model: embedding [256, 8], 2 layers of 16, head [256, 16].
fn byte_model(dir: &Path) -> PathBuf {
    init(
        dir,
        "lm.safetensors",
        &[
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
            "4",
        ],
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn seeded_text_repeats_on_both_devices() {
    let dir = tempfile::tempdir().unwrap();
    let lm = byte_model(dir.path());
    for device in ["gpu", "cpu"] {
        let run = |seed: &str, extra: &[&str]| {
            let mut args = vec![
                "--weights",
                s(&lm),
                "--prime",
                "The ",
                "--length",
                "48",
                "--seed",
                seed,
                "--device",
                device,
            ];
            args.extend_from_slice(extra);
            sample(&args)
        };
        let a = run("3", &[]);
        assert_eq!(a.len(), 4 + 48, "{device}: the prime, then 48 bytes");
        assert!(a.starts_with(b"The "), "{device}: {a:?}");
        assert_eq!(run("3", &[]), a, "{device}: seed 3 twice");
        assert_ne!(
            run("4", &[]),
            a,
            "{device}: seeds 3 and 4 gave the same text"
        );
        let hot = run("3", &["--temperature", "1.5", "--top-k", "20"]);
        assert_eq!(hot.len(), 52);
        assert_eq!(
            run("3", &["--temperature", "1.5", "--top-k", "20"]),
            hot,
            "{device}: top-k 20, seed 3 twice"
        );
    }
}

/// Each byte after `context` (the fed text: the prime, or START) is the largest logit of the
/// f64 reference fed the whole text at once.
fn assert_greedy(weights: &Path, context: &[u8], generated: &[u8]) {
    let weights = safetensors::load(weights).unwrap();
    let text = [context, generated].concat();
    let ids = Tensor::new([text.len(), 1], text.iter().map(|&b| b as i64).collect()).unwrap();
    let x = weights.embedding().unwrap().lookup(&ids).unwrap();
    let out = CpuLstm::<f64>::new(&weights)
        .forward(&x.map(|v| v as f64), None, None)
        .unwrap();
    let rows: Vec<&[f64]> = out.output.data().chunks(VOCAB).collect();
    for (j, &byte) in generated.iter().enumerate() {
        let row = rows[context.len() - 1 + j];
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert!(
            row[byte as usize] == max,
            "byte {j} is {byte} (logit {}), the reference's largest is {max}",
            row[byte as usize]
        );
    }
}

#[test]
fn temperature_zero_and_top_k_one_follow_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let lm = byte_model(dir.path());
    // non-ASCII UTF-8 and, on Unix, a byte no UTF-8 text holds (a prime's bytes are its own)
    #[cfg(unix)]
    let prime: Vec<u8> = [&[0xFF], "é~".as_bytes(), &[0xFE]].concat();
    #[cfg(not(unix))]
    let prime: Vec<u8> = "é~".as_bytes().to_vec();
    let prime_arg = {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            OsStr::from_bytes(&prime).to_os_string()
        }
        #[cfg(not(unix))]
        {
            std::ffi::OsString::from(String::from_utf8(prime.clone()).unwrap())
        }
    };
    for device in ["gpu", "cpu"] {
        let with = |extra: &[&OsStr]| {
            let mut args: Vec<&OsStr> = ["--weights", s(&lm), "--length", "40", "--device", device]
                .iter()
                .map(|a| OsStr::new(*a))
                .collect();
            args.extend_from_slice(extra);
            sample(&args)
        };
        let t0 = OsStr::new("--temperature");
        let zero = OsStr::new("0");
        let p = OsStr::new("--prime");
        // no prime: the model starts from a newline, which is not printed
        let greedy = with(&[t0, zero]);
        assert_eq!(greedy.len(), 40);
        assert_greedy(&lm, &[START], &greedy);
        // a prime: printed first, then greedy text
        let primed = with(&[t0, zero, p, &prime_arg]);
        assert_eq!(
            &primed[..prime.len()],
            &prime[..],
            "{device}: the prime first"
        );
        assert_greedy(&lm, &prime, &primed[prime.len()..]);
        // top-k 1 at temperature 1, any seed: the same text
        let k = OsStr::new("--top-k");
        let one = OsStr::new("1");
        let seed = [OsStr::new("--seed"), OsStr::new("12")];
        let top1 = with(&[k, one, p, &prime_arg, seed[0], seed[1]]);
        assert_eq!(top1, primed, "{device}: top-k 1 against temperature 0");
    }
}

#[test]
fn length_zero_prints_just_the_prime() {
    let dir = tempfile::tempdir().unwrap();
    let lm = byte_model(dir.path());
    for device in ["gpu", "cpu"] {
        let out = sample(&[
            "--weights",
            s(&lm),
            "--prime",
            "héllo\n",
            "--length",
            "0",
            "--device",
            device,
        ]);
        assert_eq!(out, "héllo\n".as_bytes());
        let out = sample(&["--weights", s(&lm), "--length", "0", "--device", device]);
        assert!(out.is_empty(), "{out:?}");
    }
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let lm = byte_model(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .args([
            "sample",
            "--weights",
            s(&lm),
            "--length",
            "100000000",
            "--device",
            "cpu",
            "--threads",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then dropped: closed
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let lm = byte_model(dir.path());
    let lm = s(&lm);
    let base = ["--weights", lm, "--length", "5", "--device", "cpu"];
    let with = |extra: &[&'static str]| -> Vec<&str> { [&base[..], extra].concat() };
    for t in ["-1", "-0.5", "NaN", "inf"] {
        let e = sample_fails(&with(&["--temperature", t]));
        assert!(e.contains("temperature"), "--temperature {t}: {e}");
    }
    let e = sample_fails(&with(&["--temperature=-2"]));
    assert!(e.contains("temperature"), "{e}");
    let e = sample_fails(&with(&["--top-k", "0"]));
    assert!(e.contains("top-k"), "{e}");

    // models that are not byte-level, on both devices (checked before the device starts)
    let no_embedding = init(
        dir.path(),
        "plain.safetensors",
        &["--input-size", "8", "--hidden-size", "16", "--head", "256"],
    );
    let small_vocab = init(
        dir.path(),
        "vocab10.safetensors",
        &[
            "--input-size",
            "8",
            "--hidden-size",
            "16",
            "--head",
            "256",
            "--embedding",
            "10",
        ],
    );
    let narrow_head = init(
        dir.path(),
        "head16.safetensors",
        &[
            "--input-size",
            "8",
            "--hidden-size",
            "16",
            "--head",
            "16",
            "--embedding",
            "256",
        ],
    );
    let no_head = init(
        dir.path(),
        "nohead.safetensors",
        &[
            "--input-size",
            "8",
            "--hidden-size",
            "16",
            "--embedding",
            "256",
        ],
    );
    for device in ["gpu", "cpu"] {
        for (path, says) in [
            (&no_embedding, "no embedding"),
            (&small_vocab, "embedding [10, 8]"),
            (&narrow_head, "head [16, 16]"),
            (&no_head, "no head"),
        ] {
            let e = sample_fails(&["--weights", s(path), "--length", "5", "--device", device]);
            assert!(
                e.contains("byte-level") && e.contains(s(path)) && e.contains(says),
                "{device}, {says}: {e}"
            );
        }
    }
    let e = sample_fails(&[
        "--weights",
        s(&dir.path().join("missing.safetensors")),
        "--length",
        "1",
    ]);
    assert!(e.contains("missing.safetensors"), "{e}");
    let e = sample_fails(&["--weights", lm]);
    assert!(e.contains("--length"), "{e}");
}
