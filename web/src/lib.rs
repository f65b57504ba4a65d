//! lstm-wgpu in the browser: what the page (web/index.html) calls, over the library's async
//! API. Every call returns a promise; errors reject it with the library's message.
//!
//! - [`Engine`]: a device on the browser's WebGPU adapter, and the adapter's description.
//! - [`SineTrainer`]: trains a small LSTM with a linear head on noisy sines, on the GPU.
//! - [`Engine::run_safetensors`]: runs a user's `.safetensors` model on the GPU and on the
//!   CPU path (f64) and reports the output and their difference.

use lstm_wgpu::check::GPU_VS_F64;
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::{relevant_limits, ContextOptions, GpuContext, GpuLstm, GpuTrainer};
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::train::data::{noisy_sines, persistence_mse};
use lstm_wgpu::train::{OptimizerConfig, OptimizerKind, TrainOptions};
use lstm_wgpu::{io::safetensors, Inputs, Linear, LstmConfig, LstmWeights, Tensor};
use serde_json::json;
use wasm_bindgen::prelude::*;

fn js(e: lstm_wgpu::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// A device on the browser's adapter.
#[wasm_bindgen]
pub struct Engine {
    ctx: GpuContext,
}

#[wasm_bindgen]
impl Engine {
    /// Requests the browser's adapter and a device on it: with the adapter's own limits, or
    /// with WebGPU's defaults when `webgpu_limits` is true.
    pub async fn create(webgpu_limits: bool) -> Result<Engine, JsError> {
        let ctx = GpuContext::new_async(ContextOptions { webgpu_limits, ..Default::default() })
            .await
            .map_err(js)?;
        Ok(Engine { ctx })
    }

    /// The adapter (name, backend, driver) and the device's limits that matter here, as JSON.
    pub fn adapter(&self) -> String {
        let info = self.ctx.adapter_info();
        let limits: serde_json::Map<String, serde_json::Value> =
            relevant_limits(&self.ctx.caps().limits)
                .into_iter()
                .map(|(name, value)| (name.to_string(), json!(value)))
                .collect();
        json!({
            "name": self.ctx.adapter_name(),
            "backend": info.map(|i| format!("{:?}", i.backend)),
            "driver": info.map(|i| format!("{} {}", i.driver, i.driver_info).trim().to_string()),
            "device_type": info.map(|i| format!("{:?}", i.device_type)),
            "timestamps": self.ctx.has_timestamps(),
            "limits": limits,
        })
        .to_string()
    }

    /// Runs a PyTorch-layout `.safetensors` model (`bytes`, as [`safetensors::decode`] reads
    /// them) on `input`, a flat list of `T × B × I` numbers (`[T, B, I]`, or `[B, T, I]` for a
    /// `batch_first` model), or on a random input of that shape seeded by `seed` when `input` is empty. Returns JSON: the
    /// model, the input's shape, the output's shape and first values, and the largest
    /// difference between the GPU and the CPU path (f64) with the tolerance it must meet.
    pub async fn run_safetensors(
        &self,
        bytes: &[u8],
        input: Vec<f32>,
        seq_len: usize,
        batch: usize,
        seed: u64,
    ) -> Result<String, JsError> {
        let weights = safetensors::decode(bytes).map_err(js)?;
        let config = weights.config().clone();
        // the model's own layout: [B, T, I] when it was saved batch_first
        let shape = if config.batch_first {
            [batch, seq_len, config.input_size]
        } else {
            [seq_len, batch, config.input_size]
        };
        let x = if input.is_empty() {
            Tensor::new(shape, uniform(shape.iter().product(), seed))
        } else {
            Tensor::new(shape, input)
        }
        .map_err(js)?;
        let mut gpu = GpuLstm::new_async(&self.ctx, &weights).await.map_err(js)?;
        let got = gpu.forward_with_async(&Inputs::new(&x)).await.map_err(js)?;
        let want = CpuLstm::<f64>::new(&weights)
            .forward_with(&Inputs::new(&x.map(f64::from)))
            .map_err(js)?;
        let (variant, _) = gpu.kernel().map_err(js)?;
        let difference = max_difference(got.output.data(), want.output.data());
        let within = GPU_VS_F64.first_mismatch(got.output.data(), want.output.data());
        Ok(json!({
            "config": format!("{config:?}"),
            "head": weights.head().map(|h| h.out_features()),
            "kernel": variant.to_string(),
            "input_shape": x.shape(),
            "output_shape": got.output.shape(),
            "output_first": &got.output.data()[..got.output.data().len().min(8)],
            "max_abs_difference": difference,
            "tolerance": format!("abs {} + rel {}", GPU_VS_F64.abs, GPU_VS_F64.rel),
            "within_tolerance": within.is_none(),
        })
        .to_string())
    }
}

/// `len` numbers from U(-1, 1), seeded.
fn uniform(len: usize, seed: u64) -> Vec<f32> {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// The largest |got - want| (infinite when a value is not finite).
fn max_difference(got: &[f32], want: &[f64]) -> f64 {
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            let d = (g as f64 - w).abs();
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        })
        .fold(0.0, f64::max)
}

/// Next-step prediction of noisy sines (T = 30, B = 16, noise 0.05) by an LSTM of `hidden`
/// units and a linear head, trained with Adam on the GPU.
#[wasm_bindgen]
pub struct SineTrainer {
    trainer: GpuTrainer,
    x: Tensor,
    target: Target,
    baseline: f32,
    steps: u64,
}

#[wasm_bindgen]
impl SineTrainer {
    /// A model of `hidden` units (seeded by `seed`), Adam at learning rate `lr`.
    pub async fn create(
        engine: &Engine,
        hidden: usize,
        lr: f32,
        seed: u64,
    ) -> Result<SineTrainer, JsError> {
        let (x, y) = noisy_sines(30, 16, 0.05, seed + 2).map_err(js)?;
        let baseline = persistence_mse(&x, &y);
        let weights = LstmWeights::init(&LstmConfig::new(1, hidden), seed)
            .and_then(|w| w.with_head(Linear::init(hidden, 1, seed + 1)?))
            .map_err(js)?;
        let options = TrainOptions::new(Loss::Mse, OptimizerConfig::new(OptimizerKind::Adam, lr));
        let trainer = GpuTrainer::new_async(&engine.ctx, &weights, options)
            .await
            .map_err(js)?;
        Ok(SineTrainer {
            trainer,
            x,
            target: Target::Values(y),
            baseline,
            steps: 0,
        })
    }

    /// The loss of predicting each value by the previous one: what training must beat.
    pub fn baseline(&self) -> f32 {
        self.baseline
    }

    /// Runs `count` steps (waiting for each) and returns their losses, each before its update.
    pub async fn steps(&mut self, count: usize) -> Result<Vec<f32>, JsError> {
        let mut losses = Vec::with_capacity(count);
        for _ in 0..count {
            losses.push(
                self.trainer
                    .step_async(&self.x, &self.target)
                    .await
                    .map_err(js)?,
            );
            self.steps += 1;
        }
        Ok(losses)
    }

    /// The trained model as a `.safetensors` file (PyTorch's state_dict names), for
    /// [`Engine::run_safetensors`] or PyTorch.
    pub async fn safetensors(&self) -> Result<Vec<u8>, JsError> {
        let weights = self.trainer.weights_async().await.map_err(js)?;
        safetensors::encode(&weights).map_err(js)
    }
}
