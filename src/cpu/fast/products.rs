//! Large matrix products split over a team by rows of the result (each thread one
//! matrixmultiply call on its rows), for the input projection's backward and the weight
//! gradients. Every element is summed in the same order whatever the split.

use super::team::{run_team, Shared};
use crate::cpu::{Op, Real};

/// `c[m, n] += a[m, k] · b[k, n]` (row-major, `a` and `b` read per their `Op`), the rows of
/// `c` split over `threads` threads.
#[allow(clippy::too_many_arguments)]
pub fn par_gemm_acc(
    threads: usize,
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    c: &mut [f32],
) {
    // below about a million multiply-adds a thread costs more to start than it saves
    let threads = if m * n * k < 1 << 20 {
        1
    } else {
        threads.min(m.div_ceil(16)).max(1)
    };
    split_gemm_acc(threads, (m, n, k), a, op_a, b, op_b, c);
}

/// [`par_gemm_acc`] on exactly `threads` threads.
#[allow(clippy::too_many_arguments)]
fn split_gemm_acc(
    threads: usize,
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    c: &mut [f32],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // rows of a: (row stride, column stride)
    let (rsa, csa) = match op_a {
        Op::N => (k, 1),
        Op::T => (1, m),
    };
    let (rsb, csb) = match op_b {
        Op::N => (n as isize, 1),
        Op::T => (1, k as isize),
    };
    let shared = Shared::new(c);
    run_team(threads, |worker| {
        let rows = worker.share(m);
        if rows.is_empty() || n == 0 {
            return;
        }
        // SAFETY: each worker writes only its own rows of c.
        let c = unsafe { shared.part(rows.start * n, rows.len() * n) };
        // SAFETY: row r < m of a starts at r·rsa and reaches (k-1)·csa beyond: inside
        // a.len() ≥ m·k (asserted); b and c likewise.
        unsafe {
            f32::gemm_raw(
                rows.len(),
                k,
                n,
                1.0,
                a.as_ptr().add(rows.start * rsa),
                rsa as isize,
                csa as isize,
                b.as_ptr(),
                rsb,
                csb,
                1.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            )
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_products_match_one_call() {
        let (m, n, k) = (37, 5, 11);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5).collect();
        for (op_a, op_b) in [
            (Op::N, Op::N),
            (Op::T, Op::N),
            (Op::N, Op::T),
            (Op::T, Op::T),
        ] {
            let mut want = vec![1.0; m * n];
            crate::cpu::gemm(m, n, k, &a, op_a, &b, op_b, 1.0, &mut want);
            for threads in [1, 2, 3] {
                let mut got = vec![1.0; m * n];
                split_gemm_acc(threads, (m, n, k), &a, op_a, &b, op_b, &mut got);
                assert_eq!(got, want, "{op_a:?} {op_b:?} threads {threads}");
            }
        }
    }
}
