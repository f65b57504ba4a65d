//! Which recurrent kernel runs a layer, and with which tiles: one small table
//! ([`StepVariant::choose`]), checked against the device's limits.
//!
//! - `sequence` (lstm_sequence.wgsl): small H without a projection. One dispatch runs every
//!   step of a chunk; a workgroup of H × `splits` invocations carries one batch row of one
//!   direction, with W_hh in registers. No per-step dispatch cost at all.
//! - `step` (lstm_step.wgsl): one fused dispatch per step. The sum over k is split over
//!   `splits` invocations per hidden unit (`units` per workgroup), and `rows` batch rows share
//!   every weight read, so B = 1 launches hundreds of workgroups and large B reads W_hh once
//!   per `rows` rows.
//!
//! Every variant gives the same results within the forward tolerance; the same variant gives
//! bitwise the same results, whatever the chunking over T.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// `MAX_L` in lstm_sequence.wgsl: W_hh vec4s an invocation keeps in registers.
pub const SEQUENCE_MAX_PER_INVOCATION: u32 = 16;
/// `MAX_BT` in lstm_step.wgsl.
pub const STEP_MAX_ROWS: u32 = 16;

/// What the choice depends on, besides the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepShape {
    pub hidden: usize,
    /// `proj_size`, or `hidden` without a projection
    pub hidden_out: usize,
    pub batch: usize,
}

/// How the recurrent half of a layer runs; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepVariant {
    /// lstm_sequence: `splits` invocations per hidden unit (`KS`).
    Sequence { splits: u32 },
    /// lstm_step with these tiles.
    Step(StepTiles),
}

/// The tiles of lstm_step: `units` hidden units (`U`) × `splits` k-slices (`KS`) per
/// workgroup, `rows` batch rows (`BT`), `quads` quads of k per slice per staging round (`QPI`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StepTiles {
    pub units: u32,
    pub splits: u32,
    pub rows: u32,
    pub quads: u32,
}

impl StepVariant {
    /// The table: the sequence kernel wherever it fits, else the per-step kernel with tiles
    /// by batch size, shrunk until the device's limits hold.
    pub fn choose(shape: StepShape, limits: &wgpu::Limits) -> Self {
        let sequence = Self::sequence_for(shape);
        if sequence.check(shape, limits).is_ok() {
            return sequence;
        }
        Self::step_for(shape, limits)
    }

    /// The sequence kernel with the fewest splits that keep W_hh in registers.
    pub fn sequence_for(shape: StepShape) -> Self {
        let splits = (shape.hidden as u32)
            .div_ceil(SEQUENCE_MAX_PER_INVOCATION)
            .max(1);
        StepVariant::Sequence { splits }
    }

    /// The per-step kernel's tiles for `shape`.
    pub fn step_for(shape: StepShape, limits: &wgpu::Limits) -> Self {
        let quads = (shape.hidden_out as u32).div_ceil(4).max(1);
        let rows = match shape.batch {
            0..=1 => 1,
            2 => 2,
            3..=4 => 4,
            5..=8 => 8,
            _ => STEP_MAX_ROWS,
        };
        let (units, max_splits) = match rows {
            1 | 2 => (4, 64),
            4 | 8 => (4, 32),
            _ => (8, 8),
        };
        let splits = max_splits.min(prev_power_of_two(quads));
        let mut tiles = StepTiles {
            units,
            splits,
            rows,
            quads: quads.div_ceil(splits).min(8),
        };
        // shrink, staging depth first, until the workgroup fits the device
        while StepVariant::Step(tiles).check(shape, limits).is_err() {
            let t = &mut tiles;
            if t.quads > 1 {
                t.quads = t.quads.div_ceil(2);
            } else if t.splits > 1 {
                t.splits /= 2;
            } else if t.units > 1 {
                t.units /= 2;
            } else if t.rows > 1 {
                t.rows /= 2;
            } else {
                break;
            }
        }
        StepVariant::Step(tiles)
    }

