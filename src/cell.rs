//! The cell's variants, as ONNX's `LSTM` operator defines them beyond PyTorch's cell:
//! peepholes, a clip of the pre-activations, the forget gate coupled to the input gate, and
//! the three activation functions (with their `alpha`/`beta`) per direction. The default,
//! [`Cell::default`], is PyTorch's cell.
//!
//! One step of unit j, as ONNX Runtime's CPU provider computes it (`clip(x)` clamps to
//! `[-clip, clip]` when there is a clip; `P` is `[3H]` in the order i, f, o here):
//!
//! ```text
//! i = f(clip(z_i + P_i ⊙ c_{t-1}))
//! f = 1 - i                                  with input_forget
//!     f(clip(z_f + P_f ⊙ c_{t-1}))           otherwise
//! g = g(clip(z_g))
//! c_t = f ⊙ c_{t-1} + i ⊙ g
//! o = f(clip(z_o + P_o ⊙ c_t))
//! h_t = o ⊙ h(c_t)
//! ```

use std::fmt;
use std::str::FromStr;

use crate::cpu::Real;
use crate::error::{Error, Result};

/// One of ONNX's RNN activation functions, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `tanh(x)`
    Tanh,
    /// `max(0, x)`
    Relu,
    /// `min(1, max(0, alpha x + beta))`
    HardSigmoid {
        /// default 0.2
        alpha: f32,
        /// default 0.5
        beta: f32,
    },
    /// `x` for `x >= 0`, else `alpha x`
    LeakyRelu {
        /// default 0.01
        alpha: f32,
    },
    /// `x` for `x > alpha`, else 0
    ThresholdedRelu {
        /// default 0 (ONNX Runtime's)
        alpha: f32,
    },
    /// `alpha tanh(beta x)`
    ScaledTanh {
        /// default 0 (ONNX Runtime's)
        alpha: f32,
        /// default 0 (ONNX Runtime's)
        beta: f32,
    },
    /// `alpha x + beta`
    Affine {
        /// default 0 (ONNX Runtime's)
        alpha: f32,
        /// default 0
        beta: f32,
    },
    /// `x` for `x >= 0`, else `alpha (e^x - 1)`
    Elu {
        /// default 1
        alpha: f32,
    },
    /// `x / (1 + |x|)`
    Softsign,
    /// `ln(1 + e^x)`
    Softplus,
}

impl Eq for Activation {}

/// Every activation's ONNX name, how many of `activation_alpha` / `activation_beta` it takes,
/// and the defaults where the lists run out, in the order of [`Activation::code`]. The
/// defaults are ONNX Runtime's (measured: tests/fixtures/onnx/make_onnx_cases.py's
/// `act_*_defaults` cases): HardSigmoid's, LeakyRelu's and Elu's are their operators'; the
/// others are 0 (where the standalone operators say 1 for ThresholdedRelu's alpha,
/// ScaledTanh's and Affine's).
const TABLE: [(&str, usize, usize, f32, f32); 11] = [
    ("Sigmoid", 0, 0, 0.0, 0.0),
    ("Tanh", 0, 0, 0.0, 0.0),
    ("Relu", 0, 0, 0.0, 0.0),
    ("HardSigmoid", 1, 1, 0.2, 0.5),
    ("LeakyRelu", 1, 0, 0.01, 0.0),
    ("ThresholdedRelu", 1, 0, 0.0, 0.0),
    ("ScaledTanh", 1, 1, 0.0, 0.0),
    ("Affine", 1, 1, 0.0, 0.0),
    ("Elu", 1, 0, 1.0, 0.0),
    ("Softsign", 0, 0, 0.0, 0.0),
    ("Softplus", 0, 0, 0.0, 0.0),
];

impl Activation {
    /// Its number in the GPU kernels' `ACT_*` constants (lstm_common.wgsl).
    pub fn code(self) -> u32 {
        match self {
            Activation::Sigmoid => 0,
            Activation::Tanh => 1,
            Activation::Relu => 2,
            Activation::HardSigmoid { .. } => 3,
            Activation::LeakyRelu { .. } => 4,
            Activation::ThresholdedRelu { .. } => 5,
            Activation::ScaledTanh { .. } => 6,
            Activation::Affine { .. } => 7,
            Activation::Elu { .. } => 8,
            Activation::Softsign => 9,
            Activation::Softplus => 10,
        }
    }

