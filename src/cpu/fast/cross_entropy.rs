//! Softmax cross-entropy over many rows (a language model's logits, `[T·B, V]`), on the team
//! and in SIMD: each row's max, `exp(v − max)` ([`super::math::exp`]) and their sum in vector
//! lanes, the gradient written once. Each row's term is kept and the terms are summed in row
//! order afterwards, so the loss is bitwise the same on any number of threads. The sum of a
//! row's exponentials has one layout on every SIMD width (16 running sums, one per logit
//! index mod 16, folded in order), so it is the same bits on every width too.

use pulp::{Simd, WithSimd};

use super::kernel::{load, store};
use super::math::exp;
use super::simd::{Isa, FOLD_LANES};
use super::team::{run_team, Shared};
use crate::loss::{is_first_max, Scored};

/// Below this many logits one thread does it all (a team costs more than it saves).
const TEAM_LOGITS: usize = 1 << 16;

/// [`crate::loss::loss_and_grad`] for cross-entropy: the loss of `logits` (rows of `width`)
/// against `classes`, rows weighted by `weights`, the gradient into `grad`.
pub(super) fn cross_entropy(
    isa: Isa,
    threads: usize,
    (logits, width): (&[f32], usize),
    classes: &[i64],
    weights: &[f32],
    grad: &mut Vec<f32>,
) -> Scored<f32> {
    let rows = classes.len();
    debug_assert_eq!(logits.len(), rows * width);
    grad.resize(logits.len(), 0.0);
    let mut terms = vec![0.0f32; rows];
    let mut hits = vec![false; rows];
    let threads = if logits.len() < TEAM_LOGITS {
        1
    } else {
        threads.min(rows).max(1)
    };
    {
        let (grad, terms, hits) = (
            Shared::new(grad),
            Shared::new(&mut terms),
            Shared::new(&mut hits),
        );
        run_team(threads, |worker| {
            let mine = worker.share(rows);
            let (first, n) = (mine.start, mine.len());
            // SAFETY: each worker writes only its own rows of the three.
            let job = unsafe {
                Rows {
                    logits: &logits[first * width..(first + n) * width],
                    width,
                    classes: &classes[mine.clone()],
                    weights: &weights[mine],
                    grad: grad.part(first * width, n * width),
                    terms: terms.part(first, n),
                    hits: hits.part(first, n),
                }
            };
            isa.dispatch(job);
        });
    }
    let value = terms.iter().fold(0.0, |sum, &term| sum + term);
    Scored {
        value,
        correct: Some(hits.iter().filter(|&&hit| hit).count()),
        counted: crate::loss::counted(weights),
    }
}

/// Some rows' share of the work.
struct Rows<'a> {
    logits: &'a [f32],
    width: usize,
    classes: &'a [i64],
    weights: &'a [f32],
    grad: &'a mut [f32],
    terms: &'a mut [f32],
    hits: &'a mut [bool],
}

