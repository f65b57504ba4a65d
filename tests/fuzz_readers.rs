//! The file readers on hostile bytes: random bytes and mutated valid files (bit flips,
//! truncation, inserted and deleted bytes, header edits with huge shapes, wrong dtypes and
//! bad offsets) must give `Ok` or `Err`, never a panic (nor an abort: every size in a header
//! is checked against the file before anything is allocated for it). Seeded, so a failure
//! names the seed and the case that reproduce it; `cargo fuzz` (fuzz/) runs the same readers
//! open-ended.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use lstm_wgpu::io::{npy, safetensors};
use lstm_wgpu::{Linear, LstmConfig, LstmWeights, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Cases per format.
const CASES: u64 = 1000;

/// Runs `read` on `bytes`, returning a description of the panic if it panics.
fn panics(read: impl FnOnce() -> bool) -> Option<String> {
    match catch_unwind(AssertUnwindSafe(read)) {
        Ok(_) => None,
        Err(payload) => Some(
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into()),
        ),
    }
}

/// Every npy reader on `bytes`, in memory and (for some) from a file.
fn read_npy(bytes: &[u8], dir: &Path, via_file: bool) -> Option<String> {
    panics(|| {
        let ok = npy::decode_f32(bytes).is_ok();
        let ok = npy::decode_i64(bytes).is_ok() || ok;
        if via_file {
            let path = dir.join("case.npy");
            std::fs::write(&path, bytes).unwrap();
            let _ = npy::read_f32(&path);
            let _ = npy::read_i64(&path);
            let _ = npy::read_lengths(&path);
        }
        ok
    })
}

/// The safetensors reader on `bytes`, in memory and (for some) from a file.
fn read_safetensors(bytes: &[u8], dir: &Path, via_file: bool) -> Option<String> {
    panics(|| {
        let ok = safetensors::decode(bytes).is_ok();
        if via_file {
            let path = dir.join("case.safetensors");
            std::fs::write(&path, bytes).unwrap();
            let _ = safetensors::load(&path);
        }
        ok
    })
}

/// Valid `.npy` files: f32 through the writer, and f64, int64, int32 and big-endian f32 by
/// hand, in several shapes (scalar and empty included).
fn npy_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for shape in [vec![], vec![3], vec![2, 3], vec![2, 0, 4], vec![2, 3, 4]] {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
        seeds.push(npy::encode_f32(&Tensor::new(shape.clone(), data).unwrap()).unwrap());
        let dims = shape_text(&shape.iter().map(|&d| d as u128).collect::<Vec<_>>());
        let values = |item: usize, f: &dyn Fn(usize) -> Vec<u8>| -> Vec<u8> {
            (0..n).flat_map(f).take(n * item).collect()
        };
        seeds.push(common::npy_file(
            "<f8",
            false,
            &dims,
            &values(8, &|i| (i as f64).to_le_bytes().to_vec()),
        ));
        seeds.push(common::npy_file(
            "<i8",
            false,
            &dims,
            &values(8, &|i| (i as i64).to_le_bytes().to_vec()),
        ));
        seeds.push(common::npy_file(
            "<i4",
            false,
            &dims,
            &values(4, &|i| (i as i32).to_le_bytes().to_vec()),
        ));
        seeds.push(common::npy_file(
            ">f4",
            false,
            &dims,
            &values(4, &|i| (i as f32).to_be_bytes().to_vec()),
        ));
    }
    for name in [
        "packed_x.npy",
        "packed_lengths.npy",
        "bf_lengths.npy",
        "bf_x.npy",
    ] {
        seeds.push(std::fs::read(Path::new("tests/fixtures/cli").join(name)).unwrap());
    }
    seeds
}