    /// ONNX's name for it.
    pub fn name(self) -> &'static str {
        TABLE[self.code() as usize].0
    }

    /// (alpha, beta), 0 where it takes none.
    pub fn params(self) -> (f32, f32) {
        match self {
            Activation::HardSigmoid { alpha, beta }
            | Activation::ScaledTanh { alpha, beta }
            | Activation::Affine { alpha, beta } => (alpha, beta),
            Activation::LeakyRelu { alpha }
            | Activation::ThresholdedRelu { alpha }
            | Activation::Elu { alpha } => (alpha, 0.0),
            _ => (0.0, 0.0),
        }
    }

    /// The activation named `name` (ONNX's names, any case), taking its alpha and beta from
    /// the front of `alphas` and `betas` when it uses them (ONNX consumes the lists in the
    /// order of the activations), else its defaults.
    pub fn from_onnx(
        name: &str,
        alphas: &mut impl Iterator<Item = f32>,
        betas: &mut impl Iterator<Item = f32>,
    ) -> Result<Self> {
        let code = TABLE
            .iter()
            .position(|row| row.0.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::Input(format!(
                    "activation `{name}`: not one of ONNX's RNN activations ({})",
                    TABLE.map(|row| row.0).join(", ")
                ))
            })?;
        let (_, takes_alpha, takes_beta, alpha, beta) = TABLE[code];
        let alpha = if takes_alpha > 0 {
            alphas.next().unwrap_or(alpha)
        } else {
            alpha
        };
        let beta = if takes_beta > 0 {
            betas.next().unwrap_or(beta)
        } else {
            beta
        };
        Ok(match code {
            0 => Activation::Sigmoid,
            1 => Activation::Tanh,
            2 => Activation::Relu,
            3 => Activation::HardSigmoid { alpha, beta },
            4 => Activation::LeakyRelu { alpha },
            5 => Activation::ThresholdedRelu { alpha },
            6 => Activation::ScaledTanh { alpha, beta },
            7 => Activation::Affine { alpha, beta },
            8 => Activation::Elu { alpha },
            9 => Activation::Softsign,
            _ => Activation::Softplus,
        })
    }

    /// The function at `x`.
    pub fn apply<T: Real>(self, x: T) -> T {
        let (a, b) = self.params();
        let (a, b) = (T::from_f32(a), T::from_f32(b));
        let zero = T::ZERO;
        match self {
            Activation::Sigmoid => crate::cpu::sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Relu => {
                if x > zero {
                    x
                } else {
                    zero
                }
            }
            Activation::HardSigmoid { .. } => {
                let y = a * x + b;
                if y < zero {
                    zero
                } else if y > T::ONE {
                    T::ONE
                } else {
                    y
                }
            }
            Activation::LeakyRelu { .. } => {
                if x >= zero {
                    x
                } else {
                    a * x
                }
            }
            Activation::ThresholdedRelu { .. } => {
                if x > a {
                    x
                } else {
                    zero
                }
            }
            Activation::ScaledTanh { .. } => a * (b * x).tanh(),
            Activation::Affine { .. } => a * x + b,
            Activation::Elu { .. } => {
                if x >= zero {
                    x
                } else {
                    a * (x.exp() - T::ONE)
                }
            }
            Activation::Softsign => x / (T::ONE + if x < zero { -x } else { x }),
            Activation::Softplus => (T::ONE + x.exp()).ln(),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (alpha, beta) = self.params();
        let (_, takes_alpha, takes_beta, _, _) = TABLE[self.code() as usize];
        write!(f, "{}", self.name())?;
        match (takes_alpha, takes_beta) {
            (1, 1) => write!(f, "({alpha},{beta})"),
            (1, 0) => write!(f, "({alpha})"),
            _ => Ok(()),
        }
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// The form [`Activation`] displays: `Tanh`, `LeakyRelu(0.1)`, `Affine(2,0.5)`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::Input(format!(
                "activation `{text}`: expected e.g. Tanh, LeakyRelu(0.1), Affine(2,0.5)"
            ))
        };
        let (name, args) = match text.split_once('(') {
            Some((name, rest)) => (name, rest.strip_suffix(')').ok_or_else(bad)?),
            None => (text, ""),
        };
        let numbers: Vec<f32> = args
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| a.trim().parse().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        let code = TABLE.iter().position(|row| row.0 == name).ok_or_else(bad)?;
        let (_, takes_alpha, takes_beta, ..) = TABLE[code];
        if numbers.len() != takes_alpha + takes_beta {
            return Err(bad());
        }
        let (mut alphas, mut betas) = (
            numbers.iter().copied().take(takes_alpha),
            numbers.iter().copied().skip(takes_alpha),
        );
        Self::from_onnx(name, &mut alphas, &mut betas)
    }
}

