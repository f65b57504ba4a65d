//! What a training run shows and writes as it goes: the progress bar (epoch, step, loss, the
//! last validation loss, the rate, ETA), the checkpoints, and after it the `--log` CSV, the
//! `--plot` curves and the summary lines.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use lstm_wgpu::io::atomic::write_atomic;
use lstm_wgpu::train::checkpoint;
use lstm_wgpu::train::job::{Checkpoint, EvalRecord, Hooks, JobState, StepRecord};
use lstm_wgpu::train::Metrics;
use lstm_wgpu::Result;

use super::signals::Signals;

/// The run's hooks: the bar, the signals and the checkpoint file.
pub struct Report {
    bar: ProgressBar,
    signals: Signals,
    checkpoint: Option<PathBuf>,
    /// the last step's part of the bar's message, and the last evaluation's
    step_text: String,
    eval_text: String,
    text: bool,
    tokens: bool,
}

impl Report {
    pub fn new(
        (total, done): (u64, u64),
        checkpoint: Option<PathBuf>,
        signals: Signals,
        (text, tokens): (bool, bool),
    ) -> Self {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "train [{bar:30}] {pos}/{len} {msg} ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_position(done);
        Self {
            bar,
            signals,
            checkpoint,
            step_text: String::new(),
            eval_text: String::new(),
            text,
            tokens,
        }
    }

    /// The exit status a signal asked for.
    pub fn signal_status(&self) -> Option<i32> {
        self.signals.status()
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn redraw(&self) {
        self.bar
            .set_message(format!("{}{}", self.step_text, self.eval_text));
    }
}

impl Hooks for Report {
    fn stepped(&mut self, record: &StepRecord) {
        self.step_text = format!(
            "epoch {} {} lr {:.3e}",
            record.epoch + 1,
            describe_step(record, self.tokens),
            record.lr
        );
        self.redraw();
        self.bar.set_position(record.step);
    }

    fn evaluated(&mut self, record: &EvalRecord, best: bool) {
        self.eval_text = format!(
            " | val {}{}",
            describe_metrics(&record.metrics, self.text),
            if best { " (best)" } else { "" }
        );
        self.redraw();
    }

    fn wants_checkpoints(&self) -> bool {
        self.checkpoint.is_some()
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        match &self.checkpoint {
            // written whole or not at all: the previous checkpoint stays until this one is in
            Some(path) => write_atomic(path, &checkpoint::encode(checkpoint)?),
            None => Ok(()),
        }
    }

    fn interrupted(&mut self) -> bool {
        self.signals.status().is_some()
    }
}

/// `loss 0.12345` with `accuracy 0.9531` for cross-entropy and `perplexity 1.13` for a
/// token model: one step's score as the log prints it.
pub fn describe_step(record: &StepRecord, tokens: bool) -> String {
    let mut line = format!("loss {:.5}", record.loss);
    if let Some(accuracy) = record.accuracy {
        line.push_str(&format!(" accuracy {accuracy:.4}"));
        if tokens {
            line.push_str(&format!(" perplexity {:.3}", record.loss.exp()));
        }
    }
    line
}

/// `loss 1.2345 accuracy 0.61 perplexity 3.44 bits/byte 1.781`.
pub fn describe_metrics(m: &Metrics, text: bool) -> String {
    let mut line = format!("loss {:.5}", m.loss);
    if let Some(accuracy) = m.accuracy {
        line.push_str(&format!(" accuracy {accuracy:.4}"));
    }
    if let Some(perplexity) = m.perplexity {
        line.push_str(&format!(" perplexity {perplexity:.3}"));
    }
    if text {
        line.push_str(&format!(" bits/byte {:.4}", bits_per_byte(m.loss)));
    }
    line
}

/// A byte model's cross-entropy (nats per byte) in bits per byte.
pub fn bits_per_byte(loss: f32) -> f64 {
    loss as f64 / std::f64::consts::LN_2
}

/// The `--log` CSV: `step,loss` (with `accuracy` for cross-entropy and `perplexity` for a
/// token model), then `epoch,lr`, then with validation `val_loss` and its `val_accuracy`,
/// `val_perplexity` (and `val_bits_per_byte` for text) on the rows of evaluated steps.
pub fn log_csv(state: &JobState, tokens: bool, text: bool) -> String {
    let classes = state.history.iter().any(|s| s.accuracy.is_some());
    let evaluated = !state.evals.is_empty();
    let val_classes = state.evals.iter().any(|e| e.metrics.accuracy.is_some());
    let mut csv = String::from("step,loss");
    if classes {
        csv.push_str(",accuracy");
        if tokens {
            csv.push_str(",perplexity");
        }
    }
    csv.push_str(",epoch,lr");
    if evaluated {
        csv.push_str(",val_loss");
        if val_classes {
            csv.push_str(",val_accuracy,val_perplexity");
        }
        if text {
            csv.push_str(",val_bits_per_byte");
        }
    }
    csv.push('\n');
    let mut evals = state.evals.iter().peekable();
    for record in &state.history {
        csv.push_str(&format!("{},{}", record.step, record.loss));
        if classes {
            csv.push_str(&format!(
                ",{}",
                record.accuracy.map_or(String::new(), |a| a.to_string())
            ));
            if tokens {
                csv.push_str(&format!(",{}", record.loss.exp()));
            }
        }
        csv.push_str(&format!(",{},{}", record.epoch + 1, record.lr));
        if evaluated {
            let eval = evals.next_if(|e| e.step == record.step);
            let m = eval.map(|e| e.metrics);
            let cell = |v: Option<f32>| v.map_or(String::new(), |v| v.to_string());
            csv.push_str(&format!(",{}", cell(m.map(|m| m.loss))));
            if val_classes {
                csv.push_str(&format!(
                    ",{},{}",
                    cell(m.and_then(|m| m.accuracy)),
                    cell(m.and_then(|m| m.perplexity))
                ));
            }
            if text {
                let bits = m.map(|m| bits_per_byte(m.loss).to_string());
                csv.push_str(&format!(",{}", bits.unwrap_or_default()));
            }
        }
        csv.push('\n');
    }
    csv
}
