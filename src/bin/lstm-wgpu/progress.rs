//! A progress bar on stderr, shown only when the work will take more than about a second.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use lstm_wgpu::Result;

use crate::stdout::outln;

/// Counts finished units; draws a bar once the work has run for a second with more to go.
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    shown: bool,
}

impl Progress {
    pub fn new(total: u64, label: &str) -> Self {
        let bar = ProgressBar::hidden();
        bar.set_length(total);
        bar.set_message(label.to_string());
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self {
            bar,
            start: Instant::now(),
            shown: false,
        }
    }

    pub fn tick(&mut self) {
        self.bar.inc(1);
        if !self.shown
            && self.start.elapsed() > Duration::from_secs(1)
            && self.bar.position() < self.bar.length().unwrap_or(0)
        {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }

    /// Prints a line above the bar (or to stdout, while it is hidden).
    pub fn bar_println(&self, line: &str) -> Result<()> {
        if self.shown {
            self.bar.println(line);
            Ok(())
        } else {
            outln!("{line}")
        }
    }

    pub fn set_label(&mut self, label: &str) {
        self.bar.set_message(label.to_string());
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