/// The cell's variant; the default is PyTorch's cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// Peephole weights (`weight_p_l{k}`, `[3H]`: i, f, o) are part of every layer.
    pub peephole: bool,
    /// Pre-activations are clamped to `[-clip, clip]`.
    pub clip: Option<f32>,
    /// The forget gate is `1 - i` (ONNX's `input_forget`).
    pub input_forget: bool,
    /// `(f, g, h)` of direction 0 and direction 1 (the second is used when bidirectional).
    pub activations: [[Activation; 3]; 2],
}

impl Eq for Cell {}

/// PyTorch's (f, g, h).
pub const STANDARD_ACTIVATIONS: [Activation; 3] =
    [Activation::Sigmoid, Activation::Tanh, Activation::Tanh];

impl Default for Cell {
    fn default() -> Self {
        Self {
            peephole: false,
            clip: None,
            input_forget: false,
            activations: [STANDARD_ACTIVATIONS; 2],
        }
    }
}

impl Cell {
    /// Whether this is PyTorch's cell (what training supports).
    pub fn is_standard(&self) -> bool {
        *self == Cell::default()
    }

    /// Checks the clip: finite and positive.
    pub fn validate(&self) -> Result<()> {
        match self.clip {
            Some(c) if !(c > 0.0 && c.is_finite()) => Err(Error::Config(format!(
                "clip {c}: must be a positive finite number"
            ))),
            _ => Ok(()),
        }
    }

    /// `clip(x)`.
    pub fn clamp<T: Real>(&self, x: T) -> T {
        match self.clip {
            Some(c) => {
                let c = T::from_f32(c);
                if x > c {
                    c
                } else if x < -c {
                    -c
                } else {
                    x
                }
            }
            None => x,
        }
    }

    /// One unit's step (see the module docs) from its pre-activations `z` (i, f, g, o; biases
    /// included, no peephole yet), `c_old`, and its peepholes `p` (i, f, o; zeros without):
    /// the activations (i, f, g, o), c_t and h_t.
    pub fn step<T: Real>(
        &self,
        direction: usize,
        z: [T; 4],
        c_old: T,
        p: [T; 3],
    ) -> ([T; 4], T, T) {
        let [f_act, g_act, h_act] = self.activations[direction];
        let i = f_act.apply(self.clamp(z[0] + p[0] * c_old));
        let f = if self.input_forget {
            T::ONE - i
        } else {
            f_act.apply(self.clamp(z[1] + p[1] * c_old))
        };
        let g = g_act.apply(self.clamp(z[2]));
        let c = f * c_old + i * g;
        let o = f_act.apply(self.clamp(z[3] + p[2] * c));
        ([i, f, g, o], c, o * h_act.apply(c))
    }

