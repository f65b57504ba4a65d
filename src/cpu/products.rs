//! Large matrix products split over a team by rows of the result (each thread one
//! matrixmultiply call on its rows): the head's products, the input projection's backward
//! and the weight gradients. Every element is summed in the same order whatever the split,
//! so the result is bitwise the same on any number of threads.

use super::fast::team::{run_team, Shared};
use super::{Op, Real};

/// `c[m, n] += a[m, k] · b[k, n]` (row-major, `a` and `b` read per their `Op`), the rows of
/// `c` split over `threads` threads.
pub fn par_gemm_acc<T: Real>(
    threads: usize,
    (m, n, k): (usize, usize, usize),
    (a, op_a): (&[T], Op),
    (b, op_b): (&[T], Op),
    c: &mut [T],
) {
    par_gemm(threads, (m, n, k), (a, op_a), (b, op_b), T::ONE, c);
}

/// `c[m, n] = a[m, k] · b[k, n] + beta * c`, the rows of `c` split over up to `threads`
/// threads (one when the product is too small to repay starting them).
pub fn par_gemm<T: Real>(
    threads: usize,
    (m, n, k): (usize, usize, usize),
    (a, op_a): (&[T], Op),
    (b, op_b): (&[T], Op),
    beta: T,
    c: &mut [T],
) {
    // below about a million multiply-adds a thread costs more to start than it saves
    let threads = if m * n * k < 1 << 20 {
        1
    } else {
        threads.min(m.div_ceil(16)).max(1)
    };
    split_gemm(threads, (m, n, k), (a, op_a), (b, op_b), beta, c);
}

/// [`par_gemm`] on exactly `threads` threads.
fn split_gemm<T: Real>(
    threads: usize,
    (m, n, k): (usize, usize, usize),
    (a, op_a): (&[T], Op),
    (b, op_b): (&[T], Op),
    beta: T,
    c: &mut [T],
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
            T::gemm_raw(
                rows.len(),
                k,
                n,
                T::ONE,
                a.as_ptr().add(rows.start * rsa),
                rsa as isize,
                csa as isize,
                b.as_ptr(),
                rsb,
                csb,
                beta,
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
                split_gemm(threads, (m, n, k), (&a, op_a), (&b, op_b), 1.0, &mut got);
                assert_eq!(got, want, "{op_a:?} {op_b:?} threads {threads}");
            }
        }
    }
}
