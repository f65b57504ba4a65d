//! `lstm-wgpu init`: PyTorch-initialised weights, saved as safetensors.

use std::path::PathBuf;

use lstm_wgpu::io::safetensors;
use lstm_wgpu::{Linear, LstmConfig, LstmWeights, Result};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    input_size: usize,
    #[arg(long)]
    hidden_size: usize,
    #[arg(long, default_value_t = 1)]
    num_layers: usize,
    #[arg(long)]
    bidirectional: bool,
    /// Projection size (0 = none)
    #[arg(long, default_value_t = 0)]
    proj_size: usize,
    /// No bias_ih/bias_hh
    #[arg(long)]
    no_bias: bool,
    /// Add a Linear head with this many outputs
    #[arg(long)]
    head: Option<usize>,
    /// Add an nn.Embedding of this many tokens before the LSTM (N(0, 1), as PyTorch): the
    /// model then takes int64 token ids [T, B]
    #[arg(long)]
    embedding: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file (keys under `lstm.`, head under `head.`, embedding as `embedding.weight`)
    #[arg(long)]
    out: PathBuf,
}

pub fn main(args: Args) -> Result<()> {
    let config = LstmConfig::new(args.input_size, args.hidden_size)
        .num_layers(args.num_layers)
        .bidirectional(args.bidirectional)
        .proj_size(args.proj_size)
        .bias(!args.no_bias);
    let mut weights = LstmWeights::init(&config, args.seed)?;
    if let Some(out_features) = args.head {
        if out_features == 0 {
            return Err(lstm_wgpu::Error::Config("--head must be at least 1".into()));
        }
        let width = config.num_directions() * config.output_size();
        weights = weights.with_head(Linear::init(
            width,
            out_features,
            args.seed.wrapping_add(1),
        )?)?;
    }
    if let Some(vocab) = args.embedding {
        if vocab == 0 {
            return Err(lstm_wgpu::Error::Config(
                "--embedding must be at least 1".into(),
            ));
        }
        let embedding =
            lstm_wgpu::Embedding::init(vocab, args.input_size, args.seed.wrapping_add(2))?;
        weights = weights.with_embedding(embedding)?;
    }
    safetensors::save(&args.out, &weights)
}