    /// A one-line description, e.g. `peephole, clip 3, f/g/h Sigmoid/Tanh/Tanh`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.peephole {
            parts.push("peephole".to_string());
        }
        if let Some(c) = self.clip {
            parts.push(format!("clip {c}"));
        }
        if self.input_forget {
            parts.push("input_forget".into());
        }
        for (d, acts) in self.activations.iter().enumerate() {
            if *acts != STANDARD_ACTIVATIONS {
                parts.push(format!("f/g/h[{d}] {}/{}/{}", acts[0], acts[1], acts[2]));
            }
        }
        if parts.is_empty() {
            "PyTorch's cell".into()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_their_definitions_and_round_trip() {
        let e = std::f64::consts::E;
        let cases: [(Activation, f64, f64); 12] = [
            (Activation::Sigmoid, 0.0, 0.5),
            (Activation::Tanh, 0.5, 0.5f64.tanh()),
            (Activation::Relu, -2.0, 0.0),
            (
                Activation::HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                },
                1.0,
                0.7,
            ),
            (
                Activation::HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                },
                5.0,
                1.0,
            ),
            (Activation::LeakyRelu { alpha: 0.5 }, -2.0, -1.0),
            (Activation::ThresholdedRelu { alpha: 1.0 }, 0.5, 0.0),
            (
                Activation::ScaledTanh {
                    alpha: 2.0,
                    beta: 0.5,
                },
                1.0,
                2.0 * 0.5f64.tanh(),
            ),
            (
                Activation::Affine {
                    alpha: 2.0,
                    beta: 0.5,
                },
                1.0,
                2.5,
            ),
            (Activation::Elu { alpha: 2.0 }, -1.0, 2.0 * (1.0 / e - 1.0)),
            (Activation::Softsign, -1.0, -0.5),
            (Activation::Softplus, 0.0, 2f64.ln()),
        ];
        for (act, x, want) in cases {
            let got = act.apply(x);
            assert!((got - want).abs() < 1e-7, "{act}({x}) = {got}, want {want}");
            assert_eq!(act.to_string().parse::<Activation>().unwrap(), act);
        }
        // ONNX consumes alpha/beta in the order of the activations that take them
        let (mut alphas, mut betas) = ([0.3f32, 0.7].into_iter(), [0.1f32].into_iter());
        let mut next = |name| Activation::from_onnx(name, &mut alphas, &mut betas).unwrap();
        assert_eq!(next("sigmoid"), Activation::Sigmoid);
        assert_eq!(next("LeakyRelu"), Activation::LeakyRelu { alpha: 0.3 });
        assert_eq!(
            next("Affine"),
            Activation::Affine {
                alpha: 0.7,
                beta: 0.1
            }
        );
        assert_eq!(
            next("HardSigmoid"),
            Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5
            }
        );
        let none = std::iter::empty();
        let msg = Activation::from_onnx("Gelu", &mut none.clone(), &mut std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("Gelu"), "{msg}");
    }

    #[test]
    fn the_default_cell_is_pytorchs() {
        let cell = Cell::default();
        assert!(cell.is_standard());
        let z = [0.3f64, -0.2, 0.5, 0.1];
        let ([i, f, g, o], c, h) = cell.step(0, z, 0.4, [0.0; 3]);
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        assert_eq!([i, f, g, o], [s(0.3), s(-0.2), 0.5f64.tanh(), s(0.1)]);
        assert_eq!(c, s(-0.2) * 0.4 + s(0.3) * 0.5f64.tanh());
        assert_eq!(h, s(0.1) * c.tanh());
        // coupled gates, clip and peepholes by hand
        let coupled = Cell {
            input_forget: true,
            clip: Some(0.25),
            peephole: true,
            ..cell
        };
        let p = [1.0, 9.0, -2.0];
        let ([i, f, g, o], c, _) = coupled.step(0, z, 0.4, p);
        assert_eq!(i, s(0.25), "0.3 + 0.4 clipped to 0.25");
        assert_eq!(f, 1.0 - i, "P_f unused with input_forget");
        assert_eq!(g, 0.25f64.tanh());
        assert_eq!(o, s(coupled.clamp(0.1 - 2.0 * c)));
        assert!(Cell {
            clip: Some(0.0),
            ..cell
        }
        .validate()
        .is_err());
        assert!(Cell {
            clip: Some(f32::NAN),
            ..cell
        }
        .validate()
        .is_err());
    }
}
