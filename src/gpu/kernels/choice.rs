//! The kernel table: which [`Recurrence`] runs a shape on a device, as data. Its rows come
//! from sweeps of every variant on an NVIDIA H100 beside cuDNN (benches/kernel_sweep.sh);
//! every candidate is checked against the device (limits, subgroups) and shrunk until it
//! fits. `lstm-wgpu bench --kernel` and [`KernelChoice`] override it.

use std::str::FromStr;

use super::recurrence::{
    DeviceCaps, Recurrence, RecurrentShape, SequenceTiles, StepTiles, STEP_MAX_QUADS,
};
use super::sizes::{prev_power_of_two, shrink_tiles};
use crate::error::{Error, Result};

/// Steps of `pre` the sequence kernel stages at once, at most (the table's first try).
pub const SEQUENCE_MAX_STEPS_STAGED: u32 = 32;
/// One row of the per-step kernel's table: the tiles for batches of at most `max_batch` rows.
struct PerStepRow {
    max_batch: usize,
    /// batch rows per workgroup (`BT`), each weight read serving them all
    rows: u32,
    /// hidden units per workgroup (`U`), and where H_out > 512
    units: u32,
    wide_units: u32,
    /// the most k-slices per unit (`KS`; fewer when H_out is small)
    max_splits: u32,
}

// At B <= 4 every batch row in one workgroup and k split 32 ways, so each invocation loads a
// few quads of weights; from B = 5, tiles of 8 rows, so each weight read serves 8 rows, split
// 16 ways up to B = 16 and 8 ways with 16 units beyond. The last row takes every larger batch.
// The sequence kernel gets 16 vec4s of W_hh per invocation (64 floats of registers).
// benches/wisdom/table.py writes the block below from the measured wisdom files.
// table.py: begin (from h100-vulkan-2026-11-27.json)
/// W_hh vec4s per invocation the table gives the sequence kernel.
const SEQUENCE_PER_INVOCATION: u32 = 16;
#[rustfmt::skip]
const PER_STEP_TABLE: [PerStepRow; 5] = [
    PerStepRow { max_batch: 1, rows: 1, units: 4, wide_units: 8, max_splits: 32 },
    PerStepRow { max_batch: 2, rows: 2, units: 4, wide_units: 4, max_splits: 32 },
    PerStepRow { max_batch: 4, rows: 4, units: 4, wide_units: 4, max_splits: 32 },
    PerStepRow { max_batch: 16, rows: 8, units: 4, wide_units: 4, max_splits: 16 },
    PerStepRow { max_batch: usize::MAX, rows: 8, units: 16, wide_units: 16, max_splits: 8 },
];
// table.py: end

impl Recurrence {
    /// The table: the sequence kernel wherever it fits (small H, no projection), else the
    /// per-step kernel with tiles by batch size.
    pub fn choose(shape: RecurrentShape, caps: &DeviceCaps) -> Self {
        let sequence = Self::sequence_for(shape, caps);
        if sequence.check(shape, caps).is_ok() {
            return sequence;
        }
        Self::per_step_for(shape, caps)
    }

    /// The sequence kernel with the fewest splits (a power of two) that keep W_hh in
    /// registers; subgroup shuffles for the split sums where the device has subgroups that
    /// large; as many steps of `pre` staged as workgroup memory holds (up to 32).
    pub fn sequence_for(shape: RecurrentShape, caps: &DeviceCaps) -> Self {
        let splits = (shape.hidden as u32)
            .div_ceil(SEQUENCE_PER_INVOCATION)
            .max(1)
            .next_power_of_two();
        let subgroups = splits > 1 && caps.subgroup_size.is_some_and(|size| splits <= size);
        let mut tiles = SequenceTiles {
            splits,
            steps: SEQUENCE_MAX_STEPS_STAGED,
            subgroups,
        };
        while tiles.steps > 1 && Recurrence::Sequence(tiles).check(shape, caps).is_err() {
            tiles.steps /= 2;
        }
        Recurrence::Sequence(tiles)
    }

    /// The per-step kernel's tiles from `PER_STEP_TABLE`, shrunk, staging depth first,
    /// until the workgroup fits the device.
    pub fn per_step_for(shape: RecurrentShape, caps: &DeviceCaps) -> Self {
        let quads = (shape.hidden_out as u32).div_ceil(4).max(1);
        let row = PER_STEP_TABLE
            .iter()
            .find(|row| shape.batch <= row.max_batch)
            .unwrap_or(&PER_STEP_TABLE[PER_STEP_TABLE.len() - 1]);
        let units = if quads > 128 {
            row.wide_units
        } else {
            row.units
        };
        let (rows, max_splits) = (row.rows, row.max_splits);
        let splits = max_splits.min(prev_power_of_two(quads.div_ceil(2)));
        // (subgroup folding, span > 1, is tested but not yet measured on hardware: off)
        let mut tiles = StepTiles {
            units,
            splits,
            rows,
            quads: quads.div_ceil(splits).min(STEP_MAX_QUADS),
            span: 1,
        };
        while Recurrence::PerStep(tiles).check(shape, caps).is_err() {
            let t = &mut tiles;
            if !shrink_tiles(&mut t.quads, &mut t.splits, &mut t.units, &mut t.rows) {
                break;
            }
        }
        Recurrence::PerStep(tiles)
    }
}

