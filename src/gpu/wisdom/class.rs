//! Shape classes: nearby shapes share a tuned choice. A choice depends on the recurrent
//! shape (H, H_out, B), the directions and whether the model trains; T and I do not change
//! which recurrent kernel is fastest (T only repeats it; I goes to the input projection).
//!
//! Bucketing: H and H_out round up to a power of two (H in 257..=512 is class 512); B is
//! exact up to 4 (where the table's tiles change row by row) and rounds up to a power of two
//! beyond; a projection's class is its own H_out bucket, none is written `p=h`. A class's
//! choice is checked again for each shape that uses it, and a shape it does not fit gets the
//! table's choice.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::gpu::kernels::RecurrentShape;

/// A bucket of shapes that share a tuned choice; displays as `h=512 p=h b=16 d=1 fwd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeClass {
    /// H rounded up to a power of two.
    pub hidden: usize,
    /// H_out rounded up to a power of two, `None` without a projection.
    pub projection: Option<usize>,
    /// B exact up to 4, else rounded up to a power of two.
    pub batch: usize,
    /// 1 or 2.
    pub directions: usize,
    /// Whether the shape trains (forward and backward) or only runs forward.
    pub training: bool,
}

impl ShapeClass {
    /// The class of `shape` with `directions` directions.
    pub fn of(shape: RecurrentShape, directions: usize, training: bool) -> Self {
        let up = |n: usize| n.max(1).next_power_of_two();
        Self {
            hidden: up(shape.hidden),
            projection: (shape.hidden_out != shape.hidden).then(|| up(shape.hidden_out)),
            batch: if shape.batch <= 4 {
                shape.batch.max(1)
            } else {
                up(shape.batch)
            },
            directions,
            training,
        }
    }
}

impl fmt::Display for ShapeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h={} p=", self.hidden)?;
        match self.projection {
            Some(p) => write!(f, "{p}")?,
            None => write!(f, "h")?,
        }
        let mode = if self.training { "train" } else { "fwd" };
        write!(f, " b={} d={} {mode}", self.batch, self.directions)
    }
}

impl FromStr for ShapeClass {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::Input(format!(
                "shape class `{text}`: expected `h=N p=N|h b=N d=1|2 fwd|train`"
            ))
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let [h, p, b, d, mode] = words[..] else {
            return Err(bad());
        };
        let field = |word: &str, key: &str| -> Result<usize> {
            word.strip_prefix(key)
                .and_then(|v| v.parse().ok())
                .filter(|&v| v > 0)
                .ok_or_else(bad)
        };
        let class = Self {
            hidden: field(h, "h=")?,
            projection: match p {
                "p=h" => None,
                _ => Some(field(p, "p=")?),
            },
            batch: field(b, "b=")?,
            directions: field(d, "d=")?,
            training: match mode {
                "fwd" => false,
                "train" => true,
                _ => return Err(bad()),
            },
        };
        if class.directions > 2 {
            return Err(bad());
        }
        Ok(class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(hidden: usize, hidden_out: usize, batch: usize) -> RecurrentShape {
        RecurrentShape {
            hidden,
            hidden_out,
            batch,
        }
    }

    #[test]
    fn nearby_shapes_share_a_class_and_classes_round_trip() {
        let a = ShapeClass::of(shape(300, 300, 12), 1, false);
        assert_eq!(a, ShapeClass::of(shape(512, 512, 16), 1, false));
        assert_ne!(a, ShapeClass::of(shape(513, 513, 16), 1, false));
        assert_ne!(a, ShapeClass::of(shape(512, 512, 17), 1, false));
        assert_ne!(a, ShapeClass::of(shape(512, 512, 16), 2, false));
        assert_ne!(a, ShapeClass::of(shape(512, 512, 16), 1, true));
        assert_eq!(a.to_string(), "h=512 p=h b=16 d=1 fwd");
        // exact batches up to 4
        assert_ne!(
            ShapeClass::of(shape(64, 64, 3), 1, false),
            ShapeClass::of(shape(64, 64, 4), 1, false)
        );
        let projected = ShapeClass::of(shape(600, 300, 1), 2, true);
        assert_eq!(projected.to_string(), "h=1024 p=512 b=1 d=2 train");
        for class in [a, projected] {
            assert_eq!(class.to_string().parse::<ShapeClass>().unwrap(), class);
        }
        for bad in [
            "",
            "h=512 p=h b=16 d=1",
            "h=0 p=h b=1 d=1 fwd",
            "h=8 p=h b=1 d=3 fwd",
            "h=8 p=x b=1 d=1 fwd",
            "h=8 p=h b=1 d=1 both",
        ] {
            assert!(bad.parse::<ShapeClass>().is_err(), "{bad}");
        }
    }
}
