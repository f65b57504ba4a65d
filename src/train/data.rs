//! A small synthetic task for examples and tests: next-step prediction of noisy sine waves.

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::error::Result;
use crate::host::HostBytes;
use crate::host::{element_count, try_filled};
use crate::tensor::Tensor;

/// `batch` sine waves of random phase and frequency in [0.2, 0.4] rad/step, each with
/// Gaussian-ish noise of standard deviation `noise` (sum of uniforms). Returns
/// (x `[T, B, 1]`, y `[T, B, 1]`) with `y[t] = x[t + 1]`: predict the next value.
pub fn noisy_sines(
    seq_len: usize,
    batch: usize,
    noise: f32,
    seed: u64,
) -> Result<(Tensor, Tensor)> {
    let mut rng = StdRng::seed_from_u64(seed);
    // the series [T + 1, B] and its two slices x and y
    let rows = seq_len.saturating_add(1);
    let what = format!("noisy sines [T + 1, B] = [{rows}, {batch}] and x, y");
    HostBytes::new()
        .add(&[rows, batch], 4, 3)
        .check(|| what.clone())?;
    let mut series = try_filled(&what, element_count(&what, &[rows, batch], 4)?, 0.0f32)?;
    for b in 0..batch {
        let phase = rng.random_range(0.0..std::f32::consts::TAU);
        let omega = rng.random_range(0.2..0.4);
        for t in 0..=seq_len {
            // sum of 4 uniforms on [-1, 1] has variance 4/3; scale to `noise`
            let n: f32 = (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum::<f32>()
                * noise
                * (0.75f32).sqrt();
            series[t * batch + b] = (omega * t as f32 + phase).sin() + n;
        }
    }
    let x = series[..seq_len * batch].to_vec();
    let y = series[batch..].to_vec();
    Ok((
        Tensor::new([seq_len, batch, 1], x)?,
        Tensor::new([seq_len, batch, 1], y)?,
    ))
}

/// Mean squared error of predicting each next value by the current one (`y[t] ≈ x[t]`): the
/// bar a model that learned anything about the dynamics must clear.
pub fn persistence_mse(x: &Tensor, y: &Tensor) -> f32 {
    let n = x.data().len() as f32;
    x.data()
        .iter()
        .zip(y.data())
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f32>()
        / n
}
