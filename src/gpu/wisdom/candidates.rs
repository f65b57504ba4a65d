//! What can be tuned, as data: for each family, every variant worth timing for one shape on
//! one device, the table's choice first. Each is checked against the device
//! ([`Choice::check`]), so a list never holds a kernel the device cannot run.

use super::choice::{Choice, Family, MAX_K_SPLITS};
use crate::error::Result;
use crate::gpu::kernels::{
    BackwardTiles, DeviceCaps, Recurrence, RecurrentShape, SequenceTiles, StepTiles,
    BACKWARD_MAX_ROWS, GEMV_MAX_ROWS, STEP_MAX_QUADS, STEP_MAX_ROWS,
};

/// Staging depths of the sequence kernel tried (`P`).
const SEQUENCE_STEPS: [u32; 3] = [32, 8, 2];
/// Hidden units per workgroup of the per-step kernel tried (`U`).
const STEP_UNITS: [u32; 4] = [2, 4, 8, 16];
/// k-slices per unit of the per-step kernel tried (`KS`).
const STEP_SPLITS: [u32; 5] = [2, 4, 8, 16, 32];

/// Output units per workgroup of the backward step tried (`U`).
const BACKWARD_UNITS: [u32; 3] = [4, 8, 16];
/// Slices of the 4H gate rows of the backward step tried (`KS`).
const BACKWARD_SPLITS: [u32; 4] = [4, 8, 16, 32];

/// The candidates of `family` for `shape` that the device can run, the table's first, no
/// duplicates.
pub fn candidates(family: Family, shape: RecurrentShape, caps: &DeviceCaps) -> Result<Vec<Choice>> {
    let mut all = vec![Choice::table(family, shape, caps)?];
    match family {
        Family::Recurrence => {
            let list = recurrence_candidates(shape, caps);
            all.extend(list.into_iter().map(Choice::Recurrence));
        }
        Family::Gemv => {
            let rows = (0..=GEMV_MAX_ROWS.trailing_zeros()).map(|p| 1u32 << p);
            all.extend(
                std::iter::once(0)
                    .chain(rows)
                    .map(|rows| Choice::Gemv { rows }),
            );
        }
        Family::Backward => {
            let gate_rows = 4 * shape.hidden as u32;
            for rows in batch_rows(shape.batch)
                .into_iter()
                .filter(|&r| r <= BACKWARD_MAX_ROWS)
            {
                for units in BACKWARD_UNITS {
                    for splits in BACKWARD_SPLITS {
                        all.push(Choice::Backward(BackwardTiles {
                            units,
                            splits,
                            rows,
                            rows_per_split: gate_rows.div_ceil(splits).min(16),
                        }));
                    }
                }
            }
        }
        Family::KSplit => {
            let splits = (0..=MAX_K_SPLITS.trailing_zeros()).map(|p| 1u32 << p);
            all.extend(splits.map(|max| Choice::KSplit { max }));
        }
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|c| c.check(shape, caps).is_ok() && seen.insert(*c));
    Ok(all)
}

/// The recurrent variants for `shape` that the device can run: the table's choice first,
/// then the sequence kernel's splits, staging depths and subgroup use (small H only), then
/// the per-step kernel's units, splits, batch rows and subgroup folds. No duplicates.
pub fn recurrence_candidates(shape: RecurrentShape, caps: &DeviceCaps) -> Vec<Recurrence> {
    let mut all = vec![Recurrence::choose(shape, caps)];
    if shape.hidden == shape.hidden_out {
        for splits in (0..6).map(|p| 1u32 << p) {
            for steps in SEQUENCE_STEPS {
                for subgroups in [false, true] {
                    all.push(Recurrence::Sequence(SequenceTiles {
                        splits,
                        steps,
                        subgroups,
                    }));
                }
            }
        }
    }
    all.push(Recurrence::per_step_for(shape, caps));
    let quads = (shape.hidden_out as u32).div_ceil(4).max(1);
    for rows in batch_rows(shape.batch) {
        for units in STEP_UNITS {
            for splits in STEP_SPLITS.into_iter().filter(|&s| s <= quads) {
                for span in [1, 2, 4, 8] {
                    all.push(Recurrence::PerStep(StepTiles {
                        units,
                        splits,
                        rows,
                        quads: quads.div_ceil(splits).min(STEP_MAX_QUADS),
                        span,
                    }));
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|v| v.check(shape, caps).is_ok() && seen.insert(*v));
    all
}

/// Batch rows per workgroup worth trying: powers of two up to the first that holds the whole
/// batch (a larger tile only idles invocations), at most the kernel's `MAX_BT`.
fn batch_rows(batch: usize) -> Vec<u32> {
    let mut rows = vec![1];
    while (*rows.last().unwrap() as usize) < batch && rows.last() < Some(&STEP_MAX_ROWS) {
        rows.push(rows.last().unwrap() * 2);
    }
    rows
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

    fn shape(hidden: usize, hidden_out: usize, batch: usize) -> RecurrentShape {
        RecurrentShape {
            hidden,
            hidden_out,
            batch,
        }
    }

    #[test]
    fn the_table_comes_first_and_every_candidate_runs_on_the_device() {
        for caps in [caps(None), caps(Some(32)), caps(Some(8))] {
            for s in [
                shape(16, 16, 1),
                shape(64, 64, 3),
                shape(512, 512, 16),
                shape(1024, 1024, 64),
                shape(600, 300, 1),
            ] {
                let list = recurrence_candidates(s, &caps);
                assert_eq!(list[0], Recurrence::choose(s, &caps), "{s:?}");
                assert!(list.len() > 4, "{s:?}: {} candidates", list.len());
                let unique: std::collections::HashSet<_> = list.iter().collect();
                assert_eq!(unique.len(), list.len(), "{s:?}: duplicates");
                for v in &list {
                    v.check(s, &caps).unwrap();
                }
                // the sequence kernel only without a projection and at small H
                let sequence = list.iter().any(Recurrence::is_sequence);
                assert_eq!(
                    sequence,
                    s.hidden == s.hidden_out && s.hidden <= 128,
                    "{s:?}"
                );
                // subgroup kernels only where the device has subgroups
                let subgroups = list.iter().any(|v| match v {
                    Recurrence::Sequence(t) => t.subgroups,
                    Recurrence::PerStep(t) => t.span > 1,
                });
                assert!(!subgroups || caps.subgroup_size.is_some(), "{s:?}");
            }
        }
    }

    #[test]
    fn every_family_lists_the_table_first_and_only_what_runs() {
        for caps in [caps(None), caps(Some(32))] {
            for s in [shape(16, 16, 1), shape(512, 512, 16), shape(600, 300, 3)] {
                for family in Family::ALL {
                    let list = candidates(family, s, &caps).unwrap();
                    assert_eq!(list[0], Choice::table(family, s, &caps).unwrap());
                    assert!(list.len() > 2, "{family:?} {s:?}: {list:?}");
                    let unique: std::collections::HashSet<_> = list.iter().collect();
                    assert_eq!(unique.len(), list.len(), "{family:?} {s:?}: duplicates");
                    for c in &list {
                        assert_eq!(c.family(), family);
                        c.check(s, &caps).unwrap();
                    }
                }
            }
        }
    }

    #[test]
    fn batch_rows_stop_at_the_first_tile_that_holds_the_batch() {
        assert_eq!(batch_rows(1), [1]);
        assert_eq!(batch_rows(3), [1, 2, 4]);
        assert_eq!(batch_rows(16), [1, 2, 4, 8, 16]);
        assert_eq!(batch_rows(1000), [1, 2, 4, 8, 16]);
    }
}
