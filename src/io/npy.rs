//! `.npy` arrays: f32 tensors (f64 converted) and integer lengths. Read by the small header
//! parser here (the subset numpy writes), written via the `npyz` crate. Reading does not go
//! through npyz because its header parsing multiplies a hostile shape without overflow checks
//! (a panic in debug builds, an empty array in release) and allocates from the header length
//! before checking it; here every size is checked against the file before anything is
//! allocated.

use std::path::Path;

use crate::error::{Error, Result};
use crate::host::{element_count, try_with_capacity};
use crate::io::atomic::write_atomic;
use crate::io::read_file;
use crate::tensor::Tensor;

/// The name errors give to bytes decoded from memory.
const BYTES: &str = "<npy bytes>";

fn format_err(path: &Path, message: String) -> Error {
    Error::Format {
        path: path.into(),
        message,
    }
}

/// What a `.npy` header says, checked against the bytes that follow it.
#[derive(Debug)]
struct Header {
    /// The numpy type code without byte order, e.g. `f4`.
    code: String,
    /// `>` in the descr: the elements are stored big-endian.
    big_endian: bool,
    shape: Vec<usize>,
    /// Where the data starts (after the header's padding).
    data_start: usize,
}

/// Parses the header of the `.npy` bytes `bytes` (read from `path`); [`Header::data`] checks
/// that the data it describes is exactly what follows it. The header is parsed here, not by a
/// general Python-literal parser, so that no header (nested, huge numbers, huge lengths)
/// can make the reader recurse deeply, overflow or allocate more than the file.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let invalid = |why: String| format_err(path, format!("not a valid .npy file ({why})"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(invalid("no \\x93NUMPY magic at the start".into()));
    }
    let (text_start, header_len) = match bytes[6] {
        1 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 if bytes.len() < 12 => {
            return Err(invalid("the file ends inside its preamble".into()))
        }
        2 | 3 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        major => {
            return Err(invalid(format!(
                "format version {major}.{} is not 1.0, 2.0 or 3.0",
                bytes[7]
            )))
        }
    };
    let data_start = text_start + header_len;
    if data_start > bytes.len() {
        return Err(invalid(format!(
            "the header claims {header_len} bytes but the file holds {} after the preamble",
            bytes.len() - text_start
        )));
    }
    let text = std::str::from_utf8(&bytes[text_start..data_start])
        .map_err(|_| invalid("the header is not text".into()))?;
    let fields = parse_dict(text).map_err(|why| invalid(format!("header: {why}")))?;
    let field = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| invalid(format!("the header has no '{key}'")))
    };
    let descr = match field("descr")? {
        Value::Str(descr) => descr.clone(),
        _ => return Err(invalid("'descr' is not a type string".into())),
    };
    match field("fortran_order")? {
        Value::Bool(false) => {}
        Value::Bool(true) => {
            return Err(format_err(
                path,
                "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
            ))
        }
        _ => return Err(invalid("'fortran_order' is not True or False".into())),
    }
    let shape = match field("shape")? {
        Value::Tuple(dims) => dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<Vec<usize>, _>>()
            .map_err(|_| invalid(format!("shape {dims:?} does not fit this machine")))?,
        _ => return Err(invalid("'shape' is not a tuple of integers".into())),
    };
    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'<' | b'|' | b'=') => (false, descr[1..].to_string()),
        Some(b'>') => (true, descr[1..].to_string()),
        _ => (false, descr),
    };
    Ok(Header {
        code,
        big_endian,
        shape,
        data_start,
    })
}

impl Header {
    /// The data of elements of `item` bytes: exactly the bytes the shape needs, else an error
    /// naming the shape and both sizes (checked before anything is allocated for them).
    fn data<'b>(&self, path: &Path, bytes: &'b [u8], item: usize) -> Result<&'b [u8]> {
        let data = &bytes[self.data_start..];
        let needed = element_count("", &self.shape, item)
            .ok()
            .and_then(|n| n.checked_mul(item));
        if needed != Some(data.len()) {
            let needed = needed.map_or("more than 2^64".to_string(), |n| n.to_string());
            return Err(format_err(
                path,
                format!(
                    "the header claims shape {:?} of dtype {} ({needed} bytes of data) but the \
                     file holds {} bytes after the header",
                    self.shape,
                    self.code,
                    data.len()
                ),
            ));
        }
        Ok(data)
    }
}

