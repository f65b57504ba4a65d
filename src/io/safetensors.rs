//! safetensors files holding an `nn.LSTM` state dict (and optionally a Linear head).
//!
//! Keys are PyTorch's (`weight_ih_l0`, `bias_hh_l1_reverse`, ...), either bare or all under
//! one common prefix ending in `.` (e.g. `lstm.weight_ih_l0`); a head is `head.weight`
//! `[O, D*H_out]` and `head.bias` `[O]`. The configuration is inferred from the keys and
//! shapes. Tensors may be F32, F16, BF16 or F64 (converted to f32). Files are written with
//! the `lstm.` prefix, F32. [`decode`] reads the same format from bytes in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::config::LstmConfig;
use crate::embedding::Embedding;
use crate::error::{Error, Result};
use crate::head::Linear;
use crate::host::try_with_capacity;
use crate::io::atomic::write_atomic;
use crate::io::read_file;
use crate::tensor::Tensor;
use crate::weights::{param_name, param_shape, LayerWeights, LstmWeights, ParamKind};

/// The prefix [`save`] puts before every LSTM key.
pub const LSTM_PREFIX: &str = "lstm.";
/// The key of the head's weight `[O, D*H_out]`.
pub const HEAD_WEIGHT: &str = "head.weight";
/// The key of the head's bias `[O]`.
pub const HEAD_BIAS: &str = "head.bias";
/// The key of an `nn.Embedding` before the LSTM (a module saved with an `embedding` field).
pub const EMBEDDING_WEIGHT: &str = "embedding.weight";

/// A key of the LSTM state dict, split into its parts.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct LstmKey {
    prefix: String,
    kind: usize, // index into ParamKind::ALL
    layer: usize,
    direction: usize,
}

fn parse_key(key: &str) -> Option<LstmKey> {
    let (prefix, local) = match key.rfind('.') {
        Some(dot) => (&key[..=dot], &key[dot + 1..]),
        None => ("", key),
    };
    let (local, direction) = match local.strip_suffix("_reverse") {
        Some(rest) => (rest, 1),
        None => (local, 0),
    };
    let (stem, layer) = local.rsplit_once("_l")?;
    let layer: usize = layer
        .parse()
        .ok()
        .filter(|_| layer.chars().all(|c| c.is_ascii_digit()))?;
    let kind = ParamKind::ALL
        .iter()
        .position(|&k| param_name(k, 0, 0) == format!("{stem}_l0"))?;
    Some(LstmKey {
        prefix: prefix.to_string(),
        kind,
        layer,
        direction,
    })
}

fn format_err(path: &Path, message: String) -> Error {
    Error::Format {
        path: path.into(),
        message,
    }
}

/// Converts a tensor view to f32, whatever its float dtype.
fn to_f32(path: &Path, key: &str, view: &TensorView<'_>) -> Result<Tensor> {
    let bytes = view.data();
    let item = match view.dtype() {
        Dtype::F32 => 4,
        Dtype::F64 => 8,
        Dtype::F16 | Dtype::BF16 => 2,
        other => {
            return Err(format_err(
                path,
                format!("key '{key}' has dtype {other:?}; expected F32, F16, BF16 or F64"),
            ));
        }
    };
    // at most twice the bytes the file holds for it (F16 -> f32)
    let mut data: Vec<f32> = try_with_capacity(
        &format!("key '{key}' {:?} as f32", view.shape()),
        bytes.len() / item,
    )?;
    let chunks = bytes.chunks_exact(item);
    match view.dtype() {
        Dtype::F32 => data.extend(chunks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        Dtype::F64 => {
            data.extend(chunks.map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32))
        }
        Dtype::F16 => data.extend(chunks.map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())),
        _ => data.extend(chunks.map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())),
    }
    Tensor::new(view.shape().to_vec(), data)
        .map_err(|e| format_err(path, format!("key '{key}': {e}")))
}

