//! Re-layout of PyTorch-layout weights into what the kernels read (done once, at upload).

use crate::config::LstmConfig;
use crate::head::Linear;
use crate::weights::LstmWeights;

/// `W_ihᵀ` of both directions side by side: `[in, D*4H]`, element `(k, d*4H + r) = W_ih[d][r, k]`.
/// The projection gemm reads it with unit stride along its output columns.
pub fn input_weights_t(weights: &LstmWeights, layer: usize) -> Vec<f32> {
    let cfg = weights.config();
    let (d, gates, in_size) = (
        cfg.num_directions(),
        4 * cfg.hidden_size,
        cfg.layer_input_size(layer),
    );
    let width = d * gates;
    let mut out = vec![0.0; in_size * width];
    for dir in 0..d {
        let w = weights.layer(layer, dir).w_ih.data();
        for r in 0..gates {
            for k in 0..in_size {
                out[k * width + dir * gates + r] = w[r * in_size + k];
            }
        }
    }
    out
}

/// `b_ih + b_hh` of both directions: `[D*4H]` (zeros without bias).
pub fn combined_bias(weights: &LstmWeights, layer: usize) -> Vec<f32> {
    let cfg = weights.config();
    let mut out = Vec::new();
    for dir in 0..cfg.num_directions() {
        let w = weights.layer(layer, dir);
        match (&w.b_ih, &w.b_hh) {
            (Some(bi), Some(bh)) => out.extend(bi.data().iter().zip(bh.data()).map(|(a, b)| a + b)),
            _ => out.extend(std::iter::repeat_n(0.0, 4 * cfg.hidden_size)),
        }
    }
    out
}

/// `W_hh` as `[D, H_out, H, 4]`: element `((d*H_out + k)*H + j)*4 + g = W_hh[d][g*H + j, k]`,
/// so unit `j` finds its four gate weights for input `k` in one vec4. With peepholes, `[D, H,
/// 4]` follow: (P_i, P_f, P_o, 0) of unit j of direction d at vec4 `(D*H_out + d)*H + j`.
pub fn recurrent_weights_vec4(weights: &LstmWeights, layer: usize) -> Vec<f32> {
    let cfg = weights.config();
    let (h, h_out) = (cfg.hidden_size, cfg.output_size());
    let d = cfg.num_directions();
    let peep = if cfg.cell.peephole { d * h * 4 } else { 0 };
    let mut out = vec![0.0; d * h_out * h * 4 + peep];
    if cfg.cell.peephole {
        for dir in 0..d {
            // present (from_layers checks); absent through layer_mut, they stay zeros
            let Some(p) = weights.layer(layer, dir).w_p.as_ref() else {
                continue;
            };
            for j in 0..h {
                for g in 0..3 {
                    out[((d * h_out + dir) * h + j) * 4 + g] = p.data()[g * h + j];
                }
            }
        }
    }
    for dir in 0..cfg.num_directions() {
        let w = weights.layer(layer, dir).w_hh.data();
        for gate in 0..4 {
            for j in 0..h {
                for k in 0..h_out {
                    out[((dir * h_out + k) * h + j) * 4 + gate] = w[(gate * h + j) * h_out + k];
                }
            }
        }
    }
    out
}

/// `W_hrᵀ` as `[D, H, P]`: element `(d*H + j)*P + p = W_hr[d][p, j]`. Empty without projection.
pub fn projection_weights_t(weights: &LstmWeights, layer: usize) -> Vec<f32> {
    let cfg: &LstmConfig = weights.config();
    let (h, p) = (cfg.hidden_size, cfg.proj_size);
    let mut out = vec![0.0; cfg.num_directions() * h * p];
    for dir in 0..cfg.num_directions() {
        let Some(w) = &weights.layer(layer, dir).w_hr else {
            return Vec::new();
        };
        for pp in 0..p {
            for j in 0..h {
                out[(dir * h + j) * p + pp] = w.data()[pp * h + j];
            }
        }
    }
    out
}

/// The head's `weightᵀ`: `[W, O]`, element `(k, o) = weight[o, k]`.
pub fn head_weights_t(head: &Linear) -> Vec<f32> {
    let (out, width) = (head.out_features(), head.in_features());
    let w = head.weight.data();
    let mut t = vec![0.0; width * out];
    for o in 0..out {
        for k in 0..width {
            t[k * out + o] = w[o * width + k];
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LstmConfig, Tensor};

    /// Weights whose every element is its own PyTorch index plus an offset per direction,
    /// so each re-laid-out position can be checked exactly.
    fn indexed(config: &LstmConfig) -> LstmWeights {
        let mut w = LstmWeights::init(config, 0).unwrap();
        for dir in 0..config.num_directions() {
            let layer = w.layer_mut(0, dir);
            for t in [&mut layer.w_ih, &mut layer.w_hh] {
                let shape = t.shape().to_vec();
                let n = t.data().len();
                *t = Tensor::new(shape, (0..n).map(|i| (dir * 1000 + i) as f32).collect()).unwrap();
            }
            if let Some(t) = layer.w_hr.as_mut() {
                let shape = t.shape().to_vec();
                let n = t.data().len();
                *t = Tensor::new(shape, (0..n).map(|i| (dir * 1000 + i) as f32).collect()).unwrap();
            }
        }
        w
    }

    #[test]
    fn relayouts_place_every_element() {
        let config = LstmConfig::new(3, 2).bidirectional(true).proj_size(1);
        let w = indexed(&config);
        let (h, h_out, input) = (2, 1, 3);
        // W_ihᵀ: (k, d*8 + r) = W_ih[d][r, k] = d*1000 + r*3 + k
        let t = input_weights_t(&w, 0);
        for d in 0..2 {
            for r in 0..8 {
                for k in 0..input {
                    assert_eq!(t[k * 16 + d * 8 + r], (d * 1000 + r * input + k) as f32);
                }
            }
        }
        // W_hh vec4: ((d*H_out + k)*H + j)*4 + g = W_hh[d][g*H + j, k] = d*1000 + (g*H + j)*H_out + k
        let v = recurrent_weights_vec4(&w, 0);
        for d in 0..2 {
            for k in 0..h_out {
                for j in 0..h {
                    for g in 0..4 {
                        let want = d * 1000 + (g * h + j) * h_out + k;
                        assert_eq!(v[((d * h_out + k) * h + j) * 4 + g], want as f32);
                    }
                }
            }
        }
        // W_hrᵀ: (d*H + j)*P + p = W_hr[d][p, j] = d*1000 + p*H + j (P = 1)
        let p = projection_weights_t(&w, 0);
        for d in 0..2 {
            for j in 0..h {
                assert_eq!(p[d * h + j], (d * 1000 + j) as f32);
            }
        }
    }
}
