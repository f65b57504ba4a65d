//! Files: safetensors state dicts (PyTorch names), ONNX LSTM models and `.npy` arrays. Every write is atomic.
//! Every read checks the sizes a file's header claims against the file's length before
//! allocating for them, so a corrupt or hostile file is an error, never a panic or an abort;
//! the `decode` functions read the same formats from bytes in memory.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::host::try_with_capacity;

pub mod atomic;
pub mod npy;
pub mod onnx;
pub mod safetensors;

/// The whole content of `path`, with [`Error::HostMemory`] (naming the file and its length)
/// where the host cannot hold it.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let io_err = |source| Error::Io {
        path: path.into(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    // a length the metadata does not know (a pipe) is 0: the read grows the buffer
    let len = file.metadata().map_or(0, |m| m.len());
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let mut bytes = try_with_capacity(&path.display().to_string(), len)?;
    file.read_to_end(&mut bytes).map_err(io_err)?;
    Ok(bytes)
}
