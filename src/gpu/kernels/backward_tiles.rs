//! The tiles of the backward step (lstm_backward.wgsl), chosen like the forward per-step
//! kernel's: every batch row in one workgroup and the 4H gate rows split 32 ways at B <= 4,
//! tiles of 8 rows split 8 ways beyond; shrunk until the workgroup fits the device.

use super::sizes::{prev_power_of_two, shrink_tiles};
use crate::error::{Error, Result};

/// `MAX_BT` in lstm_backward.wgsl.
pub const BACKWARD_MAX_ROWS: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackwardTiles {
    /// `U`: output units per workgroup
    pub units: u32,
    /// `KS`: slices of the 4H gate rows
    pub splits: u32,
    /// `BT`: batch rows per workgroup
    pub rows: u32,
    /// `RPI`: gate rows per slice per staging round
    pub rows_per_split: u32,
}

impl BackwardTiles {
    pub fn for_shape(hidden: usize, batch: usize, limits: &wgpu::Limits) -> Result<Self> {
        let gate_rows = 4 * hidden as u32;
        let (rows, max_splits) = match batch {
            0..=1 => (1, 32),
            2 => (2, 32),
            3..=4 => (4, 32),
            _ => (8, 8),
        };
        let splits = max_splits.min(prev_power_of_two(gate_rows.div_ceil(4)));
        let mut tiles = Self {
            units: 8,
            splits,
            rows,
            rows_per_split: gate_rows.div_ceil(splits).min(16),
        };
        while !tiles.fits(limits) {
            let t = &mut tiles;
            if !shrink_tiles(
                &mut t.rows_per_split,
                &mut t.splits,
                &mut t.units,
                &mut t.rows,
            ) {
                return Err(Error::Limit {
                    what: "the backward step's smallest workgroup".into(),
                    limit: "max_compute_workgroup_storage_size",
                    needed: tiles.bytes(),
                    available: limits.max_compute_workgroup_storage_size as u64,
                });
            }
        }
        Ok(tiles)
    }

    fn fits(&self, limits: &wgpu::Limits) -> bool {
        let invocations = self.units * self.splits;
        invocations <= limits.max_compute_invocations_per_workgroup
            && invocations <= limits.max_compute_workgroup_size_x
            && self.bytes() <= limits.max_compute_workgroup_storage_size as u64
    }

    /// Workgroup memory: the dz tile and the partial sums.
    fn bytes(&self) -> u64 {
        let (r, s) = (self.rows as u64, self.splits as u64);
        r * s * self.rows_per_split as u64 * 4 + r * s * self.units as u64 * 4
    }

    pub fn constants(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("U", self.units as f64),
            ("KS", self.splits as f64),
            ("BT", self.rows as f64),
            ("RPI", self.rows_per_split as f64),
        ]
    }

    /// Workgroups of a dispatch over `units` output units.
    pub fn workgroups(&self, units: usize, batch: usize, dirs: usize) -> [usize; 3] {
        [
            units.div_ceil(self.units as usize),
            batch.div_ceil(self.rows as usize),
            dirs,
        ]
    }
}
