//! `lstm-wgpu stream`: one timestep per stdin line in, one output line per step out, the
//! state carried between lines (on the GPU with `--device gpu`).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use lstm_wgpu::cpu::{CpuStream, FastCpuLstm};
use lstm_wgpu::gpu::{GpuLstm, GpuState};
use lstm_wgpu::io::atomic::write_all_atomic;
use lstm_wgpu::io::npy;
use lstm_wgpu::{Error, LstmConfig, Result, Tensor};

use crate::cpu_args::CpuArgs;
use crate::gpu_args::GpuArgs;
use crate::stdout::outln;
use crate::Device;

#[derive(clap::Args)]
pub struct Args {
    /// Model weights (nn.LSTM state dict, optional head.*), safetensors; unidirectional
    #[arg(long)]
    weights: PathBuf,
    /// Streams per line: each stdin line holds B×I numbers, row-major [B, I] (B token ids for
    /// a model with an embedding)
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, value_enum, default_value = "gpu")]
    device: Device,
    /// Initial hidden state [L, B, H_out] (.npy); zeros when absent
    #[arg(long)]
    h0: Option<PathBuf>,
    /// Initial cell state [L, B, H] (.npy); zeros when absent
    #[arg(long)]
    c0: Option<PathBuf>,
    /// Where to write the final h [L, B, H_out] at the end of input
    #[arg(long)]
    hn: Option<PathBuf>,
    /// Where to write the final c [L, B, H] at the end of input
    #[arg(long)]
    cn: Option<PathBuf>,
    #[command(flatten)]
    gpu: GpuArgs,
    #[command(flatten)]
    cpu: CpuArgs,
}

/// One step of either path: `[B, I]` in, `[B, O]` out, the state carried inside.
trait Stepper {
    fn step(&mut self, x_t: &Tensor) -> Result<Tensor>;
    /// (h, c) now.
    fn state(&mut self) -> Result<(Tensor, Tensor)>;
}

struct OnGpu {
    model: GpuLstm,
    state: GpuState,
}

impl Stepper for OnGpu {
    fn step(&mut self, x_t: &Tensor) -> Result<Tensor> {
        self.model.step(x_t, &self.state)
    }
    fn state(&mut self) -> Result<(Tensor, Tensor)> {
        self.state.read(self.model.context())
    }
}

/// On the CPU: a [`CpuStream`] (one thread, nothing allocated per step).
struct OnCpu {
    stream: CpuStream,
}

impl Stepper for OnCpu {
    fn step(&mut self, x_t: &Tensor) -> Result<Tensor> {
        let b = self.stream.batch();
        let y = self.stream.step(x_t.data())?;
        Tensor::new([b, y.len() / b], y.to_vec())
    }
    fn state(&mut self) -> Result<(Tensor, Tensor)> {
        let cfg = &self.stream.model().model().config;
        let (layers, b) = (cfg.num_layers, self.stream.batch());
        let mut h = Tensor::full([layers, b, cfg.output_size()], 0.0);
        let mut c = Tensor::full([layers, b, cfg.hidden_size], 0.0);
        self.stream.state_into(h.data_mut(), c.data_mut())?;
        Ok((h, c))
    }
}