/// A value of a `.npy` header's dict.
#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// The `{'key': value, ...}` literal numpy writes, values being strings, `True`/`False` and
/// tuples (or lists) of integers; anything else is an error naming the position.
fn parse_dict(text: &str) -> std::result::Result<Vec<(String, Value)>, String> {
    let s = text.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize| {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let at = |i: usize, what: &str| format!("expected {what} at byte {i}");
    let string = |i: &mut usize| -> std::result::Result<String, String> {
        let quote = s[*i];
        let end = s[*i + 1..]
            .iter()
            .position(|&c| c == quote)
            .ok_or_else(|| at(*i, "a closing quote"))?;
        let value = &text[*i + 1..*i + 1 + end];
        *i += end + 2;
        Ok(value.to_string())
    };
    skip(&mut i);
    if s.get(i) != Some(&b'{') {
        return Err(at(i, "'{'"));
    }
    i += 1;
    let mut fields: Vec<(String, Value)> = Vec::new();
    loop {
        skip(&mut i);
        match s.get(i) {
            Some(b'}') => {
                i += 1;
                break;
            }
            Some(b'\'' | b'"') => {}
            _ => return Err(at(i, "a key or '}'")),
        }
        let key = string(&mut i)?;
        skip(&mut i);
        if s.get(i) != Some(&b':') {
            return Err(at(i, "':'"));
        }
        i += 1;
        skip(&mut i);
        if !["descr", "fortran_order", "shape"].contains(&key.as_str()) {
            return Err(format!("unexpected key '{key}'"));
        }
        if key == "descr" && s.get(i) == Some(&b'[') {
            return Err("'descr' is a list of fields: structured arrays are not supported".into());
        }
        let value = match s.get(i) {
            Some(b'\'' | b'"') => Value::Str(string(&mut i)?),
            Some(b'T') if s[i..].starts_with(b"True") => {
                i += 4;
                Value::Bool(true)
            }
            Some(b'F') if s[i..].starts_with(b"False") => {
                i += 5;
                Value::Bool(false)
            }
            Some(&open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                i += 1;
                let mut dims = Vec::new();
                loop {
                    skip(&mut i);
                    if s.get(i) == Some(&close) {
                        i += 1;
                        break;
                    }
                    let digits = s[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if digits == 0 {
                        return Err(at(i, "a non-negative integer"));
                    }
                    let dim: u64 = text[i..i + digits]
                        .parse()
                        .map_err(|_| format!("dimension {} is too large", &text[i..i + digits]))?;
                    dims.push(dim);
                    i += digits;
                    if s.get(i) == Some(&b'L') {
                        i += 1; // Python 2's long suffix
                    }
                    skip(&mut i);
                    match s.get(i) {
                        Some(b',') => i += 1,
                        Some(&c) if c == close => {}
                        _ => return Err(at(i, "',' or the tuple's end")),
                    }
                }
                Value::Tuple(dims)
            }
            _ => return Err(at(i, "a string, True, False or a tuple")),
        };
        if fields.iter().any(|(k, _)| *k == key) {
            return Err(format!("key '{key}' appears twice"));
        }
        fields.push((key, value));
        skip(&mut i);
        match s.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            _ => return Err(at(i, "',' or '}'")),
        }
    }
    skip(&mut i);
    if i != s.len() {
        return Err(at(i, "only padding after the dict"));
    }
    Ok(fields)
}

/// The elements of `header`'s data in `bytes`, `N` bytes each, converted by `convert`;
/// [`crate::Error::HostMemory`] when the host cannot hold them.
fn elements<const N: usize, T>(
    path: &Path,
    header: &Header,
    bytes: &[u8],
    convert: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let data = header.data(path, bytes, N)?;
    let mut out = try_with_capacity(
        &format!("array {:?} of dtype {}", header.shape, header.code),
        data.len() / N,
    )?;
    out.extend(data.chunks_exact(N).map(|chunk| {
        let mut b = [0u8; N];
        b.copy_from_slice(chunk);
        if header.big_endian {
            b.reverse();
        }
        convert(b)
    }));
    Ok(out)
}

/// Reads a float array (float32, or float64 converted) with its shape.
pub fn read_f32(path: &Path) -> Result<Tensor> {
    decode_f32_at(path, &read_file(path)?)
}

/// [`read_f32`] from the bytes of a `.npy` file in memory (errors name `<npy bytes>`).
pub fn decode_f32(bytes: &[u8]) -> Result<Tensor> {
    decode_f32_at(Path::new(BYTES), bytes)
}

fn decode_f32_at(path: &Path, bytes: &[u8]) -> Result<Tensor> {
    let header = parse_header(path, bytes)?;
    let data: Vec<f32> = match header.code.as_str() {
        "f4" => elements(path, &header, bytes, f32::from_le_bytes)?,
        "f8" => elements(path, &header, bytes, |b| f64::from_le_bytes(b) as f32)?,
        other => {
            return Err(format_err(
                path,
                format!("dtype {other} is not supported: expected float32 or float64"),
            ));
        }
    };
    Tensor::new(header.shape, data)
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
    decode_i64_at(path, &read_file(path)?)
}

/// [`read_i64`] from the bytes of a `.npy` file in memory (errors name `<npy bytes>`).
pub fn decode_i64(bytes: &[u8]) -> Result<Tensor<i64>> {
    decode_i64_at(Path::new(BYTES), bytes)
}

fn decode_i64_at(path: &Path, bytes: &[u8]) -> Result<Tensor<i64>> {
    let header = parse_header(path, bytes)?;
    let data: Vec<i64> = match header.code.as_str() {
        "i8" => elements(path, &header, bytes, i64::from_le_bytes)?,
        "i4" => elements(path, &header, bytes, |b| i64::from(i32::from_le_bytes(b)))?,
        other => {
            return Err(format_err(
                path,
                format!("dtype {other} is not supported: expected int64 or int32"),
            ))
        }
    };
    Tensor::new(header.shape, data)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file of `version` (1 or 2) with this header dict and data.
    fn file(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x93, b'N', b'U', b'M', b'P', b'Y', version, 0];
        let header = format!("{dict}          \n");
        match version {
            1 => bytes.extend((header.len() as u16).to_le_bytes()),
            _ => bytes.extend((header.len() as u32).to_le_bytes()),
        }
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        bytes
    }

    #[test]
    fn the_dtypes_and_layouts_numpy_writes_are_read() {
        let be: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        let dict = "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }";
        assert_eq!(
            decode_f32(&file(1, dict, &be)).unwrap().data(),
            &[1.5, -2.0]
        );
        let f8: Vec<u8> = [0.25f64; 6].iter().flat_map(|x| x.to_le_bytes()).collect();
        let dict = "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": [3, 2L]}";
        let t = decode_f32(&file(2, dict, &f8)).unwrap();
        assert_eq!((t.shape(), t.data()), (&[3, 2][..], &[0.25f32; 6][..]));
        let i4: Vec<u8> = [7i32, -1].iter().flat_map(|x| x.to_le_bytes()).collect();
        let dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
        assert_eq!(decode_i64(&file(1, dict, &i4)).unwrap().data(), &[7, -1]);
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
        let scalar = decode_f32(&file(1, dict, &2.5f32.to_le_bytes())).unwrap();
        assert_eq!((scalar.shape(), scalar.data()), (&[][..], &[2.5][..]));
    }

    #[test]
    fn what_the_readers_refuse_is_named() {
        let four = [0u8; 16];
        for (dict, data, needle) in [
            (
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                &four[..4],
                "structured arrays",
            ),
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                &four[..],
                "Fortran-order",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                &four[..],
                "claims shape [3] of dtype f4 (12 bytes of data) but the file holds 16",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
                &four[..],
                "non-negative integer",
            ),
            (
                "{'descr': '<f4', 'shape': (4,), }",
                &four[..],
                "no 'fortran_order'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}",
                &four[..],
                "unexpected key 'x'",
            ),
            (
                "{'descr': '<u2', 'fortran_order': False, 'shape': (8,), }",
                &four[..],
                "dtype u2 is not supported",
            ),
        ] {
            let err = decode_f32(&file(1, dict, data)).unwrap_err().to_string();
            assert!(err.contains(needle), "{dict}: {err}");
        }
        let mut long = file(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
            &[],
        );
        long[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
        let err = decode_f32(&long).unwrap_err().to_string();
        assert!(err.contains("the header claims 65535 bytes"), "{err}");
    }
}
