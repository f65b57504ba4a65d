//! The register-blocked product at the heart of every fast CPU step: MR rows of A times one
//! panel (`[K, 4L]`, see [`super::pack`]), accumulated in MR × 4 vector registers.
//!
//! Per k: MR broadcasts of A, 4 panel loads, 4·MR fused multiply-adds. MR = 3 keeps the 12
//! accumulators, 3 broadcasts and one panel vector within AVX2's 16 registers (AVX-512's 32
//! would hold MR = 6, measured no faster on the char model's step at H = 512 and 1024). Each
//! accumulator sums k in order, whatever MR or the thread split, so every output element
//! is computed the same way in every configuration.

use pulp::Simd;

use super::pack::PANEL_VECTORS;

/// Rows per register tile.
pub const MR: usize = 3;

/// k per chunk of a panel: 128 rows of 4 vectors are 16 KiB with AVX2, 32 KiB with AVX-512
/// (of Zen 5's 48 KiB L1; 64 rows measured no faster there).
pub const KC: usize = 128;

/// `0..batch` as (first row, rows) tiles of at most [`MR`] rows, as even as possible and the
/// larger first (16 rows are 3+3+3+3+2+2, not 3+3+3+3+3+1: a one-row tile streams the panel
/// for a third of the work). The first tile of a k-chunk is the one that brings the panel's
/// chunk into L1, at 128 bytes per k; a 3-row tile takes 6 cycles per k to a 2-row tile's 4,
/// so it asks less of L2 (about 1.5% of the T=100 B=16 forward).
pub fn row_tiles(batch: usize) -> impl Iterator<Item = (usize, usize)> {
    let tiles = batch.div_ceil(MR);
    let (base, extra) = (batch / tiles.max(1), batch % tiles.max(1));
    (0..tiles).map(move |i| (i * base + i.min(extra), base + usize::from(i < extra)))
}

/// One row's accumulators: the 4 vectors of a panel's width.
pub type Acc<S> = [<S as Simd>::f32s; PANEL_VECTORS];

/// `rows` rows of accumulators laid out in `store`, which grows (and so allocates) only when
/// it is too small: a caller that keeps its store steps without allocating. The rows'
/// values are unspecified; every user writes a row before reading it.
pub fn accumulators<S: Simd>(store: &mut Vec<f32>, rows: usize) -> &mut [Acc<S>] {
    let (size, align) = (size_of::<Acc<S>>(), align_of::<Acc<S>>());
    let floats = (rows * size).div_ceil(4) + align / 4;
    if store.len() < floats {
        store.resize(floats, 0.0);
    }
    let offset = store.as_ptr().align_offset(align);
    assert!(offset + (rows * size).div_ceil(4) <= store.len());
    // SAFETY: `Acc<S>` is plain f32 lanes (every bit pattern is a value); the pointer is
    // aligned for it (`align_offset`) and the store holds `rows` of them past it (asserted);
    // the borrow of `store` keeps it alive and unaliased.
    unsafe { std::slice::from_raw_parts_mut(store.as_mut_ptr().add(offset) as *mut Acc<S>, rows) }
}

/// `L` lanes from `slice[at..]` (which must hold them).
#[inline(always)]
pub fn load<S: Simd>(slice: &[f32], at: usize) -> S::f32s {
    let lanes = &slice[at..at + S::F32_LANES];
    // SAFETY: `lanes` holds exactly one vector's floats; f32s is plain floats.
    unsafe { core::ptr::read_unaligned(lanes.as_ptr() as *const S::f32s) }
}

/// Stores `v` to `slice[at..at + L]`.
#[inline(always)]
pub fn store<S: Simd>(slice: &mut [f32], at: usize, v: S::f32s) {
    let lanes = &mut slice[at..at + S::F32_LANES];
    // SAFETY: as in `load`.
    unsafe { core::ptr::write_unaligned(lanes.as_mut_ptr() as *mut S::f32s, v) }
}

