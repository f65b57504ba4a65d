//! Which SIMD the fast path runs on: the widest the CPU has, chosen at run time (AVX-512's
//! 16 f32 lanes, else AVX2's 8 on x86-64; NEON's 4 on aarch64; scalar elsewhere), or a
//! narrower one asked for, to compare widths or to check that they agree.
//!
//! The width changes only how many units a vector holds, never the order of any sum: every
//! product sums k in order into each output element, the gate math is lane by lane, and the
//! one horizontal sum (cross-entropy's softmax denominator) folds a fixed 16-wide layout.
//! So every width gives the same bits (`tests/cpu_fast.rs`).

use std::sync::OnceLock;

use pulp::{Arch, Simd, WithSimd};

use crate::error::{Error, Result};

/// The environment variable that caps the width for a whole process (`LSTM_WGPU_SIMD_LANES=8`
/// runs AVX2 on an AVX-512 machine); [`crate::cpu::FastCpuLstm::with_simd_lanes`] caps one
/// model.
pub const SIMD_LANES_VAR: &str = "LSTM_WGPU_SIMD_LANES";

/// The widest horizontal sum's layout: lanes ≤ this divide it.
pub const FOLD_LANES: usize = 16;

/// An instruction set the fast kernels run on, and its f32 lanes.
#[derive(Clone, Copy, Debug)]
pub struct Isa {
    arch: Arch,
    lanes: usize,
}

impl Isa {
    /// The widest the CPU has, capped by [`SIMD_LANES_VAR`] when it is set (read once per
    /// process; a value that is not a positive number is ignored with a warning).
    pub fn detect() -> Self {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let widest = Self::from_arch(Arch::new());
            match std::env::var(SIMD_LANES_VAR) {
                Err(_) => widest,
                Ok(value) => match value.trim().parse::<usize>() {
                    Ok(max) if max > 0 => widest.at_most(max),
                    _ => {
                        log::warn!(
                            "{SIMD_LANES_VAR}={value:?} is not a positive number of lanes: ignored"
                        );
                        widest
                    }
                },
            }
        })
    }

    fn from_arch(arch: Arch) -> Self {
        Self {
            arch,
            lanes: arch.dispatch(Lanes),
        }
    }

    /// This instruction set, or the widest narrower one with at most `max` lanes (scalar
    /// when none is).
    pub fn at_most(self, max: usize) -> Self {
        if self.lanes <= max {
            return self;
        }
        #[cfg(target_arch = "x86_64")]
        if max >= 8 {
            if let Some(v3) = pulp::x86::V3::try_new() {
                return Self::from_arch(Arch::V3(v3));
            }
        }
        Self::from_arch(Arch::Scalar)
    }

    /// [`Isa::at_most`] for a cap given by a user: at least 1.
    pub fn capped(self, max: usize) -> Result<Self> {
        if max == 0 {
            return Err(Error::Config(
                "simd lanes must be at least 1 (1 runs without SIMD)".into(),
            ));
        }
        Ok(self.at_most(max))
    }

    /// f32 lanes per vector.
    pub fn lanes(self) -> usize {
        self.lanes
    }

    /// Runs `op` on this instruction set.
    #[inline(always)]
    pub fn dispatch<Op: WithSimd>(self, op: Op) -> Op::Output {
        self.arch.dispatch(op)
    }
}

struct Lanes;

impl WithSimd for Lanes {
    type Output = usize;
    fn with_simd<S: Simd>(self, _: S) -> usize {
        S::F32_LANES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_never_widens_and_lands_on_a_real_width() {
        let widest = Isa::from_arch(Arch::new());
        for max in 1..=32 {
            let isa = widest.at_most(max);
            assert!(isa.lanes() <= widest.lanes().max(1));
            assert!(isa.lanes() <= max || isa.lanes() == 1, "cap {max}");
            assert!(
                FOLD_LANES.is_multiple_of(isa.lanes()),
                "{} lanes",
                isa.lanes()
            );
        }
        assert_eq!(widest.at_most(1).lanes(), 1);
        assert!(widest.capped(0).is_err());
    }
}
