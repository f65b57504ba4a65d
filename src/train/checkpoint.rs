//! Checkpoint files: a [`Checkpoint`] as one safetensors file. The tensors are the trainer's
//! flat parameters and moments (F32), the carried state, the step history and evaluations
//! (F64 rows) and the best weights (a safetensors model inside a U8 tensor); the scalars
//! (step, schedule, best, identity) are JSON in the header's metadata. Reading checks every
//! key, type and shape, so a truncated or corrupt file is an error naming what is wrong.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{json, Value};

use super::job::{Checkpoint, EvalRecord, JobState, StepRecord};
use super::metrics::Metrics;
use super::schedule::ScheduleState;
use super::TrainerSnapshot;
use crate::error::{Error, Result};
use crate::io::safetensors as model_file;
use crate::tensor::Tensor;

/// What the metadata's `format` says.
const FORMAT: &str = "lstm-wgpu checkpoint";
/// The layout version this code writes and reads.
const VERSION: u64 = 1;
/// Columns of `job.history`: step, epoch, loss, accuracy (NaN: none), lr.
const HISTORY_COLUMNS: usize = 5;
/// Columns of `job.evals`: step, epoch, loss, accuracy, perplexity (NaN: none), counted.
const EVAL_COLUMNS: usize = 6;

/// The bytes of a checkpoint file.
pub fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    let (trainer, job) = (&checkpoint.trainer, &checkpoint.job);
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut f32s = |name: &str, shape: Vec<usize>, data: &[f32]| {
        if !data.is_empty() {
            let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.push((name.into(), Dtype::F32, shape, bytes));
        }
    };
    f32s(
        "trainer.params",
        vec![trainer.params.len()],
        &trainer.params,
    );
    f32s(
        "trainer.moment1",
        vec![trainer.moment1.len()],
        &trainer.moment1,
    );
    f32s(
        "trainer.moment2",
        vec![trainer.moment2.len()],
        &trainer.moment2,
    );
    if let Some((h, c)) = &trainer.carried {
        f32s("trainer.carried_h", h.shape().to_vec(), h.data());
        f32s("trainer.carried_c", c.shape().to_vec(), c.data());
    }
    let opt = |v: Option<f32>| v.map_or(f64::NAN, f64::from);
    let history: Vec<f64> = job
        .history
        .iter()
        .flat_map(|r| {
            [
                r.step as f64,
                r.epoch as f64,
                r.loss as f64,
                opt(r.accuracy),
                r.lr,
            ]
        })
        .collect();
    let evals: Vec<f64> = job.evals.iter().flat_map(eval_row).collect();
    for (name, rows, columns, data) in [
        ("job.history", job.history.len(), HISTORY_COLUMNS, history),
        ("job.evals", job.evals.len(), EVAL_COLUMNS, evals),
    ] {
        if rows > 0 {
            let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.push((name.into(), Dtype::F64, vec![rows, columns], bytes));
        }
    }
    if let Some((_, weights)) = &job.best {
        let bytes = model_file::encode(weights)?;
        tensors.push(("job.best_model".into(), Dtype::U8, vec![bytes.len()], bytes));
    }
    let best = job
        .best
        .as_ref()
        .map(|(record, _)| eval_row(record).to_vec());
    let meta = json!({
        "step": job.step,
        "schedule": schedule_json(&job.schedule),
        "best": best.map(|row| row.iter().map(|v| finite(*v)).collect::<Vec<_>>()),
        "evals_since_best": job.evals_since_best,
        "stopped_early": job.stopped_early,
    });
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("job".to_string(), meta.to_string()),
        (
            "identity".to_string(),
            json!(checkpoint.identity).to_string(),
        ),
    ]);
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|view| (name.clone(), view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| encoding_error(e.to_string()))?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| encoding_error(e.to_string()))
}

/// Reads the checkpoint file at `path`.
pub fn load(path: &Path) -> Result<Checkpoint> {
    decode(path, &crate::io::read_file(path)?)
}

