//! Weights laid out for the fast CPU kernels, once per model.
//!
//! The recurrent product multiplies rows of h by *panels*: `[K, 4L]` blocks of the right-hand
//! matrix, row after row, so the kernel streams one contiguous block and keeps 4 vectors of
//! L lanes per row of h in registers. For the gates a panel holds L hidden units, all four
//! gates: packed column `u·4L + gate·L + lane` is gate `gate` of unit `u·L + lane`. That
//! puts i, f, g and o of a unit in the same lane of four registers, ready for the cell update.

use crate::cpu::CpuLayer;

/// Columns per panel, in vectors.
pub const PANEL_VECTORS: usize = 4;

/// `[K, N]` (`value(k, n)`) as `ceil(N / width)` panels of `[K, width]`, zero past N.
pub fn pack_panels(
    k_len: usize,
    n_len: usize,
    width: usize,
    value: impl Fn(usize, usize) -> f32,
) -> Vec<f32> {
    let panels = n_len.div_ceil(width);
    let mut out = vec![0.0; panels * k_len * width];
    for p in 0..panels {
        for k in 0..k_len {
            let row = &mut out[(p * k_len + k) * width..][..width];
            for (lane, slot) in row.iter_mut().enumerate() {
                let n = p * width + lane;
                if n < n_len {
                    *slot = value(k, n);
                }
            }
        }
    }
    out
}

/// The gate order of packed columns for `lanes`-wide vectors.
#[derive(Clone, Copy, Debug)]
pub struct GateLayout {
    pub hidden: usize,
    pub lanes: usize,
}

impl GateLayout {
    /// Hidden units rounded up to whole vectors.
    pub fn padded(&self) -> usize {
        self.hidden.div_ceil(self.lanes) * self.lanes
    }

    /// Unit blocks (one panel each).
    pub fn blocks(&self) -> usize {
        self.padded() / self.lanes
    }

    /// Packed column `n` as (gate, unit); the unit may be padding (≥ hidden).
    pub fn gate_unit(&self, n: usize) -> (usize, usize) {
        let width = 4 * self.lanes;
        let (block, within) = (n / width, n % width);
        (
            within / self.lanes,
            block * self.lanes + within % self.lanes,
        )
    }
}

/// One layer and direction's weights for the fast kernels.
#[derive(Clone, Debug)]
pub struct PackedDirection {
    pub gates: GateLayout,
    pub input_size: usize,
    /// H_out: the width of h (P with a projection, else H)
    pub h_out: usize,
    /// Panels of W_ihᵀ `[in, 4Hp]`, one per unit block (the input projection)
    pub w_ih: Vec<f32>,
    /// `[4Hp]`: b_ih + b_hh in packed column order
    pub bias: Vec<f32>,
    /// Panels of W_hhᵀ `[H_out, 4Hp]`, one per unit block
    pub w_hh: Vec<f32>,
    /// Panels of W_hrᵀ `[H, P]`, `4L` outputs each (with a projection)
    pub w_hr: Option<Vec<f32>>,
    /// `[3, Hp]`: the peepholes (i, f, o) by unit, zeros in the padding (with `cell.peephole`)
    pub peephole: Option<Vec<f32>>,
}

impl PackedDirection {
    pub fn new(layer: &CpuLayer<f32>, hidden: usize, lanes: usize) -> Self {
        let gates = GateLayout { hidden, lanes };
        let h_out = layer.w_hh.len() / (4 * hidden).max(1);
        let input_size = layer.w_ih.len() / (4 * hidden).max(1);
        let columns = 4 * gates.padded();
        // each packed column's source row, found once (not per element: a training step
        // packs the weights again)
        let source_row: Vec<Option<usize>> = (0..columns)
            .map(|n| {
                let (gate, unit) = gates.gate_unit(n);
                (unit < hidden).then_some(gate * hidden + unit)
            })
            .collect();
        let bias = source_row
            .iter()
            .map(|row| row.map_or(0.0, |row| layer.b_ih[row] + layer.b_hh[row]))
            .collect();
        let width = PANEL_VECTORS * lanes;
        let w_ih = pack_panels(input_size, columns, width, |k, n| {
            source_row[n].map_or(0.0, |row| layer.w_ih[row * input_size + k])
        });
        let w_hh = pack_panels(h_out, columns, width, |k, n| {
            source_row[n].map_or(0.0, |row| layer.w_hh[row * h_out + k])
        });
        let w_hr = layer
            .w_hr
            .as_ref()
            .map(|w_hr| pack_panels(hidden, h_out, width, |k, p| w_hr[p * hidden + k]));
        let padded = gates.padded();
        let peephole = layer.w_p.as_ref().map(|p| {
            let mut out = vec![0.0; 3 * padded];
            for k in 0..3 {
                out[k * padded..k * padded + hidden].copy_from_slice(&p[k * hidden..][..hidden]);
            }
            out
        });
        Self {
            gates,
            input_size,
            h_out,
            w_ih,
            bias,
            w_hh,
            w_hr,
            peephole,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_columns_interleave_by_block() {
        let g = GateLayout {
            hidden: 10,
            lanes: 4,
        };
        assert_eq!((g.padded(), g.blocks()), (12, 3));
        assert_eq!(g.gate_unit(0), (0, 0));
        assert_eq!(g.gate_unit(5), (1, 1));
        assert_eq!(g.gate_unit(15), (3, 3));
        assert_eq!(g.gate_unit(16), (0, 4));
        assert_eq!(g.gate_unit(47), (3, 11));
    }

    #[test]
    fn panels_hold_columns_in_order_and_zero_padding() {
        // [K=2, N=3] with value 10k + n, panels of width 2
        let p = pack_panels(2, 3, 2, |k, n| (10 * k + n) as f32);
        assert_eq!(p, vec![0.0, 1.0, 10.0, 11.0, 2.0, 0.0, 12.0, 0.0]);
    }
}