pub fn main(args: Args) -> Result<()> {
    let weights = crate::weights_arg::load(&args.weights)?;
    let config = weights.config().clone();
    if config.bidirectional {
        return Err(Error::Config(format!(
            "{}: stream needs a unidirectional model; this one is bidirectional",
            args.weights.display()
        )));
    }
    if args.batch == 0 {
        return Err(Error::Config("--batch must be at least 1".into()));
    }
    let (h0, c0) = initial_state(&args, &config)?;
    let mut stepper: Box<dyn Stepper> = match args.device {
        Device::Gpu => {
            let ctx = args.gpu.context()?;
            let state = GpuState::from_host(&ctx, &config, &h0, &c0)?;
            Box::new(OnGpu {
                model: GpuLstm::new(&ctx, &weights)?,
                state,
            })
        }
        Device::Cpu => {
            // the flag is still checked; a stream's step runs on one thread
            args.cpu.threads()?;
            let mut stream = CpuStream::new(FastCpuLstm::new(&weights), args.batch)?;
            stream.set_state(h0.data(), c0.data())?;
            Box::new(OnCpu { stream })
        }
    };
    let (batch, input) = (args.batch, config.input_size);
    for (index, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|source| Error::Io {
            path: "stdin".into(),
            source,
        })?;
        let x_t = match weights.embedding() {
            // a token model: B ids per line, looked up in the embedding
            Some(embedding) => {
                let ids = parse_ids(&line, index + 1, batch)?;
                embedding
                    .lookup(&Tensor::new([batch], ids)?)
                    .map_err(|e| Error::Input(format!("stdin line {}: {e}", index + 1)))?
            }
            None => Tensor::new([batch, input], parse_step(&line, index + 1, batch, input)?)?,
        };
        let y = stepper.step(&x_t)?;
        let text: Vec<String> = y.data().iter().map(|v| v.to_string()).collect();
        outln!("{}", text.join(" "))?;
    }
    let (h, c) = stepper.state()?;
    let mut files = Vec::new();
    if let Some(path) = &args.hn {
        files.push((path.as_path(), npy::encode_f32(&h)?));
    }
    if let Some(path) = &args.cn {
        files.push((path.as_path(), npy::encode_f32(&c)?));
    }
    let files: Vec<(&Path, &[u8])> = files.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    write_all_atomic(&files)
}

/// h0 `[L, B, H_out]` and c0 `[L, B, H]` from the files, zeros when absent.
fn initial_state(args: &Args, config: &LstmConfig) -> Result<(Tensor, Tensor)> {
    let layers = config.num_layers;
    let load = |path: &Option<PathBuf>, what: &str, width: usize| -> Result<Tensor> {
        let shape = [layers, args.batch, width];
        match path {
            Some(path) => {
                let t = npy::read_f32(path)?;
                t.expect_shape(&format!("{} ({what})", path.display()), &shape)?;
                Ok(t)
            }
            None => Tensor::try_full(shape, 0.0),
        }
    };
    Ok((
        load(&args.h0, "h0 [L, B, H_out]", config.output_size())?,
        load(&args.c0, "c0 [L, B, H]", config.hidden_size)?,
    ))
}

/// The B×I numbers of stdin line `number` (separated by whitespace or commas; `NaN` and
/// `inf` are numbers).
fn parse_step(line: &str, number: usize, batch: usize, input: usize) -> Result<Vec<f32>> {
    let want = batch.checked_mul(input).ok_or_else(|| {
        Error::Input(format!(
            "B={batch} × I={input} numbers per line overflow usize"
        ))
    })?;
    let fields: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|f| !f.is_empty())
        .collect();
    if fields.len() != want {
        return Err(Error::Input(format!(
            "stdin line {number}: expected {want} numbers (B={batch} × I={input}), got {}",
            fields.len()
        )));
    }
    fields
        .iter()
        .enumerate()
        .map(|(k, f)| {
            f.parse::<f32>().map_err(|_| {
                Error::Input(format!(
                    "stdin line {number}: number {} of {want} is not a number: {f:?}",
                    k + 1
                ))
            })
        })
        .collect()
}

/// The B token ids of stdin line `number` (integers, separated by whitespace or commas).
fn parse_ids(line: &str, number: usize, batch: usize) -> Result<Vec<i64>> {
    let fields: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|f| !f.is_empty())
        .collect();
    if fields.len() != batch {
        return Err(Error::Input(format!(
            "stdin line {number}: expected {batch} token ids (B={batch}), got {}",
            fields.len()
        )));
    }
    fields
        .iter()
        .enumerate()
        .map(|(k, f)| {
            f.parse::<i64>().map_err(|_| {
                Error::Input(format!(
                    "stdin line {number}: token {} of {batch} is not an integer id: {f:?}",
                    k + 1
                ))
            })
        })
        .collect()
}