/// Checks what the safetensors crate would sum unchecked: a header that fits in the file, and
/// every tensor's `data_offsets` inside the data that follows it (then no sum of offsets can
/// overflow). Shapes whose byte count differs from their offsets are named here too. A
/// header that is not a JSON object is left to the safetensors crate to report.
pub(crate) fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    let Some(len) = bytes.get(..8) else {
        return Ok(());
    };
    let header_len = u64::from_le_bytes(len.try_into().unwrap_or([0; 8]));
    let available = bytes.len() - 8;
    if header_len > available as u64 {
        return Err(format_err(
            path,
            format!(
                "not a valid safetensors file (the header claims {header_len} bytes but the \
                 file holds {available} after its length)"
            ),
        ));
    }
    let header_len = header_len as usize;
    let Ok(serde_json::Value::Object(header)) =
        serde_json::from_slice::<serde_json::Value>(&bytes[8..8 + header_len])
    else {
        return Ok(());
    };
    let data_len = (available - header_len) as u64;
    for (key, info) in header.iter().filter(|(key, _)| *key != "__metadata__") {
        let numbers = |field: &str| -> Option<Vec<u64>> {
            info.get(field)?
                .as_array()?
                .iter()
                .map(serde_json::Value::as_u64)
                .collect()
        };
        let Some(offsets) = numbers("data_offsets") else {
            continue;
        };
        if let [start, end] = offsets[..] {
            if start > end || end > data_len {
                return Err(format_err(
                    path,
                    format!(
                        "not a valid safetensors file (key '{key}' has data_offsets \
                         [{start}, {end}] but the file holds {data_len} bytes of data)"
                    ),
                ));
            }
            let item = match info.get("dtype").and_then(|d| d.as_str()) {
                Some("F64" | "I64" | "U64") => 8,
                Some("F32" | "I32" | "U32") => 4,
                Some("F16" | "BF16" | "I16" | "U16") => 2,
                _ => continue,
            };
            let Some(shape) = numbers("shape") else {
                continue;
            };
            let needed = shape.iter().try_fold(item, |n: u64, &d| n.checked_mul(d));
            if needed != Some(end - start) {
                let needed = needed.map_or("more than 2^64".into(), |n| n.to_string());
                return Err(format_err(
                    path,
                    format!(
                        "not a valid safetensors file (key '{key}' has shape {shape:?}, \
                         {needed} bytes, but data_offsets [{start}, {end}] hold {})",
                        end - start
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Loads an LSTM state dict (and head, if present) from a safetensors file.
/// `batch_first` is not stored in state dicts: it is false in the result.
pub fn load(path: &Path) -> Result<LstmWeights> {
    decode_at(path, &read_file(path)?)
}

/// [`load`] from the bytes of a safetensors file in memory (errors name
/// `<safetensors bytes>`).
pub fn decode(bytes: &[u8]) -> Result<LstmWeights> {
    decode_at(Path::new("<safetensors bytes>"), bytes)
}

/// [`load`] from the bytes of the file at `path`, already read (errors name `path`).
pub fn decode_at(path: &Path, bytes: &[u8]) -> Result<LstmWeights> {
    check_header(path, bytes)?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format_err(path, format!("not a valid safetensors file ({e})")))?;

    let mut lstm_keys: BTreeMap<LstmKey, String> = BTreeMap::new();
    let mut head_keys = Vec::new();
    for name in st.names() {
        if name == HEAD_WEIGHT || name == HEAD_BIAS {
            head_keys.push(name.to_string());
            continue;
        }
        if name == EMBEDDING_WEIGHT {
            continue;
        }
        let key = parse_key(name).ok_or_else(|| {
            format_err(
                path,
                format!(
                    "unexpected key '{name}': not an nn.LSTM parameter, head.weight, head.bias or embedding.weight"
                ),
            )
        })?;
        lstm_keys.insert(key, name.to_string());
    }
    let prefixes: BTreeSet<&str> = lstm_keys.keys().map(|k| k.prefix.as_str()).collect();
    let prefix = match prefixes.len() {
        0 => {
            return Err(format_err(
                path,
                "no nn.LSTM keys (weight_ih_l0, ...) found".into(),
            ))
        }
        1 => prefixes.into_iter().next().unwrap_or_default().to_string(),
        _ => {
            return Err(format_err(
                path,
                format!("LSTM keys have several prefixes {prefixes:?}; expected one common prefix"),
            ));
        }
    };
    let get = |kind: ParamKind, layer: usize, direction: usize| -> Result<Option<Tensor>> {
        let key = format!("{prefix}{}", param_name(kind, layer, direction));
        match st.tensor(&key) {
            Ok(view) => to_f32(path, &key, &view).map(Some),
            Err(_) => Ok(None),
        }
    };
    let required = |kind, layer, direction| -> Result<Tensor> {
        get(kind, layer, direction)?.ok_or_else(|| {
            format_err(
                path,
                format!(
                    "missing key '{prefix}{}'",
                    param_name(kind, layer, direction)
                ),
            )
        })
    };

    // Infer the configuration from layer 0.
    let w_ih0 = required(ParamKind::WeightIh, 0, 0)?;
    let w_hh0 = required(ParamKind::WeightHh, 0, 0)?;
    // layer 0's `kind` has `tensor`'s shape where `expected` was needed
    let bad_shape = |kind, tensor: &Tensor, expected: &str| {
        let key = format!("{prefix}{}", param_name(kind, 0, 0));
        let shape = tensor.shape();
        format_err(
            path,
            format!("key '{key}' has shape {shape:?}; expected {expected}"),
        )
    };
    if w_hh0.shape().len() != 2 || w_hh0.shape()[0] % 4 != 0 || w_hh0.shape()[0] == 0 {
        return Err(bad_shape(ParamKind::WeightHh, &w_hh0, "[4H, H_out]"));
    }
    if w_ih0.shape().len() != 2 {
        return Err(bad_shape(ParamKind::WeightIh, &w_ih0, "[4H, input_size]"));
    }
    let hidden = w_hh0.shape()[0] / 4;
    let proj_size = match get(ParamKind::WeightHr, 0, 0)? {
        Some(w_hr) if w_hr.shape().len() == 2 => w_hr.shape()[0],
        Some(w_hr) => return Err(bad_shape(ParamKind::WeightHr, &w_hr, "[proj_size, H]")),
        None => 0,
    };
    let config = LstmConfig {
        input_size: w_ih0.shape()[1],
        hidden_size: hidden,
        num_layers: lstm_keys
            .keys()
            .map(|k| k.layer.saturating_add(1))
            .max()
            .unwrap_or(1),
        bidirectional: lstm_keys.keys().any(|k| k.direction == 1),
        bias: get(ParamKind::BiasIh, 0, 0)?.is_some(),
        proj_size,
        batch_first: false,
        cell: cell_of(path, bytes, get(ParamKind::Peephole, 0, 0)?.is_some())?,
    };
    config
        .validate()
        .map_err(|e| format_err(path, e.to_string()))?;

    // Every parameter the config implies must be present with its shape; nothing else.
    let mut layers = Vec::new();
    let mut used = BTreeSet::new();
    for layer in 0..config.num_layers {
        for direction in 0..config.num_directions() {
            let mut fetch = |kind: ParamKind| -> Result<Option<Tensor>> {
                let key = format!("{prefix}{}", param_name(kind, layer, direction));
                let Some(shape) = param_shape(&config, kind, layer) else {
                    return Ok(None);
                };
                let tensor = required(kind, layer, direction)?;
                if tensor.shape() != shape.as_slice() {
                    return Err(format_err(
                        path,
                        format!(
                            "key '{key}' has shape {:?}; expected {shape:?} for this model",
                            tensor.shape()
                        ),
                    ));
                }
                used.insert(key);
                Ok(Some(tensor))
            };
            layers.push(LayerWeights {
                w_ih: fetch(ParamKind::WeightIh)?
                    .ok_or_else(|| format_err(path, "weight_ih missing".into()))?,
                w_hh: fetch(ParamKind::WeightHh)?
                    .ok_or_else(|| format_err(path, "weight_hh missing".into()))?,
                b_ih: fetch(ParamKind::BiasIh)?,
                b_hh: fetch(ParamKind::BiasHh)?,
                w_hr: fetch(ParamKind::WeightHr)?,
                w_p: fetch(ParamKind::Peephole)?,
            });
        }
    }
    if let Some(extra) = lstm_keys.values().find(|k| !used.contains(*k)) {
        return Err(format_err(
            path,
            format!(
                "key '{extra}' does not fit the model inferred from the other keys ({config:?})"
            ),
        ));
    }
    let mut weights =
        LstmWeights::from_layers(&config, layers).map_err(|e| format_err(path, e.to_string()))?;

    if !head_keys.is_empty() {
        let weight = match st.tensor(HEAD_WEIGHT) {
            Ok(view) => to_f32(path, HEAD_WEIGHT, &view)?,
            Err(_) => {
                return Err(format_err(
                    path,
                    format!("'{HEAD_BIAS}' is present but '{HEAD_WEIGHT}' is missing"),
                ))
            }
        };
        let bias = match st.tensor(HEAD_BIAS) {
            Ok(view) => Some(to_f32(path, HEAD_BIAS, &view)?),
            Err(_) => None,
        };
        let head = Linear::new(weight, bias).map_err(|e| format_err(path, e.to_string()))?;
        weights = weights
            .with_head(head)
            .map_err(|e| format_err(path, e.to_string()))?;
    }
    if let Ok(view) = st.tensor(EMBEDDING_WEIGHT) {
        let embedding = Embedding::new(to_f32(path, EMBEDDING_WEIGHT, &view)?)
            .map_err(|e| format_err(path, e.to_string()))?;
        weights = weights
            .with_embedding(embedding)
            .map_err(|e| format_err(path, e.to_string()))?;
    }
    Ok(weights)
}

/// The safetensors bytes of `weights`: LSTM keys under `lstm.`, the head as `head.*`, the
/// embedding as `embedding.weight`, F32.
pub fn encode(weights: &LstmWeights) -> Result<Vec<u8>> {
    let mut tensors: Vec<(String, &Tensor)> = weights
        .named_tensors()
        .into_iter()
        .map(|(name, t)| (format!("{LSTM_PREFIX}{name}"), t))
        .collect();
    if let Some(embedding) = weights.embedding() {
        tensors.push((EMBEDDING_WEIGHT.into(), &embedding.weight));
    }
    if let Some(head) = weights.head() {
        tensors.push((HEAD_WEIGHT.into(), &head.weight));
        if let Some(bias) = &head.bias {
            tensors.push((HEAD_BIAS.into(), bias));
        }
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, t)| {
            (
                name,
                t.shape().to_vec(),
                t.data().iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data).map(|view| (name.clone(), view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Format {
            path: "<safetensors encoding>".into(),
            message: e.to_string(),
        })?;
    let mut metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    metadata.extend(cell_metadata(&weights.config().cell));
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Format {
        path: "<safetensors encoding>".into(),
        message: e.to_string(),
    })
}

/// The metadata key of a cell variant's clip (absent: none).
pub const CLIP_KEY: &str = "lstm_wgpu.clip";
/// The metadata key of `input_forget` (`1`; absent: 0).
pub const INPUT_FORGET_KEY: &str = "lstm_wgpu.input_forget";
/// The metadata key of the activations: `f,g,h` per direction, `;` between directions, each
/// as [`crate::cell::Activation`] displays (`Sigmoid,Tanh,Tanh;HardSigmoid(0.2,0.5),Tanh,Elu(1)`).
pub const ACTIVATIONS_KEY: &str = "lstm_wgpu.activations";

/// The metadata that records a cell variant (nothing for PyTorch's cell; the peepholes are
/// the `weight_p_l{k}` keys).
fn cell_metadata(cell: &crate::cell::Cell) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(clip) = cell.clip {
        out.push((CLIP_KEY.into(), clip.to_string()));
    }
    if cell.input_forget {
        out.push((INPUT_FORGET_KEY.into(), "1".into()));
    }
    if cell.activations != crate::cell::Cell::default().activations {
        let text: Vec<String> = cell
            .activations
            .iter()
            .map(|d| d.map(|a| a.to_string()).join(","))
            .collect();
        out.push((ACTIVATIONS_KEY.into(), text.join(";")));
    }
    out
}

/// The cell a file's metadata records (PyTorch's cell without those keys).
fn cell_of(path: &Path, bytes: &[u8], peephole: bool) -> Result<crate::cell::Cell> {
    let mut cell = crate::cell::Cell {
        peephole,
        ..Default::default()
    };
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| format_err(path, format!("not a valid safetensors file ({e})")))?;
    let Some(meta) = header.metadata() else {
        return Ok(cell);
    };
    let bad = |key: &str, value: &str| {
        format_err(
            path,
            format!("metadata {key} = `{value}`: {}", "not understood"),
        )
    };
    if let Some(v) = meta.get(CLIP_KEY) {
        cell.clip = Some(v.parse().map_err(|_| bad(CLIP_KEY, v))?);
    }
    if let Some(v) = meta.get(INPUT_FORGET_KEY) {
        cell.input_forget = match v.as_str() {
            "1" => true,
            "0" => false,
            _ => return Err(bad(INPUT_FORGET_KEY, v)),
        };
    }
    if let Some(v) = meta.get(ACTIVATIONS_KEY) {
        let directions: Vec<&str> = v.split(';').collect();
        if directions.len() != 2 {
            return Err(bad(ACTIVATIONS_KEY, v));
        }
        for (d, text) in directions.iter().enumerate() {
            // split on the commas between activations, not those inside parentheses
            let mut parts = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (i, ch) in text.char_indices() {
                match ch {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ',' if depth == 0 => {
                        parts.push(&text[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            parts.push(&text[start..]);
            if parts.len() != 3 {
                return Err(bad(ACTIVATIONS_KEY, v));
            }
            for (k, part) in parts.iter().enumerate() {
                cell.activations[d][k] = part
                    .parse()
                    .map_err(|e| format_err(path, format!("metadata {ACTIVATIONS_KEY}: {e}")))?;
            }
        }
    }
    Ok(cell)
}

/// Writes `weights` to `path` completely or not at all.
pub fn save(path: &Path, weights: &LstmWeights) -> Result<()> {
    write_atomic(path, &encode(weights)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_with_and_without_prefix() {
        let k = parse_key("weight_hh_l12_reverse").unwrap();
        assert_eq!(
            (k.prefix.as_str(), k.kind, k.layer, k.direction),
            ("", 1, 12, 1)
        );
        let k = parse_key("model.lstm.bias_ih_l0").unwrap();
        assert_eq!(
            (k.prefix.as_str(), k.kind, k.layer, k.direction),
            ("model.lstm.", 2, 0, 0)
        );
        for bad in [
            "weight_xx_l0",
            "weight_ih_lx",
            "weight_ih",
            "weight_ih_l0_backward",
            "embedding.weight",
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
    }
}