    /// Whether this variant can run `shape` on a device with `limits`; the error names what
    /// does not fit.
    pub fn check(&self, shape: StepShape, limits: &wgpu::Limits) -> Result<()> {
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
            StepVariant::Sequence { splits } => {
                if shape.hidden_out != shape.hidden {
                    return Err(Error::Config(format!(
                        "kernel {self} runs models without a projection (proj_size {} given)",
                        shape.hidden_out
                    )));
                }
                if splits == 0 {
                    return Err(Error::Config(format!("kernel {self}: splits must be >= 1")));
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
            }
            StepVariant::Step(StepTiles {
                units,
                splits,
                rows,
                quads,
            }) => {
                if units == 0 || splits == 0 || rows == 0 || quads == 0 {
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
    fn workgroup_size(&self, shape: StepShape) -> u64 {
        match *self {
            StepVariant::Sequence { splits } => shape.hidden as u64 * splits as u64,
            StepVariant::Step(t) => t.units as u64 * t.splits as u64,
        }
    }

    /// Bytes of workgroup memory (the `var<workgroup>` arrays of the kernel).
    fn workgroup_bytes(&self, shape: StepShape) -> u64 {
        match *self {
            StepVariant::Sequence { splits } => {
                let per = (shape.hidden as u64).div_ceil(splits.max(1) as u64);
                2 * splits as u64 * per * 4 + shape.hidden as u64 * splits as u64 * 16
            }
            StepVariant::Step(t) => {
                let (u, s, r, q) = (
                    t.units as u64,
                    t.splits as u64,
                    t.rows as u64,
                    t.quads as u64,
                );
                r * s * q * 16 + r * s * u * 16
            }
        }
    }

    /// The pipeline's override constants.
    pub fn constants(&self, shape: StepShape) -> Vec<(&'static str, f64)> {
        match *self {
            StepVariant::Sequence { splits } => vec![
                ("H", shape.hidden as f64),
                ("KS", splits as f64),
                ("L", (shape.hidden as u32).div_ceil(splits) as f64),
            ],
            StepVariant::Step(t) => vec![
                ("U", t.units as f64),
                ("KS", t.splits as f64),
                ("BT", t.rows as f64),
                ("QPI", t.quads as f64),
            ],
        }
    }

    /// Workgroups of one dispatch for `dirs` directions.
    pub fn workgroups(&self, shape: StepShape, dirs: usize) -> [usize; 3] {
        match *self {
            StepVariant::Sequence { .. } => [shape.batch, dirs, 1],
            StepVariant::Step(t) => [
                shape.hidden.div_ceil(t.units as usize),
                shape.batch.div_ceil(t.rows as usize),
                dirs,
            ],
        }
    }

    /// True for the kernel that runs a whole chunk in one dispatch.
    pub fn is_sequence(&self) -> bool {
        matches!(self, StepVariant::Sequence { .. })
    }
}

/// The largest power of two <= n (n >= 1).
fn prev_power_of_two(n: u32) -> u32 {
    1 << (31 - n.max(1).leading_zeros())
}

/// `sequence ks=4`, `step u=4 ks=64 bt=1 qpi=2`: what `bench` prints and `--kernel` takes.
impl fmt::Display for StepVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepVariant::Sequence { splits } => write!(f, "sequence ks={splits}"),
            StepVariant::Step(t) => write!(
                f,
                "step u={} ks={} bt={} qpi={}",
                t.units, t.splits, t.rows, t.quads
            ),
        }
    }
}

/// A kernel choice as the user writes it: `sequence` or `step` (tiles from the table), or
/// the full form [`StepVariant`] displays, e.g. `step u=4 ks=64 bt=1 qpi=2` (`,` or ` `
/// between fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// The table decides.
    Auto,
    /// The sequence kernel, tiles from the table.
    Sequence,
    /// The per-step kernel, tiles from the table.
    Step,
    /// Exactly this.
    Exact(StepVariant),
}

impl KernelChoice {
    /// The variant for `shape` on a device with `limits`; errors when a forced one cannot run.
    pub fn resolve(self, shape: StepShape, limits: &wgpu::Limits) -> Result<StepVariant> {
        let v = match self {
            KernelChoice::Auto => StepVariant::choose(shape, limits),
            KernelChoice::Sequence => StepVariant::sequence_for(shape),
            KernelChoice::Step => StepVariant::step_for(shape, limits),
            KernelChoice::Exact(v) => v,
        };
        v.check(shape, limits)?;
        Ok(v)
    }
}

impl FromStr for KernelChoice {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::Input(format!(
                "kernel `{text}`: expected auto, sequence, step, `sequence ks=N` or \
                 `step u=N ks=N bt=N qpi=N`"
            ))
        };
        let mut words = text.split([' ', ',']).filter(|w| !w.is_empty());
        let kind = words.next().ok_or_else(bad)?;
        let mut fields = std::collections::BTreeMap::new();
        for word in words {
            let (key, value) = word.split_once('=').ok_or_else(bad)?;
            let value: u32 = value.parse().map_err(|_| bad())?;
            fields.insert(key.to_string(), value);
        }
        let bare = fields.is_empty();
        let mut take = |key: &str| fields.remove(key).ok_or_else(bad);
        let choice = match (kind, bare) {
            ("auto", true) => KernelChoice::Auto,
            ("sequence", true) => KernelChoice::Sequence,
            ("step", true) => KernelChoice::Step,
            ("sequence", false) => KernelChoice::Exact(StepVariant::Sequence {
                splits: take("ks")?,
            }),
            ("step", false) => KernelChoice::Exact(StepVariant::Step(StepTiles {
                units: take("u")?,
                splits: take("ks")?,
                rows: take("bt")?,
                quads: take("qpi")?,
            })),
            _ => return Err(bad()),
        };
        if !fields.is_empty() {
            return Err(bad());
        }
        Ok(choice)
    }
}
