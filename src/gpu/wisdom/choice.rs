//! What a tuned entry holds: one choice of one kernel family, with the text form the wisdom
//! file and the `tune` table write, and its check against a shape on a device.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::gpu::kernels::{
    BackwardTiles, DeviceCaps, KernelChoice, Recurrence, RecurrentShape, GEMV_MAX_ROWS,
};

/// The kernel families that have variants worth measuring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// The recurrent kernel and its tiles ([`Recurrence`]): forward and training.
    Recurrence,
    /// Products of few rows as gemv or as the gemm (bitwise the same): forward and training.
    Gemv,
    /// The backward step's tiles ([`BackwardTiles`]): training.
    Backward,
    /// The weight-gradient products' split of K (T·B): training.
    KSplit,
}

impl Family {
    /// Every family, in the order the tuner measures them.
    pub const ALL: [Family; 4] = [
        Family::Recurrence,
        Family::Gemv,
        Family::Backward,
        Family::KSplit,
    ];

    /// Its name in the wisdom file.
    pub fn name(self) -> &'static str {
        match self {
            Family::Recurrence => "recurrence",
            Family::Gemv => "gemv",
            Family::Backward => "backward",
            Family::KSplit => "ksplit",
        }
    }

    /// The family a name in the wisdom file means.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether the family runs in a forward-only (`false`) or a training (`true`) shape.
    pub fn runs_in(self, training: bool) -> bool {
        match self {
            Family::Recurrence | Family::Gemv => true,
            Family::Backward | Family::KSplit => training,
        }
    }
}

/// One choice of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Choice {
    /// `step u=4 ks=32 bt=1 qpi=4`, `sequence ks=4 p=32 sg=1`
    Recurrence(Recurrence),
    /// `gemv rows=8`: products of at most this many rows run as gemv (0: always the gemm).
    Gemv {
        /// At most 8, the most gemv runs.
        rows: u32,
    },
    /// `back u=8 ks=32 bt=1 rpi=16`
    Backward(BackwardTiles),
    /// `ksplit max=8`: a weight-gradient product splits K at most this many ways (1: never).
    KSplit {
        /// At least 1.
        max: u32,
    },
}

/// Where a prepared shape's recurrent kernel came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The built-in table.
    Table,
    /// A saved (or, while tuning, pinned) measurement.
    Wisdom,
    /// The caller's `set_kernel`.
    Forced,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Table => "table",
            Source::Wisdom => "wisdom",
            Source::Forced => "forced",
        })
    }
}

/// The most ways the weight-gradient products split K (the table's choice).
pub const MAX_K_SPLITS: u32 = 8;

impl Choice {
    /// The family this choice belongs to.
    pub fn family(&self) -> Family {
        match self {
            Choice::Recurrence(_) => Family::Recurrence,
            Choice::Gemv { .. } => Family::Gemv,
            Choice::Backward(_) => Family::Backward,
            Choice::KSplit { .. } => Family::KSplit,
        }
    }

    /// What the table runs for `family` at `shape` on the device.
    pub fn table(family: Family, shape: RecurrentShape, caps: &DeviceCaps) -> Result<Self> {
        Ok(match family {
            Family::Recurrence => Choice::Recurrence(Recurrence::choose(shape, caps)),
            Family::Gemv => Choice::Gemv {
                rows: GEMV_MAX_ROWS as u32,
            },
            Family::Backward => Choice::Backward(BackwardTiles::for_shape(
                shape.hidden,
                shape.batch,
                &caps.limits,
            )?),
            Family::KSplit => Choice::KSplit { max: MAX_K_SPLITS },
        })
    }

    /// Whether this choice can run `shape` on the device (an error naming why not).
    pub fn check(&self, shape: RecurrentShape, caps: &DeviceCaps) -> Result<()> {
        match self {
            Choice::Recurrence(v) => v.check(shape, caps),
            Choice::Backward(tiles) => tiles.check(&caps.limits),
            Choice::Gemv { rows } if *rows as usize > GEMV_MAX_ROWS => Err(Error::Config(format!(
                "`{self}`: gemv runs at most {GEMV_MAX_ROWS} rows"
            ))),
            Choice::KSplit { max: 0 } => Err(Error::Config(format!("`{self}`: at least 1 split"))),
            Choice::Gemv { .. } | Choice::KSplit { .. } => Ok(()),
        }
    }
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Recurrence(v) => write!(f, "{v}"),
            Choice::Gemv { rows } => write!(f, "gemv rows={rows}"),
            Choice::Backward(tiles) => write!(f, "{tiles}"),
            Choice::KSplit { max } => write!(f, "ksplit max={max}"),
        }
    }
}

impl FromStr for Choice {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::Input(format!(
                "choice `{text}`: expected a kernel (`step ...`, `sequence ...`), `back ...`, \
                 `gemv rows=N` or `ksplit max=N`"
            ))
        };
        let number = |word: Option<&str>, key: &str| -> Result<u32> {
            word.and_then(|w| w.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .ok_or_else(bad)
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.first().copied() {
            Some("step" | "sequence") => match text.parse::<KernelChoice>()? {
                KernelChoice::Exact(v) => Ok(Choice::Recurrence(v)),
                _ => Err(bad()),
            },
            Some("back") => Ok(Choice::Backward(text.parse()?)),
            Some("gemv") if words.len() == 2 => Ok(Choice::Gemv {
                rows: number(words.get(1).copied(), "rows=")?,
            }),
            Some("ksplit") if words.len() == 2 => Ok(Choice::KSplit {
                max: number(words.get(1).copied(), "max=")?,
            }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_round_trip_and_name_their_family() {
        for (text, family) in [
            ("step u=4 ks=32 bt=1 qpi=4", Family::Recurrence),
            ("sequence ks=4 p=32 sg=1", Family::Recurrence),
            ("gemv rows=0", Family::Gemv),
            ("back u=8 ks=32 bt=1 rpi=16", Family::Backward),
            ("ksplit max=2", Family::KSplit),
        ] {
            let choice: Choice = text.parse().unwrap();
            assert_eq!(choice.to_string(), text);
            assert_eq!(choice.family(), family);
            assert_eq!(Family::from_name(family.name()), Some(family));
        }
        for bad in [
            "",
            "auto",
            "step",
            "gemv",
            "gemv rows=x",
            "ksplit max=2 x",
            "back u=1",
        ] {
            assert!(bad.parse::<Choice>().is_err(), "{bad}");
        }
        let caps = DeviceCaps {
            limits: wgpu::Limits::default(),
            subgroup_size: None,
        };
        let shape = RecurrentShape {
            hidden: 64,
            hidden_out: 64,
            batch: 2,
        };
        for family in Family::ALL {
            let table = Choice::table(family, shape, &caps).unwrap();
            assert_eq!(table.family(), family);
            table.check(shape, &caps).unwrap();
        }
        assert!(Choice::Gemv { rows: 9 }.check(shape, &caps).is_err());
        assert!(Choice::KSplit { max: 0 }.check(shape, &caps).is_err());
    }
}