/// The first `min(L, slice.len() - at)` lanes from `slice[at..]`, the rest zero.
#[inline(always)]
pub fn load_partial<S: Simd>(simd: S, slice: &[f32], at: usize) -> S::f32s {
    let end = (at + S::F32_LANES).min(slice.len());
    if end - at == S::F32_LANES {
        load::<S>(slice, at)
    } else {
        simd.partial_load_f32s(&slice[at..end])
    }
}

/// Stores the first `min(L, slice.len() - at)` lanes of `v` at `slice[at..]`.
#[inline(always)]
pub fn store_partial<S: Simd>(simd: S, slice: &mut [f32], at: usize, v: S::f32s) {
    let end = (at + S::F32_LANES).min(slice.len());
    if end - at == S::F32_LANES {
        store::<S>(slice, at, v);
    } else {
        simd.partial_store_f32s(&mut slice[at..end], v);
    }
}

/// `acc[r] += Σ_k a[r·lda + k] · panel[k]` for `R` rows of `a` and k in `0..k_len`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indices keep the register tile's shape visible
fn tile<S: Simd, const R: usize>(
    simd: S,
    a: &[f32],
    lda: usize,
    k_len: usize,
    panel: &[f32],
    acc: &mut [Acc<S>],
) {
    let lanes = S::F32_LANES;
    let width = PANEL_VECTORS * lanes;
    assert!(acc.len() >= R && panel.len() >= k_len * width);
    assert!(R == 0 || a.len() >= (R - 1) * lda + k_len);
    let mut regs: [Acc<S>; R] = core::array::from_fn(|r| acc[r]);
    let (a, panel) = (a.as_ptr(), panel.as_ptr());
    for k in 0..k_len {
        // SAFETY: r·lda + k < a.len() and k·width + v·lanes + lanes ≤ panel.len() by the
        // asserts above.
        unsafe {
            let b: [S::f32s; R] = core::array::from_fn(|r| simd.splat_f32s(*a.add(r * lda + k)));
            let row = panel.add(k * width);
            for v in 0..PANEL_VECTORS {
                let w = core::ptr::read_unaligned(row.add(v * lanes) as *const S::f32s);
                for r in 0..R {
                    regs[r][v] = simd.mul_add_f32s(b[r], w, regs[r][v]);
                }
            }
        }
    }
    acc[..R].copy_from_slice(&regs);
}

/// `dst[r] = src[r]` for the first `rows` (≤ MR) rows: a fixed-count loop, so that the
/// compiler moves registers instead of calling `memmove` for a few hundred bytes (a runtime
/// length `copy_from_slice` did, 2-5% of a forward).
#[inline(always)]
pub fn copy_rows<T: Copy>(dst: &mut [T], src: &[T], rows: usize) {
    for r in 0..MR {
        if r < rows {
            dst[r] = src[r];
        }
    }
}

/// `acc[r] += Σ_k a[r·lda + k] · panel[k]` for the first `rows` (≤ MR) rows of `a`.
#[inline(always)]
pub fn panel_product<S: Simd>(
    simd: S,
    a: &[f32],
    lda: usize,
    rows: usize,
    k_len: usize,
    panel: &[f32],
    acc: &mut [Acc<S>; MR],
) {
    match rows {
        1 => tile::<S, 1>(simd, a, lda, k_len, panel, acc),
        2 => tile::<S, 2>(simd, a, lda, k_len, panel, acc),
        _ => tile::<S, MR>(simd, a, lda, k_len, panel, acc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_tiles_cover_the_batch_evenly() {
        for batch in 1..40 {
            let tiles: Vec<_> = row_tiles(batch).collect();
            assert_eq!(tiles.len(), batch.div_ceil(MR));
            assert!(
                tiles.windows(2).all(|w| w[0].1 >= w[1].1),
                "larger tiles first"
            );
            let mut next = 0;
            for (start, rows) in tiles {
                assert_eq!(start, next);
                assert!((1..=MR).contains(&rows) && (batch < MR || rows >= MR - 1));
                next = start + rows;
            }
            assert_eq!(next, batch);
        }
    }
}
