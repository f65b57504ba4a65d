//! ONNX tensors (`TensorProto`) to this crate's tensors: float32, float16 and float64 as f32,
//! int32 and int64 as i64; raw or typed data; external data refused.

use super::proto::{TensorProto, DOUBLE, FLOAT, FLOAT16, INT32, INT64};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

fn bad(name: &str, why: String) -> Error {
    Error::Input(format!("ONNX tensor `{name}`: {why}"))
}

/// The shape, checked: every dimension non-negative and the element count within `usize`.
fn shape_of(t: &TensorProto, name: &str) -> Result<(Vec<usize>, usize)> {
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(name, format!("dimension {d}"))))
        .collect::<Result<_>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(name, format!("shape {shape:?} overflows")))?;
    Ok((shape, count))
}

fn check_inline(t: &TensorProto, name: &str) -> Result<()> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        let file = t
            .external_data
            .iter()
            .find(|e| e.key.as_deref() == Some("location"))
            .and_then(|e| e.value.clone())
            .unwrap_or_default();
        return Err(bad(
            name,
            format!(
                "stored as external data (`{file}`): not supported; save the model with its \
                 weights inside (onnx.save(model, path, save_as_external_data=False))"
            ),
        ));
    }
    Ok(())
}

/// Little-endian elements of `width` bytes from `raw`, exactly `count` of them.
fn raw_elements<'a>(
    raw: &'a [u8],
    width: usize,
    count: usize,
    name: &str,
) -> Result<std::slice::ChunksExact<'a, u8>> {
    if raw.len() != count.saturating_mul(width) {
        return Err(bad(
            name,
            format!(
                "{} bytes of raw data for {count} elements of {width} bytes",
                raw.len()
            ),
        ));
    }
    Ok(raw.chunks_exact(width))
}

/// A float tensor (float32, float16 or float64, rounded to f32).
pub fn to_f32(t: &TensorProto) -> Result<Tensor> {
    let name = t.name.as_deref().unwrap_or("?");
    check_inline(t, name)?;
    let (shape, count) = shape_of(t, name)?;
    let raw = t.raw_data.as_deref();
    let data: Vec<f32> = match (t.data_type.unwrap_or(0), raw) {
        (FLOAT, Some(raw)) => raw_elements(raw, 4, count, name)?
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        (FLOAT, None) => t.float_data.clone(),
        (FLOAT16, Some(raw)) => raw_elements(raw, 2, count, name)?
            .map(|b| half::f16::from_le_bytes(b.try_into().unwrap()).to_f32())
            .collect(),
        // typed float16 data: each int32 holds the 16 bits
        (FLOAT16, None) => t
            .int32_data
            .iter()
            .map(|&v| half::f16::from_bits(v as u16).to_f32())
            .collect(),
        (DOUBLE, Some(raw)) => raw_elements(raw, 8, count, name)?
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
            .collect(),
        (DOUBLE, None) => t.double_data.iter().map(|&v| v as f32).collect(),
        (other, _) => {
            return Err(bad(
                name,
                format!("data type {other}: expected float32 (1), float16 (10) or float64 (11)"),
            ))
        }
    };
    if data.len() != count {
        return Err(bad(
            name,
            format!("{} values for shape {shape:?} ({count})", data.len()),
        ));
    }
    Tensor::new(shape, data)
}

/// An integer tensor (int32 or int64).
pub fn to_i64(t: &TensorProto) -> Result<Tensor<i64>> {
    let name = t.name.as_deref().unwrap_or("?");
    check_inline(t, name)?;
    let (shape, count) = shape_of(t, name)?;
    let raw = t.raw_data.as_deref();
    let data: Vec<i64> = match (t.data_type.unwrap_or(0), raw) {
        (INT64, Some(raw)) => raw_elements(raw, 8, count, name)?
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        (INT64, None) => t.int64_data.clone(),
        (INT32, Some(raw)) => raw_elements(raw, 4, count, name)?
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64)
            .collect(),
        (INT32, None) => t.int32_data.iter().map(|&v| v as i64).collect(),
        (other, _) => {
            return Err(bad(
                name,
                format!("data type {other}: expected int32 (6) or int64 (7)"),
            ))
        }
    };
    if data.len() != count {
        return Err(bad(
            name,
            format!("{} values for shape {shape:?} ({count})", data.len()),
        ));
    }
    Tensor::new(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(data_type: i32, dims: &[i64]) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(data_type),
            name: Some("t".into()),
            ..Default::default()
        }
    }

    #[test]
    fn every_float_type_raw_and_typed_reads_as_f32() {
        let want = [0.5f32, -1.25, 3.0];
        let mut t = proto(FLOAT, &[3]);
        t.raw_data = Some(want.iter().flat_map(|v| v.to_le_bytes()).collect());
        assert_eq!(to_f32(&t).unwrap().data(), want);
        let mut t = proto(FLOAT, &[3]);
        t.float_data = want.to_vec();
        assert_eq!(to_f32(&t).unwrap().data(), want);
        let halves: Vec<half::f16> = want.iter().map(|&v| half::f16::from_f32(v)).collect();
        let mut t = proto(FLOAT16, &[3]);
        t.raw_data = Some(halves.iter().flat_map(|v| v.to_le_bytes()).collect());
        assert_eq!(to_f32(&t).unwrap().data(), want);
        let mut t = proto(FLOAT16, &[3]);
        t.int32_data = halves.iter().map(|v| v.to_bits() as i32).collect();
        assert_eq!(to_f32(&t).unwrap().data(), want);
        let mut t = proto(DOUBLE, &[1, 3]);
        t.raw_data = Some(
            want.iter()
                .flat_map(|&v| (v as f64).to_le_bytes())
                .collect(),
        );
        assert_eq!(to_f32(&t).unwrap().shape(), [1, 3]);
        let mut t = proto(DOUBLE, &[3]);
        t.double_data = want.iter().map(|&v| v as f64).collect();
        assert_eq!(to_f32(&t).unwrap().data(), want);
        let mut t = proto(INT32, &[2]);
        t.int32_data = vec![4, -2];
        assert_eq!(to_i64(&t).unwrap().data(), [4, -2]);
    }

    #[test]
    fn wrong_sizes_types_and_external_data_are_errors() {
        let mut t = proto(FLOAT, &[4]);
        t.raw_data = Some(vec![0; 12]);
        assert!(to_f32(&t).unwrap_err().to_string().contains("12 bytes"));
        let mut t = proto(FLOAT, &[2]);
        t.float_data = vec![1.0];
        assert!(to_f32(&t).is_err());
        assert!(to_f32(&proto(INT64, &[1]))
            .unwrap_err()
            .to_string()
            .contains("data type 7"));
        let mut t = proto(FLOAT, &[-1]);
        t.float_data = vec![];
        assert!(to_f32(&t).is_err());
        let mut t = proto(FLOAT, &[i64::MAX, i64::MAX]);
        t.float_data = vec![];
        assert!(to_f32(&t).unwrap_err().to_string().contains("overflows"));
        let mut t = proto(FLOAT, &[1]);
        t.data_location = Some(1);
        t.external_data = vec![super::super::proto::StringStringEntryProto {
            key: Some("location".into()),
            value: Some("w.bin".into()),
        }];
        assert!(to_f32(&t).unwrap_err().to_string().contains("w.bin"));
    }
}