/// A checkpoint from the bytes of its file (`path` names it in errors).
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    model_file::check_header(path, bytes)?;
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| {
        bad(format!(
            "not a checkpoint: not a valid safetensors file ({e})"
        ))
    })?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        bad(format!(
            "not a checkpoint: not a valid safetensors file ({e})"
        ))
    })?;
    let meta = metadata.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(
            "not a checkpoint (no lstm-wgpu checkpoint format in its metadata; a model file?)"
                .into(),
        ));
    }
    let version = meta.get("version").cloned().unwrap_or_default();
    if version != VERSION.to_string() {
        return Err(bad(format!(
            "checkpoint version {version}: this build reads version {VERSION}"
        )));
    }
    let json = |key: &str| -> Result<Value> {
        let text = meta
            .get(key)
            .ok_or_else(|| bad(format!("the metadata has no '{key}'")))?;
        serde_json::from_str(text).map_err(|e| bad(format!("metadata '{key}': {e}")))
    };
    let identity: BTreeMap<String, String> = serde_json::from_value(json("identity")?)
        .map_err(|e| bad(format!("metadata 'identity': {e}")))?;
    let job_meta = json("job")?;
    let field = |name: &str| -> Result<&Value> {
        job_meta
            .get(name)
            .ok_or_else(|| bad(format!("metadata 'job' has no '{name}'")))
    };
    let uint = |name: &str| -> Result<u64> {
        field(name)?
            .as_u64()
            .ok_or_else(|| bad(format!("metadata 'job.{name}' is not a count")))
    };

    let tensor = |name: &str, dtype: Dtype| -> Result<Option<(Vec<usize>, &[u8])>> {
        match st.tensor(name) {
            Ok(view) if view.dtype() == dtype => Ok(Some((view.shape().to_vec(), view.data()))),
            Ok(view) => Err(bad(format!(
                "key '{name}' is {:?}, expected {dtype:?}",
                view.dtype()
            ))),
            Err(_) => Ok(None),
        }
    };
    let f32s = |name: &str| -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        Ok(tensor(name, Dtype::F32)?.map(|(shape, data)| {
            let values = data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (shape, values)
        }))
    };
    let rows = |name: &str, columns: usize| -> Result<Vec<Vec<f64>>> {
        let Some((shape, data)) = tensor(name, Dtype::F64)? else {
            return Ok(Vec::new());
        };
        if shape.len() != 2 || shape[1] != columns {
            return Err(bad(format!(
                "key '{name}' has shape {shape:?}, expected [rows, {columns}]"
            )));
        }
        let values: Vec<f64> = data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect();
        Ok(values.chunks_exact(columns).map(<[f64]>::to_vec).collect())
    };

    let (_, params) =
        f32s("trainer.params")?.ok_or_else(|| bad("missing key 'trainer.params'".into()))?;
    let moment =
        |name: &str| -> Result<Vec<f32>> { Ok(f32s(name)?.map(|(_, v)| v).unwrap_or_default()) };
    let carried = match (f32s("trainer.carried_h")?, f32s("trainer.carried_c")?) {
        (Some((hs, h)), Some((cs, c))) => Some((
            Tensor::new(hs, h).map_err(|e| bad(e.to_string()))?,
            Tensor::new(cs, c).map_err(|e| bad(e.to_string()))?,
        )),
        (None, None) => None,
        _ => {
            return Err(bad(
                "the carried state has h without c or c without h".into()
            ))
        }
    };
    let step = uint("step")?;
    let trainer = TrainerSnapshot {
        step,
        params,
        moment1: moment("trainer.moment1")?,
        moment2: moment("trainer.moment2")?,
        carried,
    };

    let nan = |v: f64| (!v.is_nan()).then_some(v as f32);
    let history = rows("job.history", HISTORY_COLUMNS)?
        .into_iter()
        .map(|r| StepRecord {
            step: r[0] as u64,
            epoch: r[1] as u64,
            loss: r[2] as f32,
            accuracy: nan(r[3]),
            lr: r[4],
        })
        .collect();
    let evals = rows("job.evals", EVAL_COLUMNS)?
        .iter()
        .map(|r| eval_record(r))
        .collect();
    let best_record = match field("best")? {
        Value::Null => None,
        Value::Array(values) if values.len() == EVAL_COLUMNS => {
            let row: Vec<f64> = values
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect();
            Some(eval_record(&row))
        }
        other => return Err(bad(format!("metadata 'job.best' is {other}"))),
    };
    let best = match (best_record, tensor("job.best_model", Dtype::U8)?) {
        (Some(record), Some((_, bytes))) => Some((
            record,
            model_file::decode(bytes).map_err(|e| bad(format!("key 'job.best_model': {e}")))?,
        )),
        (None, None) => None,
        _ => {
            return Err(bad(
                "the best evaluation and its weights do not come together".into(),
            ))
        }
    };
    let job = JobState {
        step,
        schedule: schedule_from_json(field("schedule")?)
            .ok_or_else(|| bad("metadata 'job.schedule' is not a schedule's state".into()))?,
        history,
        evals,
        best,
        evals_since_best: uint("evals_since_best")?,
        stopped_early: field("stopped_early")?.as_bool().unwrap_or(false),
    };
    Ok(Checkpoint {
        identity,
        trainer,
        job,
    })
}

fn eval_row(r: &EvalRecord) -> [f64; EVAL_COLUMNS] {
    let opt = |v: Option<f32>| v.map_or(f64::NAN, f64::from);
    [
        r.step as f64,
        r.epoch as f64,
        r.metrics.loss as f64,
        opt(r.metrics.accuracy),
        opt(r.metrics.perplexity),
        r.metrics.counted as f64,
    ]
}

fn eval_record(r: &[f64]) -> EvalRecord {
    let nan = |v: f64| (!v.is_nan()).then_some(v as f32);
    EvalRecord {
        step: r[0] as u64,
        epoch: r[1] as u64,
        metrics: Metrics {
            loss: r[2] as f32,
            accuracy: nan(r[3]),
            perplexity: nan(r[4]),
            counted: r[5] as usize,
        },
    }
}

/// JSON has no NaN: none.
fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn schedule_json(s: &ScheduleState) -> Value {
    json!({
        "epoch_lr": s.epoch_lr,
        "epochs_stepped": s.epochs_stepped,
        "best": s.best,
        "bad_evals": s.bad_evals,
    })
}

fn schedule_from_json(v: &Value) -> Option<ScheduleState> {
    Some(ScheduleState {
        epoch_lr: v.get("epoch_lr")?.as_f64()?,
        epochs_stepped: v.get("epochs_stepped")?.as_u64()?,
        best: v.get("best").and_then(Value::as_f64),
        bad_evals: v.get("bad_evals")?.as_u64()?,
    })
}

fn encoding_error(message: String) -> Error {
    Error::Format {
        path: "<checkpoint encoding>".into(),
        message,
    }
}
