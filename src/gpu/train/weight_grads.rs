//! Weight gradients: products over every (t, b) at once, so K = T·B is long while the output
//! (e.g. 4H × I) may give few workgroups. Then K is split over the grid's z (gemm.wgsl) into
//! a scratch buffer, and the splits are summed in a fixed order (column_sum.wgsl).

use super::columns;
use crate::error::Result;
use crate::gpu::device::storage_nan;
use crate::gpu::kernels::{gemm_groups, to_u32, GemmParams, Kernel, GEMM_TILE};
use crate::gpu::plan::PlanBuilder;

/// Workgroups below which a long product is split.
const FEW_GROUPS: usize = 256;

/// Splits of K for an `m x n` product over `k`: 1 unless the output has few workgroups and K
/// is long; then enough for about `FEW_GROUPS` workgroups, each over at least 1,024 of K, at
/// most `max` (the table's is 8; a tuned one may be fewer).
pub(super) fn k_splits(m: usize, n: usize, k: usize, max: usize) -> usize {
    let groups = m.div_ceil(GEMM_TILE as usize) * n.div_ceil(GEMM_TILE as usize);
    if groups >= FEW_GROUPS || k < 2048 {
        return 1;
    }
    (FEW_GROUPS / groups).min(k / 1024).clamp(1, max.max(1))
}

/// The buffers the products and the bias sums share.
pub(super) struct WeightGrads {
    /// bound where a gemm's bias is unused
    unused: wgpu::Buffer,
    /// the splits of a split product, [S, m * n]
    scratch: wgpu::Buffer,
    /// the first pass of column sums (bias gradients and the sums of splits)
    pub partials: wgpu::Buffer,
    /// the most splits of K
    max_splits: usize,
}

impl WeightGrads {
    /// For the products `(m, n, k)` it will record, and bias sums up to `bias_width` columns.
    pub fn new(
        device: &wgpu::Device,
        products: &[(usize, usize, usize)],
        bias_width: usize,
        max_splits: usize,
    ) -> Self {
        let split = products
            .iter()
            .map(|&(m, n, k)| (k_splits(m, n, k, max_splits), m * n))
            .filter(|&(s, _)| s > 1);
        let scratch = split.clone().map(|(s, mn)| s * mn).max().unwrap_or(1);
        let widest = split.map(|(_, mn)| mn).max().unwrap_or(1);
        Self {
            unused: storage_nan(device, "unused (read)", 1),
            scratch: storage_nan(device, "split products", scratch),
            partials: storage_nan(
                device,
                "column partial sums",
                (columns::MAX_SPLITS * bias_width).max(widest),
            ),
            max_splits,
        }
    }

    /// Records `C = A · B` as `p` describes, split over K when [`k_splits`] says so and C is
    /// a contiguous `[m, n]` block written without bias or accumulation.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        plan: &mut PlanBuilder<'_>,
        layer: usize,
        label: &str,
        a: &wgpu::Buffer,
        b: &wgpu::Buffer,
        c: &wgpu::Buffer,
        p: GemmParams,
    ) -> Result<()> {
        let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
        // the sum of the splits writes a contiguous [m, n] C, without bias or accumulation
        let plain = p.c_row_stride as usize == n && p.has_bias == 0 && p.accumulate == 0;
        let splits = if plain {
            k_splits(m, n, k, self.max_splits)
        } else {
            1
        };
        let [gx, gy, _] = gemm_groups(m, n)?;
        if splits == 1 {
            let group = plan.group(
                Kernel::Gemm,
                label,
                &[("a", a), ("b", b), ("bias", &self.unused), ("c", c)],
            );
            return plan.dispatch(layer, group, &p, [gx, gy, 1]);
        }
        let k_split = k.div_ceil(splits).next_multiple_of(16);
        let splits = k.div_ceil(k_split);
        let split = GemmParams {
            k_split: to_u32(label, k_split)?,
            c_offset: 0,
            c_row_stride: p.n,
            c_split_stride: to_u32(label, m * n)?,
            ..p
        };
        let group = plan.group(
            Kernel::Gemm,
            label,
            &[
                ("a", a),
                ("b", b),
                ("bias", &self.unused),
                ("c", &self.scratch),
            ],
        );
        plan.dispatch(layer, group, &split, [gx, gy, to_u32(label, splits)?])?;
        columns::record_column_sums(
            plan,
            layer,
            label,
            (&self.scratch, 0, m * n),
            (splits, m * n),
            (c, p.c_offset as usize, None),
            &self.partials,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::k_splits;

    #[test]
    fn long_products_with_few_workgroups_split() {
        // dW_hh of the gradient sweep's T = 40, B = 64, H = 32 case: 2 workgroups, K = 2,560
        assert_eq!(k_splits(128, 32, 2560, 8), 2);
        // 4H x I at H = 512, I = 256, T·B = 6,400: 128 workgroups
        assert_eq!(k_splits(2048, 256, 6400, 8), 2);
        // enough workgroups, or a short K: no split
        assert_eq!(k_splits(2048, 512, 6400, 8), 1);
        assert_eq!(k_splits(128, 32, 1000, 8), 1);
        assert_eq!(k_splits(64, 64, 1 << 20, 8), 8);
        assert_eq!(k_splits(64, 64, 1 << 20, 2), 2, "a tuned cap");
        assert_eq!(k_splits(64, 64, 1 << 20, 1), 1);
    }
}
