//! `lstm-wgpu tune`: measures the kernel choices of shapes on this GPU, prints what the table
//! ran beside what won, and saves the winners to the wisdom file.

use std::path::{Path, PathBuf};

use lstm_wgpu::gpu::wisdom::search::{Budget, TuneReport, Verdict};
use lstm_wgpu::gpu::wisdom::Wisdom;
use lstm_wgpu::gpu::{tune_forward, tune_training, ContextOptions, GpuContext, Tuning};
use lstm_wgpu::{Dims, Error, LstmConfig, Result};

use crate::gpu_args::GpuArgs;
use crate::stdout::outln;

#[derive(clap::Args)]
pub struct Args {
    /// Sequence length T
    #[arg(long, required_unless_present = "shapes")]
    seq: Option<usize>,
    /// Batch size B
    #[arg(long, required_unless_present = "shapes")]
    batch: Option<usize>,
    /// Input size I
    #[arg(long, required_unless_present = "shapes")]
    input: Option<usize>,
    /// Hidden size H
    #[arg(long, required_unless_present = "shapes")]
    hidden: Option<usize>,
    #[arg(long, default_value_t = 1)]
    num_layers: usize,
    #[arg(long)]
    bidirectional: bool,
    /// The projection's size (0: none)
    #[arg(long, default_value_t = 0)]
    proj_size: usize,
    /// A file of shapes, one per line: `seq=128 batch=16 input=512 hidden=512` and optionally
    /// `layers=N`, `proj=N`, `bidirectional`, `train`; `#` starts a comment
    #[arg(long, conflicts_with_all = ["seq", "batch", "input", "hidden"])]
    shapes: Option<PathBuf>,
    /// Tune training steps (forward, backward, update) instead of forward passes
    #[arg(long)]
    train: bool,
    /// Seconds of measuring per shape (split among its kernel families; each family's table
    /// choice always runs)
    #[arg(long, default_value_t = 20.0)]
    budget_s: f64,
    /// Timed runs per candidate (after one warmup); the median counts
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The wisdom file to update (default: LSTM_WGPU_TUNE_FILE, else the cache directory)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also one JSON line per family and shape
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    gpu: GpuArgs,
}

/// One shape to tune.
#[derive(Clone, Debug, PartialEq)]
struct Shape {
    config: LstmConfig,
    dims: Dims,
    train: bool,
}

impl Shape {
    fn describe(&self) -> String {
        let c = &self.config;
        let mut text = format!(
            "T={} B={} I={} H={}",
            self.dims.seq_len, self.dims.batch, c.input_size, c.hidden_size
        );
        if c.num_layers > 1 {
            text += &format!(" L={}", c.num_layers);
        }
        if c.proj_size > 0 {
            text += &format!(" P={}", c.proj_size);
        }
        if c.bidirectional {
            text += " bidir";
        }
        text += if self.train { " train" } else { " fwd" };
        text
    }
}

/// The shapes of a `--shapes` file (errors name the file and line).
fn read_shapes(path: &Path, train: bool) -> Result<Vec<Shape>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut shapes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| Error::Input(format!("{}:{}: {why}", path.display(), n + 1));
        let (mut seq, mut batch, mut input, mut hidden) = (None, None, None, None);
        let (mut layers, mut proj, mut bidir, mut train_here) = (1, 0, false, train);
        for word in line.split_whitespace() {
            match word.split_once('=') {
                None if word == "bidirectional" => bidir = true,
                None if word == "train" => train_here = true,
                None => return Err(bad(&format!("`{word}`: expected key=N"))),
                Some((key, value)) => {
                    let value: usize = value
                        .parse()
                        .ok()
                        .filter(|&v| v > 0 || key == "proj")
                        .ok_or_else(|| bad(&format!("`{word}`: expected a positive integer")))?;
                    match key {
                        "seq" => seq = Some(value),
                        "batch" => batch = Some(value),
                        "input" => input = Some(value),
                        "hidden" => hidden = Some(value),
                        "layers" => layers = value,
                        "proj" => proj = value,
                        _ => return Err(bad(&format!("unknown key `{key}`"))),
                    }
                }
            }
        }
        let need = |v: Option<usize>, key: &str| v.ok_or_else(|| bad(&format!("no {key}=")));
        let config = LstmConfig::new(need(input, "input")?, need(hidden, "hidden")?)
            .num_layers(layers)
            .bidirectional(bidir)
            .proj_size(proj);
        config.validate().map_err(|e| bad(&e.to_string()))?;
        shapes.push(Shape {
            config,
            dims: Dims {
                seq_len: need(seq, "seq")?,
                batch: need(batch, "batch")?,
            },
            train: train_here,
        });
    }
    if shapes.is_empty() {
        return Err(Error::Input(format!("{}: no shapes", path.display())));
    }
    Ok(shapes)
}

fn shapes_of(args: &Args) -> Result<Vec<Shape>> {
    if let Some(path) = &args.shapes {
        return read_shapes(path, args.train);
    }
    let positive = |v: Option<usize>, flag: &str| {
        v.filter(|&v| v > 0)
            .ok_or_else(|| Error::Input(format!("--{flag} must be at least 1")))
    };
    let config = LstmConfig::new(
        positive(args.input, "input")?,
        positive(args.hidden, "hidden")?,
    )
    .num_layers(args.num_layers)
    .bidirectional(args.bidirectional)
    .proj_size(args.proj_size);
    config.validate()?;
    Ok(vec![Shape {
        config,
        dims: Dims {
            seq_len: positive(args.seq, "seq")?,
            batch: positive(args.batch, "batch")?,
        },
        train: args.train,
    }])
}

