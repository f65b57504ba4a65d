//! Truncated BPTT over long sequences: the windows a long input `[N, B, ...]` is trained in
//! (one optimizer step each, the state carried from window to window with
//! [`super::TrainOptions::carry_state`]), and a byte stream cut into B streams of tokens, as
//! PyTorch's `word_language_model` does (`batchify`, `get_batch`).

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Windows of at most `k` steps over `n` steps, as (start, length): from 0, k, 2k, …, the
/// last one shorter when `k` does not divide `n`.
pub fn windows(n: usize, k: usize) -> Vec<(usize, usize)> {
    (0..n)
        .step_by(k.max(1))
        .map(|i| (i, k.min(n - i)))
        .collect()
}

/// A language model's windows over a stream of `n` tokens (`word_language_model`'s
/// `get_batch`): start `i` = 0, k, 2k, … below `n - 1`, length `min(k, n - 1 - i)`; the input
/// is tokens `i..i + len`, the target (the next token) `i + 1..i + 1 + len`.
pub fn next_token_windows(n: usize, k: usize) -> Vec<(usize, usize)> {
    windows(n.saturating_sub(1), k)
}

/// `bytes` as `streams` parallel token streams `[N, B]` (`word_language_model`'s `batchify`):
/// stream `b` is bytes `b·N..(b + 1)·N` with `N = len / streams`, the remainder dropped.
pub fn batchify(bytes: &[u8], streams: usize) -> Result<Tensor<i64>> {
    if streams == 0 {
        return Err(Error::Config("streams must be at least 1".into()));
    }
    let n = bytes.len() / streams;
    if n < 2 {
        return Err(Error::Input(format!(
            "{} bytes make {n} tokens per stream for {streams} streams: at least 2 are needed \
             (an input and its next token)",
            bytes.len()
        )));
    }
    let mut data = vec![0i64; n * streams];
    for (b, stream) in bytes.chunks_exact(n).take(streams).enumerate() {
        for (t, &byte) in stream.iter().enumerate() {
            data[t * streams + b] = byte as i64;
        }
    }
    Tensor::new([n, streams], data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_steps_and_the_last_is_shorter() {
        assert_eq!(windows(11, 4), vec![(0, 4), (4, 4), (8, 3)]);
        assert_eq!(windows(8, 4), vec![(0, 4), (4, 4)]);
        // get_batch over 14 tokens with bptt 5: inputs 0..5, 5..10, 10..13
        assert_eq!(next_token_windows(14, 5), vec![(0, 5), (5, 5), (10, 3)]);
        assert_eq!(next_token_windows(1, 5), vec![]);
    }

    #[test]
    fn batchify_drops_the_remainder_and_lays_streams_side_by_side() {
        let t = batchify(b"abcdefg", 2).unwrap(); // streams "abc" and "def", "g" dropped
        assert_eq!(t.shape(), &[3, 2]);
        let want: Vec<i64> = "adbecf".bytes().map(i64::from).collect();
        assert_eq!(t.data(), &want[..]);
        assert!(batchify(b"abc", 2)
            .unwrap_err()
            .to_string()
            .contains("at least 2"));
        assert!(batchify(b"abc", 0).is_err());
    }
}
