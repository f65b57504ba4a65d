//! The state-slot rule on the host side: where h0/c0 go in and h_n/c_n come out. The rule
//! itself, and the kernels' side of it, is stated once in shaders/lstm_common.wgsl.

/// The h and c slots of one layer's state buffers (`[D, slots, B, H_out]` and
/// `[D, slots, B, H]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slots {
    cache: bool,
    seq_len: usize,
}

impl Slots {
    /// Inference (`cache == false`) or training over `seq_len` steps.
    pub fn new(cache: bool, seq_len: usize) -> Self {
        Self { cache, seq_len }
    }

    /// Slots per direction: (h, c).
    pub fn counts(self) -> (usize, usize) {
        if self.cache {
            (self.seq_len + 1, self.seq_len + 1)
        } else {
            (2, 1)
        }
    }

    /// (h slot, c slot) that step 0 of direction `dir` reads: where h0 and c0 go.
    pub fn first(self, dir: usize) -> (usize, usize) {
        match (self.cache, dir) {
            (true, 1) => (self.seq_len, self.seq_len),
            _ => (0, 0),
        }
    }

    /// (h slot, c slot) that the last step of direction `dir` writes: where h_n and c_n are.
    pub fn last(self, dir: usize) -> (usize, usize) {
        match (self.cache, dir) {
            (false, _) => (self.seq_len % 2, 0),
            (true, 0) => (self.seq_len, self.seq_len),
            (true, _) => (0, 0),
        }
    }
}
