//! The recurrent kernel variants: what each needs from a device, and its pipeline constants
//! and grid. Which one runs is chosen in [`super::choice`].
//!
//! - `sequence` (lstm_sequence.wgsl): small H without a projection. One dispatch runs every
//!   step of a chunk; a workgroup of H × `splits` invocations carries one batch row of one
//!   direction, with W_hh in registers. No per-step dispatch cost at all. With `subgroups`,
//!   the split sums meet through subgroup shuffles instead of workgroup memory.
//! - `step` (lstm_step.wgsl): one fused dispatch per step. The sum over k is split over
//!   `splits` invocations per hidden unit (`units` per workgroup), and `rows` batch rows share
//!   every weight read, so B = 1 launches hundreds of workgroups and large B reads W_hh once
//!   per `rows` rows.
//!
//! Every variant gives the same results within the forward tolerance; the same variant gives
//! bitwise the same results, whatever the chunking over T.

use std::fmt;

use super::table::Kernel;
use crate::error::{Error, Result};

/// `MAX_L` in lstm_sequence.wgsl: the most W_hh vec4s an invocation may keep in registers.
pub const SEQUENCE_MAX_PER_INVOCATION: u32 = 32;
/// `MAX_BT` in lstm_step.wgsl.
pub const STEP_MAX_ROWS: u32 = 16;
/// `MAX_QPI` in lstm_step.wgsl.
pub const STEP_MAX_QUADS: u32 = 8;

/// What the choice depends on, besides the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentShape {
    /// Hidden units per direction `H`.
    pub hidden: usize,
    /// `proj_size`, or `hidden` without a projection
    pub hidden_out: usize,
    /// Batch rows `B`.
    pub batch: usize,
}

/// What the table and the checks need to know of a device ([`crate::gpu::GpuContext::caps`]).
#[derive(Clone, Debug)]
pub struct DeviceCaps {
    /// The device's limits (as requested, not the adapter's maximum).
    pub limits: wgpu::Limits,
    /// The smallest subgroup size, when the device has the SUBGROUP feature.
    pub subgroup_size: Option<u32>,
}

/// How the recurrent half of a layer runs (the recurrent kernel and its tiles); see the
/// module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recurrence {
    /// lstm_sequence (one dispatch for every step of a chunk) with these tiles.
    Sequence(SequenceTiles),
    /// lstm_step (one fused dispatch per timestep) with these tiles.
    PerStep(StepTiles),
}

/// The tiles of lstm_sequence: `splits` invocations per hidden unit (`KS`), `pre` staged
/// `steps` steps at a time (`P`), split sums through subgroup shuffles or workgroup memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SequenceTiles {
    /// Invocations per hidden unit, each summing a slice of k (`KS`).
    pub splits: u32,
    /// Timesteps of `pre` staged at a time (`P`).
    pub steps: u32,
    /// Split sums added by subgroup shuffles (true) or in workgroup memory (false).
    pub subgroups: bool,
}

/// The tiles of lstm_step: `units` hidden units (`U`) × `splits` k-slices (`KS`) per
/// workgroup, `rows` batch rows (`BT`), `quads` quads of k per slice per staging round
/// (`QPI`); groups of `span` split sums (`SPAN`) added by subgroup shuffles before the rest
/// meet in workgroup memory (1: none, the portable path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StepTiles {
    /// Hidden units per workgroup (`U`).
    pub units: u32,
    /// k-slices per hidden unit (`KS`).
    pub splits: u32,
    /// Batch rows per workgroup (`BT`).
    pub rows: u32,
    /// Quads of k per slice per staging round (`QPI`).
    pub quads: u32,
    /// Split sums added by subgroup shuffles before workgroup memory (`SPAN`, 1: none).
    pub span: u32,
}

