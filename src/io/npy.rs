//! `.npy` arrays: f32 tensors (f64 converted) and integer lengths, via the `npyz` crate.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use crate::tensor::Tensor;

fn open(path: &Path) -> Result<npyz::NpyFile<std::io::Cursor<Vec<u8>>>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    let file = npyz::NpyFile::new(std::io::Cursor::new(bytes))
        .map_err(|e| format_err(path, format!("not a valid .npy file ({e})")))?;
    if file.order() != npyz::Order::C {
        return Err(format_err(
            path,
            "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
        ));
    }
    Ok(file)
}

fn format_err(path: &Path, message: String) -> Error {
    Error::Format {
        path: path.into(),
        message,
    }
}

/// The numpy type code without byte order, e.g. `f4`.
fn type_code(file: &npyz::NpyFile<std::io::Cursor<Vec<u8>>>) -> String {
    let descr = file.dtype().descr();
    descr
        .trim_matches(|c| c == '\'' || c == '"')
        .trim_start_matches(['<', '>', '|', '='])
        .to_string()
}

/// Reads a float array (float32, or float64 converted) with its shape.
pub fn read_f32(path: &Path) -> Result<Tensor> {
    let file = open(path)?;
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let code = type_code(&file);
    let read_err = |e: std::io::Error| format_err(path, format!("reading data: {e}"));
    let data: Vec<f32> = match code.as_str() {
        "f4" => file.into_vec::<f32>().map_err(read_err)?,
        "f8" => file
            .into_vec::<f64>()
            .map_err(read_err)?
            .into_iter()
            .map(|x| x as f32)
            .collect(),
        other => {
            return Err(format_err(
                path,
                format!("dtype {other} is not supported: expected float32 or float64"),
            ));
        }
    };
    Tensor::new(shape, data)
}

/// Reads a 1-D int64 or int32 array of non-negative values (sequence lengths).
pub fn read_lengths(path: &Path) -> Result<Vec<usize>> {
    let values = read_i64(path)?;
    if values.shape().len() != 1 {
        return Err(format_err(
            path,
            format!("lengths must be 1-D [B], got shape {:?}", values.shape()),
        ));
    }
    values
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            usize::try_from(v)
                .map_err(|_| format_err(path, format!("lengths[{i}] = {v} is negative")))
        })
        .collect()
}

/// Reads a 1-D or N-D int64 (or int32) array with its shape (class targets).
pub fn read_i64(path: &Path) -> Result<Tensor<i64>> {
    let file = open(path)?;
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let code = type_code(&file);
    let read_err = |e: std::io::Error| format_err(path, format!("reading data: {e}"));
    let data: Vec<i64> = match code.as_str() {
        "i8" => file.into_vec::<i64>().map_err(read_err)?,
        "i4" => file
            .into_vec::<i32>()
            .map_err(read_err)?
            .into_iter()
            .map(i64::from)
            .collect(),
        other => {
            return Err(format_err(
                path,
                format!("dtype {other} is not supported: expected int64 or int32"),
            ))
        }
    };
    Tensor::new(shape, data)
}

/// The `.npy` bytes of a float32 tensor.
pub fn encode_f32(tensor: &Tensor) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let shape: Vec<u64> = tensor.shape().iter().map(|&d| d as u64).collect();
    let to_err = |e: std::io::Error| Error::Format {
        path: "<npy encoding>".into(),
        message: e.to_string(),
    };
    {
        use npyz::WriterBuilder;
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut bytes)
            .begin_nd()
            .map_err(to_err)?;
        writer
            .extend(tensor.data().iter().copied())
            .map_err(to_err)?;
        writer.finish().map_err(to_err)?;
    }
    Ok(bytes)
}

/// Writes a float32 tensor completely or not at all.
pub fn write_f32(path: &Path, tensor: &Tensor) -> Result<()> {
    write_atomic(path, &encode_f32(tensor)?)
}
