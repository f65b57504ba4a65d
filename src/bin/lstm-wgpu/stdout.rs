//! Every line the binary prints goes through [`write_line`] (or [`outln!`]; raw bytes through
//! [`write_bytes`]): when stdout is closed (the reader left, as in `lstm-wgpu info | head -1`),
//! the process ends quietly with status 0 instead of panicking.

use std::fmt::Arguments;
use std::io::{ErrorKind, Write};

use lstm_wgpu::{Error, Result};

/// Writes `line` and a newline to stdout, flushed. A broken pipe exits the process with
/// status 0; any other write error is returned.
pub fn write_line(line: Arguments) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(source) => Err(Error::Io {
            path: "stdout".into(),
            source,
        }),
    }
}

/// `println!` through [`write_line`]; evaluates to `lstm_wgpu::Result<()>`.
macro_rules! outln {
    () => {
        $crate::stdout::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes `bytes` to stdout as they are (no newline, any bytes), flushed. A broken pipe exits
/// the process with status 0; any other write error is returned.
pub fn write_bytes(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(source) => Err(Error::Io {
            path: "stdout".into(),
            source,
        }),
    }
}