/// A kernel choice as the user writes it: `auto`, `sequence` or `step` (tiles from the
/// table), or the full form [`Recurrence`] displays, e.g. `step u=4 ks=32 bt=1 qpi=4` or
/// `sequence ks=4 p=32 sg=1` (`,` or ` ` between fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// The table decides.
    Auto,
    /// The sequence kernel, tiles from the table.
    Sequence,
    /// The per-step kernel, tiles from the table.
    PerStep,
    /// Exactly this.
    Exact(Recurrence),
}

impl KernelChoice {
    /// The variant for `shape` on the device; errors when a forced one cannot run there.
    pub fn resolve(self, shape: RecurrentShape, caps: &DeviceCaps) -> Result<Recurrence> {
        let v = match self {
            KernelChoice::Auto => Recurrence::choose(shape, caps),
            KernelChoice::Sequence => Recurrence::sequence_for(shape, caps),
            KernelChoice::PerStep => Recurrence::per_step_for(shape, caps),
            KernelChoice::Exact(v) => v,
        };
        v.check(shape, caps)?;
        Ok(v)
    }
}

impl FromStr for KernelChoice {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::Input(format!(
                "kernel `{text}`: expected auto, sequence, step, `sequence ks=N p=N sg=0|1` or \
                 `step u=N ks=N bt=N qpi=N [sg=N]`"
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
            ("step", true) => KernelChoice::PerStep,
            ("sequence", false) => KernelChoice::Exact(Recurrence::Sequence(SequenceTiles {
                splits: take("ks")?,
                steps: take("p")?,
                subgroups: match take("sg").unwrap_or(0) {
                    0 => false,
                    1 => true,
                    _ => return Err(bad()),
                },
            })),
            ("step", false) => KernelChoice::Exact(Recurrence::PerStep(StepTiles {
                units: take("u")?,
                splits: take("ks")?,
                rows: take("bt")?,
                quads: take("qpi")?,
                span: take("sg").unwrap_or(1),
            })),
            _ => return Err(bad()),
        };
        if !fields.is_empty() {
            return Err(bad());
        }
        Ok(choice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(subgroup_size: Option<u32>) -> DeviceCaps {
        DeviceCaps {
            limits: wgpu::Limits::default(),
            subgroup_size,
        }
    }

    #[test]
    fn kernel_names_round_trip() {
        for text in [
            "sequence ks=4 p=32 sg=1",
            "sequence ks=3 p=5 sg=0",
            "step u=4 ks=32 bt=1 qpi=4",
            "step u=4 ks=32 bt=1 qpi=4 sg=8",
        ] {
            let KernelChoice::Exact(v) = text.parse().unwrap() else {
                panic!("{text} is not exact");
            };
            assert_eq!(v.to_string(), text);
        }
        for bad in [
            "",
            "fast",
            "step u=4",
            "sequence ks=4 p=2 sg=2",
            "step u=1 ks=1 bt=1 qpi=1 x=2",
        ] {
            assert!(bad.parse::<KernelChoice>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_table_picks_the_sequence_kernel_for_small_h_only() {
        let shape = |hidden, hidden_out, batch| RecurrentShape {
            hidden,
            hidden_out,
            batch,
        };
        let with = caps(Some(32));
        let v = Recurrence::choose(shape(64, 64, 1), &with);
        assert!(
            matches!(v, Recurrence::Sequence(t) if t.splits == 4 && t.subgroups),
            "{v}"
        );
        let v = Recurrence::choose(shape(64, 64, 1), &caps(None));
        assert!(matches!(v, Recurrence::Sequence(t) if !t.subgroups), "{v}");
        // lavapipe's subgroups of 8 take splits of 4; 1 split needs no reduction
        let v = Recurrence::choose(shape(16, 16, 1), &with);
        assert!(
            matches!(v, Recurrence::Sequence(t) if t.splits == 1 && !t.subgroups),
            "{v}"
        );
        for (h, p) in [(65, 65), (512, 512), (64, 32)] {
            assert!(!Recurrence::choose(shape(h, p, 1), &with).is_sequence());
        }
        // WebGPU's 16 KiB of workgroup memory: fewer staged steps, never an invalid variant
        for (h, b) in [(64, 1), (1024, 64), (512, 16), (129, 3)] {
            let v = Recurrence::choose(shape(h, h, b), &with);
            v.check(shape(h, h, b), &with).unwrap();
        }
    }
}