impl Recurrence {
    /// Whether this variant can run `shape` on the device; the error names what does not fit.
    pub fn check(&self, shape: RecurrentShape, caps: &DeviceCaps) -> Result<()> {
        let limits = &caps.limits;
        let invocations = self.workgroup_size(shape);
        let limit = |what: String, limit: &'static str, needed: u64, available: u64| {
            if needed > available {
                Err(Error::Limit {
                    what,
                    limit,
                    needed,
                    available,
                })
            } else {
                Ok(())
            }
        };
        match *self {
            Recurrence::Sequence(SequenceTiles {
                splits,
                steps,
                subgroups,
            }) => {
                if shape.hidden_out != shape.hidden {
                    return Err(Error::Config(format!(
                        "kernel {self} runs models without a projection (proj_size {} given)",
                        shape.hidden_out
                    )));
                }
                if splits == 0 || steps == 0 {
                    return Err(Error::Config(format!(
                        "kernel {self}: splits and steps must be >= 1"
                    )));
                }
                let per_invocation = (shape.hidden as u32).div_ceil(splits);
                limit(
                    format!(
                        "kernel {self} at H = {} (W_hh vec4s per invocation)",
                        shape.hidden
                    ),
                    "MAX_L of lstm_sequence.wgsl",
                    per_invocation as u64,
                    SEQUENCE_MAX_PER_INVOCATION as u64,
                )?;
                if subgroups {
                    let Some(size) = caps.subgroup_size else {
                        return Err(Error::Config(format!(
                            "kernel {self} needs the SUBGROUP feature, which the device lacks"
                        )));
                    };
                    if !splits.is_power_of_two() || splits > size.min(32) {
                        return Err(Error::Config(format!(
                            "kernel {self}: with subgroups, splits must be a power of two no \
                             larger than the smallest subgroup ({size}) or 32"
                        )));
                    }
                }
            }
            Recurrence::PerStep(StepTiles {
                units,
                splits,
                rows,
                quads,
                span,
            }) => {
                if units == 0 || splits == 0 || rows == 0 || quads == 0 || span == 0 {
                    return Err(Error::Config(format!(
                        "kernel {self}: every tile size must be >= 1"
                    )));
                }
                limit(
                    format!("kernel {self} (batch rows per workgroup)"),
                    "MAX_BT of lstm_step.wgsl",
                    rows as u64,
                    STEP_MAX_ROWS as u64,
                )?;
                limit(
                    format!("kernel {self} (quads per slice per stage)"),
                    "MAX_QPI of lstm_step.wgsl",
                    quads as u64,
                    STEP_MAX_QUADS as u64,
                )?;
                if span != 1 {
                    let Some(size) = caps.subgroup_size else {
                        return Err(Error::Config(format!(
                            "kernel {self} needs the SUBGROUP feature, which the device lacks"
                        )));
                    };
                    let pow2 = |n: u32| n.is_power_of_two();
                    if !pow2(span)
                        || !pow2(units)
                        || splits % span != 0
                        || span * units > size.min(32)
                    {
                        return Err(Error::Config(format!(
                            "kernel {self}: with subgroups, span and units must be powers of \
                             two, span must divide splits, and span × units must fit the \
                             smallest subgroup ({size}, at most 32)"
                        )));
                    }
                }
            }
        }
        limit(
            format!("kernel {self} at H = {} (workgroup size)", shape.hidden),
            "max_compute_invocations_per_workgroup",
            invocations,
            limits.max_compute_invocations_per_workgroup as u64,
        )?;
        limit(
            format!("kernel {self} at H = {} (workgroup size)", shape.hidden),
            "max_compute_workgroup_size_x",
            invocations,
            limits.max_compute_workgroup_size_x as u64,
        )?;
        limit(
            format!("kernel {self} at H = {} (workgroup memory)", shape.hidden),
            "max_compute_workgroup_storage_size",
            self.workgroup_bytes(shape),
            limits.max_compute_workgroup_storage_size as u64,
        )
    }

    /// Invocations per workgroup.
    fn workgroup_size(&self, shape: RecurrentShape) -> u64 {
        match *self {
            Recurrence::Sequence(t) => shape.hidden as u64 * t.splits as u64,
            Recurrence::PerStep(t) => t.units as u64 * t.splits as u64,
        }
    }

    /// Bytes of workgroup memory (the `var<workgroup>` arrays of the kernel).
    fn workgroup_bytes(&self, shape: RecurrentShape) -> u64 {
        match *self {
            Recurrence::Sequence(t) => {
                let (h, ks, p) = (shape.hidden as u64, t.splits.max(1) as u64, t.steps as u64);
                // h_buf, pre_tile, and split_sum's partial without subgroups
                let partial = if t.subgroups { 0 } else { h * ks * 16 };
                2 * ks * h.div_ceil(ks) * 4 + p * h * 16 + partial
            }
            Recurrence::PerStep(t) => {
                let (u, s, r, q) = (
                    t.units as u64,
                    t.splits as u64,
                    t.rows as u64,
                    t.quads as u64,
                );
                let folds = s / (t.span.max(1) as u64);
                r * s * q * 16 + r * folds * u * 16
            }
        }
    }

    /// The pipeline's override constants.
    pub fn constants(&self, shape: RecurrentShape) -> Vec<(&'static str, f64)> {
        match *self {
            Recurrence::Sequence(t) => vec![
                ("H", shape.hidden as f64),
                ("KS", t.splits as f64),
                ("L", (shape.hidden as u32).div_ceil(t.splits) as f64),
                ("P", t.steps as f64),
            ],
            Recurrence::PerStep(t) => vec![
                ("U", t.units as f64),
                ("KS", t.splits as f64),
                ("BT", t.rows as f64),
                ("QPI", t.quads as f64),
                ("SPAN", t.span as f64),
            ],
        }
    }

    /// Workgroups of one dispatch for `dirs` directions.
    pub fn workgroups(&self, shape: RecurrentShape, dirs: usize) -> [usize; 3] {
        match *self {
            Recurrence::Sequence { .. } => [shape.batch, dirs, 1],
            Recurrence::PerStep(t) => [
                shape.hidden.div_ceil(t.units as usize),
                shape.batch.div_ceil(t.rows as usize),
                dirs,
            ],
        }
    }

    /// True for the kernel that runs a whole chunk in one dispatch.
    pub fn is_sequence(&self) -> bool {
        matches!(self, Recurrence::Sequence(_))
    }

    /// The kernel (and so the pipeline source) this variant runs.
    pub fn kernel(&self) -> Kernel {
        match self {
            Recurrence::Sequence(t) if t.subgroups => Kernel::LstmSequenceSubgroup,
            Recurrence::Sequence(_) => Kernel::LstmSequence,
            Recurrence::PerStep(t) if t.span > 1 => Kernel::LstmStepSubgroup,
            Recurrence::PerStep(_) => Kernel::LstmStep,
        }
    }
}

/// `sequence ks=4 p=32 sg=1`, `step u=4 ks=32 bt=1 qpi=4`: what `bench` prints and
/// `--kernel` takes.
impl fmt::Display for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recurrence::Sequence(t) => write!(
                f,
                "sequence ks={} p={} sg={}",
                t.splits, t.steps, t.subgroups as u32
            ),
            Recurrence::PerStep(t) => {
                write!(
                    f,
                    "step u={} ks={} bt={} qpi={}",
                    t.units, t.splits, t.rows, t.quads
                )?;
                if t.span > 1 {
                    write!(f, " sg={}", t.span)?;
                }
                Ok(())
            }
        }
    }
}
