//! A runtime directory for the GPU driver. Without `XDG_RUNTIME_DIR` (a container, a CI
//! runner, `ssh` without a login session) Mesa's window-system code prints `error:
//! XDG_RUNTIME_DIR is invalid or not set in the environment.` even for headless compute, and
//! a user reads that as our failure. So before anything else runs, an unset (or relative)
//! variable is pointed at a private directory of this user's: `$TMPDIR/lstm-wgpu-runtime-<uid>`,
//! mode 0700, used only if it is ours and nobody else can enter it.

/// Sets `XDG_RUNTIME_DIR` when it is missing; call first in `main`, before any thread starts.
#[cfg(unix)]
pub fn ensure() {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let given = std::env::var_os("XDG_RUNTIME_DIR");
    if given.is_some_and(|dir| std::path::Path::new(&dir).is_absolute()) {
        return;
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let name = match uid {
        Some(uid) => format!("lstm-wgpu-runtime-{uid}"),
        None => format!("lstm-wgpu-runtime-pid{}", std::process::id()),
    };
    let dir = std::env::temp_dir().join(name);
    // an existing directory is fine; whether it may be used is checked next
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let private = std::fs::symlink_metadata(&dir).is_ok_and(|m| {
        m.is_dir() && m.permissions().mode() & 0o077 == 0 && uid.is_none_or(|uid| m.uid() == uid)
    });
    if private {
        // edition 2021: safe; no other thread exists yet
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

/// Elsewhere the driver needs nothing.
#[cfg(not(unix))]
pub fn ensure() {}