fn ms(t: Option<f64>) -> String {
    t.map_or("-".into(), |t| format!("{t:.3}"))
}

fn print_report(shape: &Shape, report: &TuneReport, json: bool) -> Result<()> {
    for f in &report.families {
        outln!(
            "{:<34} {:<10} {:<32} {:>9} {:<32} {:>9} {:>8}",
            shape.describe(),
            f.family.name(),
            f.table.0.to_string(),
            ms(f.table.1),
            f.chosen.0.to_string(),
            ms(f.chosen.1),
            f.speedup().map_or("-".into(), |s| format!("{s:.2}x"))
        )?;
        for (choice, verdict) in f.rejected() {
            let why = match verdict {
                Verdict::Wrong { max_error, at } => {
                    format!("wrong numbers (error {max_error:.2e} at output {at})")
                }
                Verdict::Failed(e) => format!("failed: {e}"),
                _ => continue,
            };
            outln!("    rejected {choice}: {why}")?;
        }
        if json {
            let timed = f
                .verdicts
                .iter()
                .filter(|(_, v)| matches!(v, Verdict::Timed { .. }))
                .count();
            let line = serde_json::json!({
                "shape": shape.describe(), "class": report.class.to_string(),
                "family": f.family.name(),
                "table": f.table.0.to_string(), "table_ms": f.table.1,
                "tuned": f.chosen.0.to_string(), "tuned_ms": f.chosen.1,
                "speedup": f.speedup(), "candidates": f.verdicts.len(), "timed": timed,
                "rejected": f.rejected().count(),
            });
            outln!("{line}")?;
        }
    }
    Ok(())
}

/// An error before any measuring when the wisdom file holds another adapter's choices (the
/// save at the end would refuse to replace them).
fn refuse_foreign_file(ctx: &GpuContext) -> Result<()> {
    let (Some(path), Some(ours)) = (ctx.wisdom_file(), ctx.adapter_key()) else {
        return Ok(());
    };
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(());
    };
    match Wisdom::decode_any(&bytes) {
        Ok(theirs) if theirs.adapter != ours => Err(Error::Input(format!(
            "{} holds the wisdom of {} ({}, {}): choose another file with --out",
            path.display(),
            theirs.adapter.name,
            theirs.adapter.backend,
            theirs.adapter.driver_info
        ))),
        _ => Ok(()),
    }
}

pub fn main(args: Args) -> Result<()> {
    if !(args.budget_s >= 0.0 && args.budget_s.is_finite()) || args.runs == 0 {
        return Err(Error::Input(
            "--budget-s must be a number of seconds >= 0, --runs at least 1".into(),
        ));
    }
    let shapes = shapes_of(&args)?;
    let ctx = GpuContext::with_options(ContextOptions {
        webgpu_limits: args.gpu.webgpu_limits,
        tuning: Tuning::Wisdom,
        wisdom_file: args.out.clone(),
    })?;
    refuse_foreign_file(&ctx)?;
    let budget = Budget {
        seconds: args.budget_s,
        runs: args.runs,
    };
    let clock = if ctx.has_timestamps() {
        "GPU timestamps"
    } else {
        "wall clock (no timestamp queries)"
    };
    outln!(
        "tuning {} shape(s) on {}, {clock}, budget {} s each, median of {} runs",
        shapes.len(),
        ctx.adapter_name(),
        args.budget_s,
        args.runs
    )?;
    outln!(
        "{:<34} {:<10} {:<32} {:>9} {:<32} {:>9} {:>8}",
        "shape",
        "family",
        "table choice",
        "ms",
        "tuned choice",
        "ms",
        "speed-up"
    )?;
    for shape in &shapes {
        let report = if shape.train {
            tune_training(&ctx, &shape.config, shape.dims, budget)?
        } else {
            tune_forward(&ctx, &shape.config, shape.dims, budget)?
        };
        print_report(shape, &report, args.json)?;
    }
    let path = ctx.save_wisdom()?;
    let held = ctx.wisdom().map_or(0, |w| w.len());
    outln!(
        "saved: {} ({held} choices for this adapter)",
        path.display()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_files_parse_and_bad_lines_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shapes.txt");
        std::fs::write(
            &path,
            "# benchmark shapes\nseq=64 batch=1 input=32 hidden=64\n\nseq=8 batch=16 input=4 hidden=8 layers=2 proj=4 bidirectional train # a comment\n",
        )
        .unwrap();
        let shapes = read_shapes(&path, false).unwrap();
        assert_eq!(shapes.len(), 2);
        assert_eq!(shapes[0].describe(), "T=64 B=1 I=32 H=64 fwd");
        assert_eq!(shapes[1].describe(), "T=8 B=16 I=4 H=8 L=2 P=4 bidir train");
        for (text, want) in [
            ("seq=1 batch=1 input=1\n", ":1: no hidden="),
            ("\nseq=0 batch=1 input=1 hidden=1\n", ":2: `seq=0`"),
            (
                "seq=1 batch=1 input=1 hidden=1 depth=2\n",
                "unknown key `depth`",
            ),
            (
                "seq=1 batch=1 input=1 hidden=1 fast\n",
                "`fast`: expected key=N",
            ),
            ("seq=1 batch=1 input=1 hidden=4 proj=4\n", ":1:"),
            ("# nothing\n", "no shapes"),
        ] {
            std::fs::write(&path, text).unwrap();
            let msg = read_shapes(&path, false).unwrap_err().to_string();
            assert!(msg.contains(want), "{text:?}: {msg}");
        }
        let msg = read_shapes(&dir.path().join("none.txt"), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("none.txt"), "{msg}");
    }
}