impl WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (width, lanes) = (self.width, S::F32_LANES);
        assert!(
            FOLD_LANES.is_multiple_of(lanes),
            "{lanes} lanes do not divide the fold"
        );
        // whole 16-logit blocks in vectors, then the last width % 16 logits one by one: the
        // split, like the sums, is the same on every width
        let body = width / FOLD_LANES * FOLD_LANES;
        let per_fold = FOLD_LANES / lanes;
        let rows = self.grad.chunks_mut(width).zip(self.terms).zip(self.hits);
        for (r, ((out, term), hit)) in rows.enumerate() {
            let w = self.weights[r];
            if w == 0.0 {
                // padded or ignored: no loss, no gradient
                out.fill(0.0);
                (*term, *hit) = (0.0, false);
                continue;
            }
            let row = &self.logits[r * width..(r + 1) * width];
            let mut maxes = simd.splat_f32s(f32::NEG_INFINITY);
            for at in (0..body).step_by(lanes) {
                maxes = simd.max_f32s(maxes, load::<S>(row, at));
            }
            // the max is exact in any order
            let max =
                row[body..].iter().fold(
                    simd.reduce_max_f32s(maxes),
                    |a, &b| if b > a { b } else { a },
                );
            let shift = simd.splat_f32s(max);
            // sums[v] lane l holds the logits at indices ≡ v·lanes + l (mod 16)
            let mut sums = [simd.splat_f32s(0.0); FOLD_LANES];
            for at in (0..body).step_by(lanes) {
                let e = exp(simd, simd.sub_f32s(load::<S>(row, at), shift));
                store::<S>(out, at, e);
                let v = at / lanes % per_fold;
                sums[v] = simd.add_f32s(sums[v], e);
            }
            let mut folded = [0.0f32; FOLD_LANES];
            for (v, part) in folded.chunks_mut(lanes).enumerate() {
                store::<S>(part, 0, sums[v]);
            }
            let mut z = folded.iter().fold(0.0, |sum, &e| sum + e);
            for (e, &v) in out[body..].iter_mut().zip(&row[body..]) {
                *e = (v - max).exp();
                z += *e;
            }
            let class = self.classes[r] as usize;
            *term = w * (max + z.ln() - row[class]);
            *hit = is_first_max(row, max, class);
            // softmax · w, less w at the class
            let scale = w / z;
            let scales = simd.splat_f32s(scale);
            for at in (0..body).step_by(lanes) {
                store::<S>(out, at, simd.mul_f32s(load::<S>(out, at), scales));
            }
            for e in &mut out[body..] {
                *e *= scale;
            }
            out[class] -= w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{loss_and_grad, Loss, Target};
    use crate::Tensor;

    /// Against the reference in f64, with ignored rows, a tail of width % lanes, ties and a
    /// team of several threads (which must give the same bits as one).
    #[test]
    fn cross_entropy_matches_the_f64_reference_on_any_team() {
        for width in [1, 7, 37, 300] {
            let rows = 420;
            let logits: Vec<f32> = (0..rows * width)
                .map(|i| ((i * 7919 % 1000) as f32 / 100.0 - 5.0).round() / 2.0)
                .collect();
            // every third row's class is its (first) largest logit, found by hand
            let classes: Vec<i64> = (0..rows)
                .map(|r| {
                    let row = &logits[r * width..(r + 1) * width];
                    let best = (0..width).fold(0, |a, k| if row[k] > row[a] { k } else { a });
                    (if r % 3 == 0 { best } else { r * 31 % width }) as i64
                })
                .collect();
            let weights: Vec<f32> = (0..rows)
                .map(|r| if r % 5 == 3 { 0.0 } else { 1.0 / 336.0 })
                .collect();
            let target = Target::Classes(Tensor::new([rows], classes.clone()).unwrap());
            let wide: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
            let mut want_grad = Vec::new();
            let want = loss_and_grad(
                Loss::CrossEntropy,
                (&wide, width),
                &target,
                &weights,
                &mut want_grad,
            );
            let mut one = Vec::new();
            let got = cross_entropy(
                Isa::detect(),
                1,
                (&logits, width),
                &classes,
                &weights,
                &mut one,
            );
            assert_eq!(got.correct, want.correct, "width {width}");
            assert!(want.correct.unwrap() > 0, "some rows are right");
            let close = (got.value as f64 - want.value).abs() <= 1e-5 * want.value.abs().max(1.0);
            assert!(close, "width {width}: {} vs {}", got.value, want.value);
            for (g, w) in one.iter().zip(&want_grad) {
                assert!((*g as f64 - w).abs() <= 1e-6, "width {width}: {g} vs {w}");
            }
            let mut team = vec![f32::NAN; 3]; // a kept buffer of another size
            let split = cross_entropy(
                Isa::detect(),
                3,
                (&logits, width),
                &classes,
                &weights,
                &mut team,
            );
            assert_eq!(split.value.to_bits(), got.value.to_bits(), "width {width}");
            assert_eq!(team, one, "width {width}");
        }
    }
}
