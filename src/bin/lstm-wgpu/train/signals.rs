//! Ctrl-C (SIGINT) and SIGTERM during training: the first one asks the run to stop after the
//! step in flight (then the checkpoint and --out are written and the exit status is 130 or
//! 143, as a shell reports a process those signals ended); a second one ends it at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Which signal asked the run to stop, if any.
pub struct Signals {
    interrupt: Arc<AtomicBool>,
    terminate: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers (on Unix; elsewhere nothing is caught).
    pub fn install() -> lstm_wgpu::Result<Self> {
        let signals = Self {
            interrupt: Arc::new(AtomicBool::new(false)),
            terminate: Arc::new(AtomicBool::new(false)),
        };
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGINT, SIGTERM};
            use signal_hook::flag;
            for (signal, set, status) in [
                (SIGINT, &signals.interrupt, 130),
                (SIGTERM, &signals.terminate, 143),
            ] {
                // a second signal while the first is being handled exits at once
                flag::register_conditional_shutdown(signal, status, Arc::clone(set))
                    .and_then(|_| flag::register(signal, Arc::clone(set)))
                    .map_err(|e| {
                        lstm_wgpu::Error::Config(format!("installing a signal handler: {e}"))
                    })?;
            }
        }
        Ok(signals)
    }

    /// The exit status the signal received asks for (130 for SIGINT, 143 for SIGTERM).
    pub fn status(&self) -> Option<i32> {
        if self.interrupt.load(Ordering::Relaxed) {
            Some(130)
        } else if self.terminate.load(Ordering::Relaxed) {
            Some(143)
        } else {
            None
        }
    }
}
