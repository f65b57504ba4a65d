//! Writing files completely or not at all.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it over `path`.
/// On any failure the temporary file is removed and an existing `path` is left untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_all_atomic(&[(path, bytes)])
}

/// Writes several files so that a failure leaves every one of them as it was: all contents go
/// to temporary files first, and only when all are written are they renamed into place.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<()> {
    let mut written: Vec<(PathBuf, &Path)> = Vec::new();
    for (path, bytes) in files {
        let tmp = temp_path(path);
        if let Err(source) = write_synced(&tmp, bytes) {
            let _ = fs::remove_file(&tmp);
            for (tmp, _) in &written {
                let _ = fs::remove_file(tmp);
            }
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        written.push((tmp, path));
    }
    for (i, (tmp, path)) in written.iter().enumerate() {
        if let Err(source) = fs::rename(tmp, path) {
            for (tmp, _) in &written[i..] {
                let _ = fs::remove_file(tmp);
            }
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // unique per call, so that threads of one process writing the same file do not share one
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{call}", std::process::id()))
}