/// `(d0, d1, )` as numpy writes a shape.
fn shape_text(dims: &[u128]) -> String {
    match dims {
        [] => "()".into(),
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Valid safetensors files: written ones of several configurations, and PyTorch's (with
/// F16, BF16 and F64 tensors).
fn safetensors_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let configs = [
        LstmConfig::new(2, 3),
        LstmConfig::new(3, 4).num_layers(2).bidirectional(true),
        LstmConfig::new(2, 5).proj_size(2).bias(false),
        LstmConfig::new(3, 4)
            .num_layers(2)
            .bidirectional(true)
            .proj_size(3),
    ];
    for (i, config) in configs.iter().enumerate() {
        let mut weights = LstmWeights::init(config, i as u64).unwrap();
        if i == 1 {
            let width = config.num_directions() * config.output_size();
            weights = weights
                .with_head(Linear::init(width, 2, 9).unwrap())
                .unwrap();
        }
        seeds.push(safetensors::encode(&weights).unwrap());
    }
    for name in [
        "packed_model.safetensors",
        "unbatched_model.safetensors",
        "half_f16_model.safetensors",
        "half_bf16_model.safetensors",
        "half_f64_model.safetensors",
    ] {
        seeds.push(std::fs::read(Path::new("tests/fixtures/cli").join(name)).unwrap());
    }
    seeds
}

/// Numbers a header edit puts where a size goes: small, at the edges of the integer types,
/// and past them.
fn edge_number(rng: &mut StdRng) -> u128 {
    const EDGES: [u128; 12] = [
        0,
        1,
        4,
        100_000,
        1 << 31,
        1 << 32,
        (1 << 40) + 1,
        (1 << 62) + 3,
        i64::MAX as u128,
        (1 << 63) + 1,
        u64::MAX as u128,
        (u64::MAX as u128) + 1,
    ];
    EDGES[rng.random_range(0..EDGES.len())]
}

/// One of the byte-level mutations, `rounds` times.
fn mutate_bytes(rng: &mut StdRng, bytes: &mut Vec<u8>, rounds: usize) -> String {
    let mut done = Vec::new();
    for _ in 0..rounds {
        let len = bytes.len();
        let at = |rng: &mut StdRng| rng.random_range(0..len.max(1));
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let (i, bit) = (at(rng), rng.random_range(0..8));
                bytes[i] ^= 1 << bit;
                done.push(format!("flip bit {bit} of byte {i}"));
            }
            1 if len > 0 => {
                let (i, v) = (at(rng), rng.random::<u8>());
                bytes[i] = v;
                done.push(format!("set byte {i} to {v}"));
            }
            2 => {
                let keep = rng.random_range(0..=len);
                bytes.truncate(keep);
                done.push(format!("truncate to {keep}"));
            }
            3 => {
                let (i, n) = (rng.random_range(0..=len), rng.random_range(1..16));
                let extra: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                bytes.splice(i..i, extra);
                done.push(format!("insert {n} bytes at {i}"));
            }
            4 if len > 0 => {
                let i = at(rng);
                let n = rng.random_range(1..=16.min(len - i));
                bytes.drain(i..i + n);
                done.push(format!("delete {n} bytes at {i}"));
            }
            5 if len >= 8 => {
                // a little-endian length or count field set to an edge value
                let i = rng.random_range(0..=len - 8);
                let v = edge_number(rng) as u64;
                bytes[i..i + 8].copy_from_slice(&v.to_le_bytes());
                done.push(format!("u64 {v} at {i}"));
            }
            _ => {
                let n = rng.random_range(0..64);
                bytes.extend((0..n).map(|_| rng.random::<u8>()));
                done.push(format!("append {n} bytes"));
            }
        }
    }
    done.join(", ")
}

