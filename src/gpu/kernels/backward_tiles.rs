//! The tiles of the backward step (lstm_backward.wgsl), chosen like the forward per-step
//! kernel's: every batch row in one workgroup and the 4H gate rows split 32 ways at B <= 4,
//! tiles of 8 rows split 8 ways beyond; shrunk until the workgroup fits the device.

use std::fmt;
use std::str::FromStr;

use super::sizes::{prev_power_of_two, shrink_tiles};
use crate::error::{Error, Result};

/// `MAX_BT` in lstm_backward.wgsl.
pub const BACKWARD_MAX_ROWS: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

    /// Whether these tiles can run on a device with `limits`: every field at least 1, at most
    /// `MAX_BT` batch rows, and the workgroup within the limits (an error naming the limit).
    pub fn check(&self, limits: &wgpu::Limits) -> Result<()> {
        let fields = [self.units, self.splits, self.rows, self.rows_per_split];
        if fields.contains(&0) || self.rows > BACKWARD_MAX_ROWS {
            return Err(Error::Config(format!(
                "backward tiles `{self}`: every field at least 1, bt at most {BACKWARD_MAX_ROWS}"
            )));
        }
        let invocations = self.units * self.splits;
        let most = limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x);
        if invocations > most {
            return Err(Error::Limit {
                what: format!("the backward step's workgroup `{self}`"),
                limit: "max_compute_invocations_per_workgroup",
                needed: invocations as u64,
                available: most as u64,
            });
        }
        if !self.fits(limits) {
            return Err(Error::Limit {
                what: format!("the backward step's workgroup memory `{self}`"),
                limit: "max_compute_workgroup_storage_size",
                needed: self.bytes(),
                available: limits.max_compute_workgroup_storage_size as u64,
            });
        }
        Ok(())
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

impl fmt::Display for BackwardTiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "back u={} ks={} bt={} rpi={}",
            self.units, self.splits, self.rows, self.rows_per_split
        )
    }
}

impl FromStr for BackwardTiles {
    type Err = Error;

    /// The form [`BackwardTiles`] displays: `back u=N ks=N bt=N rpi=N`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::Input(format!(
                "backward tiles `{text}`: expected `back u=N ks=N bt=N rpi=N`"
            ))
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let ["back", u, ks, bt, rpi] = words[..] else {
            return Err(bad());
        };
        let field = |word: &str, key: &str| -> Result<u32> {
            word.strip_prefix(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(bad)
        };
        Ok(Self {
            units: field(u, "u=")?,
            splits: field(ks, "ks=")?,
            rows: field(bt, "bt=")?,
            rows_per_split: field(rpi, "rpi=")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_round_trip_and_bad_ones_are_errors() {
        let limits = wgpu::Limits::default();
        for (h, b) in [(1, 1), (64, 3), (512, 16), (1024, 64)] {
            let tiles = BackwardTiles::for_shape(h, b, &limits).unwrap();
            tiles.check(&limits).unwrap();
            assert_eq!(tiles.to_string().parse::<BackwardTiles>().unwrap(), tiles);
        }
        for bad in [
            "",
            "back u=8 ks=2 bt=1",
            "step u=8 ks=2 bt=1 rpi=4",
            "back u=8 ks=x bt=1 rpi=4",
        ] {
            assert!(bad.parse::<BackwardTiles>().is_err(), "{bad}");
        }
        let zero = BackwardTiles {
            units: 0,
            splits: 1,
            rows: 1,
            rows_per_split: 1,
        };
        assert!(zero.check(&limits).is_err());
        let deep = BackwardTiles {
            units: 8,
            splits: 1,
            rows: BACKWARD_MAX_ROWS + 1,
            rows_per_split: 1,
        };
        assert!(deep.check(&limits).is_err());
        let wide = BackwardTiles {
            units: 64,
            splits: 64,
            rows: 1,
            rows_per_split: 1,
        };
        assert!(wide.check(&limits).is_err(), "4096 invocations");
    }
}
