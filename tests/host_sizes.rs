//! Sizes the host cannot hold (from a flag, a file header, a tensor shape) are an error naming
//! the size, never an abort: the binary exits 1 with one line on stderr and writes nothing.

mod common;

use lstm_wgpu::io::npy;
use lstm_wgpu::{Error, Linear, LstmConfig, LstmWeights, Tensor};

/// Whether this host refuses a single reservation of `bytes` outright: Linux with the default
/// (heuristic) or strict overcommit and less RAM + swap than that. Elsewhere (overcommit
/// always, other systems, a machine that big) the reservation may succeed and the test would
/// write that much memory, so the tests that need a refusal skip themselves.
fn host_refuses(bytes: u64) -> bool {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let kib = |meminfo: &str, key: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let meminfo = read("/proc/meminfo");
    let refuses = cfg!(target_os = "linux")
        && matches!(read("/proc/sys/vm/overcommit_memory").trim(), "0" | "2")
        && match (kib(&meminfo, "MemTotal:"), kib(&meminfo, "SwapTotal:")) {
            (Some(mem), Some(swap)) => (mem + swap).saturating_mul(1024) < bytes,
            _ => false,
        };
    if !refuses {
        eprintln!("skipped: this host may reserve {bytes} bytes (overcommit, or that much memory)");
    }
    refuses
}

/// A float32 `.npy` file whose header claims `shape` and whose data is `data_bytes` bytes.
fn npy_claiming(shape: &str, data_bytes: usize) -> Vec<u8> {
    common::npy_file("<f4", false, shape, &vec![0u8; data_bytes])
}

#[test]
fn a_npy_header_claiming_a_huge_shape_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (shape, named) in [
        ("(100000, 100000, 100000)", "[100000, 100000, 100000]"),
        // 2^120 elements: the product overflows (and used to wrap to 0 elements)
        (
            "(1099511627776, 1099511627776, 1099511627776)",
            "[1099511627776, 1099511627776, 1099511627776]",
        ),
    ] {
        let path = dir.path().join("huge.npy");
        std::fs::write(&path, npy_claiming(shape, 16)).unwrap();
        let err = npy::read_f32(&path).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::Format { .. }) && message.contains(named),
            "{message}"
        );
        assert!(
            message.contains("huge.npy") && message.contains("16 bytes"),
            "{message}"
        );
        let from_bytes = npy::decode_f32(&npy_claiming(shape, 16)).unwrap_err();
        assert!(from_bytes.to_string().contains(named), "{from_bytes}");
        assert!(npy::read_i64(&path).is_err());
    }
    // the same header with the data it claims is read
    let path = dir.path().join("fits.npy");
    std::fs::write(&path, npy_claiming("(2, 2)", 16)).unwrap();
    assert_eq!(npy::read_f32(&path).unwrap().shape(), &[2, 2]);
}

#[test]
fn weights_the_host_cannot_hold_are_an_error_naming_the_bytes() {
    if !host_refuses(320_003_200_000) {
        return;
    }
    let err = LstmWeights::init(&LstmConfig::new(100_000, 100_000), 0).unwrap_err();
    // 2 * [400000, 100000] + 2 * [400000] f32
    let message = err.to_string();
    assert!(
        matches!(
            err,
            Error::HostMemory {
                bytes: 320_003_200_000,
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("320003200000 bytes"), "{message}");
    // element counts that overflow usize
    let config = LstmConfig::new(usize::MAX / 2, 1 << 20).num_layers(3);
    let err = LstmWeights::init(&config, 0).unwrap_err();
    assert!(matches!(err, Error::HostMemory { .. }), "{err}");
    let err = LstmWeights::init(&LstmConfig::new(4, usize::MAX / 2), 0).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    // layers: a product over L, not a loop over it
    let err = LstmWeights::init(&LstmConfig::new(4, 4).num_layers(usize::MAX), 0).unwrap_err();
    assert!(matches!(err, Error::HostMemory { .. }), "{err}");
    let err = Linear::init(1 << 20, 1 << 20, 0).unwrap_err();
    assert!(err.to_string().contains("4398050705408 bytes"), "{err}");
}

#[test]
fn tensor_shapes_that_overflow_are_errors() {
    let huge = [1usize << 40, 1 << 40, 1 << 40];
    assert!(matches!(
        Tensor::<f32>::new(huge, vec![]).unwrap_err(),
        Error::HostMemory { .. }
    ));
    let err = Tensor::try_full([100_000, 100_000, 100_000], 0.0f32).unwrap_err();
    assert!(err.to_string().contains("4000000000000000 bytes"), "{err}");
    assert!(Tensor::try_full(huge, 0.0f32).is_err());
    assert_eq!(
        Tensor::try_full([2, 3], 1.0f32).unwrap(),
        Tensor::full([2, 3], 1.0)
    );
}

#[cfg(feature = "cli")]
mod cli {
    use std::path::Path;
    use std::process::Command;

    use super::host_refuses;

    /// Runs the binary; checks exit status 1, one line on stderr naming `bytes` bytes, and no
    /// panic or abort.
    fn fails_naming(args: &[&str], bytes: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
            .args(args)
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let lines = crate::common::error_lines(&stderr);
        assert_eq!(lines.len(), 1, "{args:?}: expected one line, got {stderr}");
        assert!(
            lines[0].starts_with("error: out of host memory")
                && lines[0].contains(&format!("{bytes} bytes")),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        stderr
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    #[test]
    fn init_of_weights_too_large_for_the_host_leaves_the_output_as_it_was() {
        if !host_refuses(320_003_200_000) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("w.safetensors");
        std::fs::write(&out, b"previous contents").unwrap();
        let args = [
            "init",
            "--input-size",
            "100000",
            "--hidden-size",
            "100000",
            "--out",
            s(&out),
        ];
        fails_naming(&args, "320003200000");
        assert_eq!(std::fs::read(&out).unwrap(), b"previous contents");
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1, "a temporary file was left");
        // without a previous file, none is created
        std::fs::remove_file(&out).unwrap();
        fails_naming(&args, "320003200000");
        assert!(!out.exists());
    }

    #[test]
    fn bench_of_an_input_too_large_for_the_host_fails_before_touching_it() {
        if !host_refuses(1_048_576_000_000) {
            return;
        }
        // x [4000000, 64, 1024] f32 is 1 TB: refused before a page of it is written
        let stderr = fails_naming(
            &[
                "bench", "--seq", "4000000", "--batch", "64", "--input", "1024", "--hidden",
                "1024", "--device", "cpu",
            ],
            "1048576000000",
        );
        assert!(stderr.contains("[4000000, 64, 1024]"), "{stderr}");
    }
}