/// A `.npy` file with an edited header: a shape, dtype, order, version or length the data
/// does not match (or does).
fn npy_header_edit(rng: &mut StdRng) -> (Vec<u8>, String) {
    const DESCRS: [&str; 12] = [
        "<f4", ">f4", "<f8", "<i8", "<i4", "|u1", "<f2", "<U10", "|b1", "f4", "<c8", "",
    ];
    let descr = DESCRS[rng.random_range(0..DESCRS.len())];
    let rank = rng.random_range(0..4);
    let dims: Vec<u128> = (0..rank)
        .map(|_| {
            if rng.random_bool(0.5) {
                rng.random_range(0..5)
            } else {
                edge_number(rng)
            }
        })
        .collect();
    let shape = match rng.random_range(0..6) {
        0 => format!(
            "[{}]",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        1 => "(-1, 3)".into(),
        2 => "((2, 3), 4)".into(),
        3 => "(1L, 2L)".into(),
        _ => shape_text(&dims),
    };
    let data_len = if rng.random_bool(0.5) {
        rng.random_range(0..64)
    } else {
        // what the header claims, when that is small
        dims.iter()
            .fold(8u128, |n, &d| n.saturating_mul(d))
            .min(256) as usize
    };
    let data: Vec<u8> = (0..data_len).map(|_| rng.random()).collect();
    let mut bytes = common::npy_file(descr, rng.random_bool(0.1), &shape, &data);
    let mut what = format!("header descr {descr:?} shape {shape} with {data_len} data bytes");
    match rng.random_range(0..8) {
        0 => {
            // the header's length field
            let v = rng.random::<u16>();
            bytes[8..10].copy_from_slice(&v.to_le_bytes());
            what += &format!(", header length {v}");
        }
        1 => {
            // version 2.0 or 3.0 with a 4-byte length (maybe past the end)
            bytes[6] = rng.random_range(2..=4);
            let v = if rng.random_bool(0.5) {
                u32::MAX
            } else {
                rng.random_range(0..200)
            };
            bytes.splice(8..10, v.to_le_bytes());
            what += &format!(", version {} header length {v}", bytes[6]);
        }
        2 => {
            what += ", unclosed dict";
            if let Some(i) = bytes.iter().position(|&b| b == b'}') {
                bytes[i] = b' ';
            }
        }
        3 => {
            what += ", a shape nested 4000 deep";
            bytes = common::npy_file(descr, false, &"(".repeat(4000), &data);
        }
        _ => {}
    }
    (bytes, what)
}

/// A safetensors file taken apart: its tensors (name, dtype, shape, bytes) in offset order.
struct Parts {
    tensors: Vec<(String, String, Vec<serde_json::Value>, Vec<u8>)>,
}

impl Parts {
    fn parse(bytes: &[u8]) -> Self {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let data = &bytes[8 + n..];
        let mut tensors: Vec<_> = header
            .into_iter()
            .filter(|(name, _)| name != "__metadata__")
            .map(|(name, info)| {
                let offsets: Vec<usize> = info["data_offsets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as usize)
                    .collect();
                let dtype = info["dtype"].as_str().unwrap().to_string();
                let shape = info["shape"].as_array().unwrap().clone();
                (
                    offsets[0],
                    (name, dtype, shape, data[offsets[0]..offsets[1]].to_vec()),
                )
            })
            .collect();
        tensors.sort_by_key(|(start, _)| *start);
        Self {
            tensors: tensors.into_iter().map(|(_, t)| t).collect(),
        }
    }

    /// The file, with offsets laid out from the tensors' bytes (so that only what was edited
    /// is wrong), then `edit` applied to the header's JSON.
    fn file(&self, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data: Vec<u8> = Vec::new();
        for (name, dtype, shape, bytes) in &self.tensors {
            let start = data.len();
            data.extend(bytes);
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        edit(&mut header);
        let text = serde_json::to_vec(&header).unwrap();
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend(text);
        bytes.extend(data);
        bytes
    }
}

/// The bytes of one element of `dtype` (0 where it is not a whole number of bytes).
fn dtype_bytes(dtype: &str) -> usize {
    match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "F4" | "F6_E3M2" | "F6_E2M3" => 0,
        _ => 1,
    }
}

/// A number as a JSON value, also past u64 (which JSON can write but not hold in a u64).
fn json_number(v: u128) -> serde_json::Value {
    serde_json::from_str(&v.to_string()).unwrap_or(serde_json::Value::Null)
}

/// Names a key may be renamed to: other layers, directions, prefixes, the head, and layer
/// numbers at the edges.
const NAMES: [&str; 10] = [
    "lstm.weight_hr_l0",
    "lstm.weight_ih_l1_reverse",
    "lstm.bias_hh_l2",
    "weight_ih_l0",
    "x.lstm.weight_hh_l0",
    "head.weight",
    "head.bias",
    "lstm.weight_ih_l18446744073709551615",
    "lstm.weight_ih_l99999999999999999999",
    "lstm.",
];

/// A safetensors file with an edited header: a tensor's shape, dtype, name or offsets
/// replaced (with the other offsets laid out to match, or not), or the length prefix wrong.
fn safetensors_header_edit(rng: &mut StdRng, seed: &[u8]) -> (Vec<u8>, String) {
    let mut parts = Parts::parse(seed);
    let index = rng.random_range(0..parts.tensors.len());
    let name = parts.tensors[index].0.clone();
    let small_shape = |rng: &mut StdRng| -> Vec<serde_json::Value> {
        (0..rng.random_range(0..4))
            .map(|_| rng.random_range(0..6u64).into())
            .collect()
    };
    let (mut bytes, mut what) = match rng.random_range(0..8) {
        0 => {
            // another shape with the bytes it needs: valid safetensors, wrong for the model
            let shape = small_shape(rng);
            let n: u64 = shape.iter().map(|d| d.as_u64().unwrap()).product();
            let t = &mut parts.tensors[index];
            t.3 = vec![0x3c; n as usize * dtype_bytes(&t.1)];
            t.2 = shape.clone();
            (
                parts.file(|_| {}),
                format!("{name}: shape {shape:?}, data to match"),
            )
        }
        1 => {
            const DTYPES: [&str; 11] = [
                "F32", "F16", "BF16", "F64", "I64", "BOOL", "U8", "F8_E4M3", "F4", "I32", "XYZ",
            ];
            let dtype = DTYPES[rng.random_range(0..DTYPES.len())];
            let t = &mut parts.tensors[index];
            let n: u64 = t.2.iter().map(|d| d.as_u64().unwrap()).product();
            if rng.random_bool(0.7) {
                t.3 = vec![0x41; n as usize * dtype_bytes(dtype)];
            }
            t.1 = dtype.into();
            (parts.file(|_| {}), format!("{name}: dtype {dtype}"))
        }
        2 => {
            let to = NAMES[rng.random_range(0..NAMES.len())];
            parts.tensors[index].0 = to.into();
            (parts.file(|_| {}), format!("{name} renamed {to}"))
        }
        3 => {
            parts.tensors.remove(index);
            (parts.file(|_| {}), format!("{name} removed"))
        }
        4 => {
            let shape: Vec<serde_json::Value> = (0..rng.random_range(0..4))
                .map(|_| json_number(edge_number(rng)))
                .collect();
            let what = format!("{name}: shape {shape:?}, data as it was");
            (
                parts.file(|h| {
                    h[&name]["shape"] = shape.into();
                }),
                what,
            )
        }
        5 => {
            let offsets = [json_number(edge_number(rng)), json_number(edge_number(rng))];
            let what = format!("{name}: data_offsets {offsets:?}");
            (
                parts.file(|h| {
                    h[&name]["data_offsets"] = offsets.to_vec().into();
                }),
                what,
            )
        }
        6 => {
            // offsets that chain past 2^64 (with the length and header added): 8 tensors of
            // 2^61 - 1 bytes, the largest whose size in bits fits a u64
            let size: u64 = (1 << 61) - 1;
            let file = parts.file(|h| {
                h.clear();
                for i in 0..8 {
                    h.insert(
                        format!("{name}{i}"),
                        serde_json::json!({
                            "dtype": "U8", "shape": [size],
                            "data_offsets": [i * size, (i + 1) * size],
                        }),
                    );
                }
            });
            (file, format!("{name}: data_offsets chained past 2^64"))
        }
        _ => {
            let mut file = parts.file(|_| {});
            let cut = rng.random_range(0..=file.len());
            file.truncate(cut);
            (file, format!("truncated to {cut}"))
        }
    };
    if rng.random_bool(0.1) {
        let len = edge_number(rng) as u64;
        bytes[..8].copy_from_slice(&len.to_le_bytes());
        what += &format!(", header length {len}");
    }
    (bytes, what)
}

#[test]
fn the_npy_readers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = npy_seeds();
    for bytes in &seeds {
        let ok = catch_unwind(|| npy::decode_f32(bytes).is_ok() || npy::decode_i64(bytes).is_ok());
        assert!(ok.unwrap_or(false), "a valid seed file is read");
    }
    let mut failures = Vec::new();
    for case in 0..CASES {
        let mut rng = StdRng::seed_from_u64(case);
        let (bytes, what) = match case % 4 {
            0 => {
                let n = rng.random_range(0..200);
                (
                    (0..n).map(|_| rng.random()).collect(),
                    format!("{n} random bytes"),
                )
            }
            1 => npy_header_edit(&mut rng),
            _ => {
                let seed = rng.random_range(0..seeds.len());
                let mut bytes = seeds[seed].clone();
                let rounds = rng.random_range(1..4);
                let what = mutate_bytes(&mut rng, &mut bytes, rounds);
                (bytes, format!("seed file {seed}: {what}"))
            }
        };
        if let Some(panic) = read_npy(&bytes, dir.path(), case % 8 == 0) {
            failures.push(format!("case {case} (StdRng seed {case}), {what}: {panic}"));
        }
    }
    assert!(
        failures.is_empty(),
        "the npy readers panicked:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_safetensors_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = safetensors_seeds();
    for bytes in &seeds {
        assert!(
            safetensors::decode(bytes).is_ok(),
            "a valid seed file is read"
        );
    }
    let mut failures = Vec::new();
    for case in 0..CASES {
        let mut rng = StdRng::seed_from_u64(1_000_000 + case);
        let seed = rng.random_range(0..seeds.len());
        let (bytes, what) = match case % 4 {
            0 if case % 8 == 0 => {
                let n = rng.random_range(0..200);
                let mut bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                if n >= 8 && rng.random_bool(0.5) {
                    // a plausible header length, so that the JSON parser sees the bytes
                    bytes[..8].copy_from_slice(&((n as u64 - 8) / 2).to_le_bytes());
                }
                (bytes, format!("{n} random bytes"))
            }
            0 | 1 => safetensors_header_edit(&mut rng, &seeds[seed]),
            _ => {
                let mut bytes = seeds[seed].clone();
                let rounds = rng.random_range(1..4);
                let what = mutate_bytes(&mut rng, &mut bytes, rounds);
                (bytes, format!("seed file {seed}: {what}"))
            }
        };
        if let Some(panic) = read_safetensors(&bytes, dir.path(), case % 8 == 0) {
            failures.push(format!(
                "case {case} (StdRng seed {}), {what}: {panic}",
                1_000_000 + case
            ));
        }
    }
    // every key of every seed with a shape of rank 0, 1 and 3 (data to match): the model's
    // shape checks see each wrong rank at each place
    for (seed, bytes) in seeds.iter().enumerate() {
        let parts = Parts::parse(bytes);
        for index in 0..parts.tensors.len() {
            for shape in [vec![], vec![2u64], vec![1, 2, 4]] {
                let mut parts = Parts::parse(bytes);
                let t = &mut parts.tensors[index];
                t.3 = vec![0; shape.iter().product::<u64>() as usize * dtype_bytes(&t.1)];
                t.2 = shape.iter().map(|&d| d.into()).collect();
                let what = format!("seed file {seed}: {} with shape {shape:?}", t.0);
                if let Some(panic) = read_safetensors(&parts.file(|_| {}), dir.path(), false) {
                    failures.push(format!("{what}: {panic}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the safetensors reader panicked:\n{}",
        failures.join("\n")
    );
}

/// The committed ONNX fixtures (every cell variant, layouts, initial states, lengths).
fn onnx_seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/ort");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.iter()
        .step_by(4)
        .map(|d| std::fs::read(d.join("model.onnx")).unwrap())
        .collect()
}

#[test]
fn the_onnx_reader_never_panics() {
    use lstm_wgpu::io::onnx;
    let seeds = onnx_seeds();
    for bytes in &seeds {
        assert!(onnx::read(bytes).is_ok(), "a valid seed model is read");
    }
    let mut failures = Vec::new();
    for case in 0..CASES {
        let mut rng = StdRng::seed_from_u64(2_000_000 + case);
        let seed = rng.random_range(0..seeds.len());
        let (bytes, what) = if case % 8 == 0 {
            let n = rng.random_range(0..300);
            let mut bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            if n > 0 {
                bytes[0] = 0x08; // ir_version first, as a model starts
            }
            (bytes, format!("{n} random bytes"))
        } else {
            let mut bytes = seeds[seed].clone();
            let rounds = rng.random_range(1..4);
            let what = mutate_bytes(&mut rng, &mut bytes, rounds);
            (bytes, format!("seed model {seed}: {what}"))
        };
        let panic = panics(|| {
            let looks = onnx::looks_like_onnx(&bytes);
            onnx::read(&bytes).is_ok() || looks
        });
        if let Some(panic) = panic {
            failures.push(format!(
                "case {case} (StdRng seed {}), {what}: {panic}",
                2_000_000 + case
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
