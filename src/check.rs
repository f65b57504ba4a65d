//! Conformance checking: random configurations run on the GPU and on the CPU reference (f64),
//! compared with a named tolerance. The `check` command uses this to validate a GPU/driver.

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::cpu::CpuLstm;
use crate::error::Result;
use crate::gpu::{GpuContext, GpuLstm};
use crate::head::Linear;
use crate::shape::Inputs;
use crate::tensor::Tensor;
use crate::{LstmConfig, LstmWeights};

/// `|got - want| <= abs + rel * |want|`, elementwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute part.
    pub abs: f64,
    /// Relative part, a multiple of `|want|`.
    pub rel: f64,
}

/// GPU (f32) against the CPU reference in f64.
pub const GPU_VS_F64: Tolerance = Tolerance {
    abs: 2e-5,
    rel: 1e-4,
};

/// GPU gradients (f32) against the CPU reference's in f64: they sum over many more terms
/// than outputs do (every step and batch row), so the bound is looser than [`GPU_VS_F64`].
pub const GPU_GRADIENTS_VS_F64: Tolerance = Tolerance {
    abs: 3e-5,
    rel: 3e-4,
};

/// The first element outside a tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Its flat (row-major) index.
    pub index: usize,
    /// The value compared (NaN when the shapes differ).
    pub got: f64,
    /// The reference value (NaN when the shapes differ).
    pub want: f64,
    /// How many elements are outside the tolerance.
    pub count: usize,
}

impl Tolerance {
    /// The first element of `got` outside the tolerance of `want` (NaN never matches).
    pub fn first_mismatch(&self, got: &[f32], want: &[f64]) -> Option<Mismatch> {
        let bad = |i: &usize| {
            let (g, w) = (got[*i] as f64, want[*i]);
            let within = (g - w).abs() <= self.abs + self.rel * w.abs();
            !within
        };
        let count = (0..got.len().min(want.len())).filter(bad).count();
        let index = (0..got.len().min(want.len())).find(bad)?;
        Some(Mismatch {
            index,
            got: got[index] as f64,
            want: want[index],
            count,
        })
    }
}

/// A random cell variant: peepholes, a clip, coupled gates and activations each drawn.
fn random_cell(rng: &mut StdRng) -> crate::cell::Cell {
    use crate::cell::{Activation, Cell};
    let activation = |rng: &mut StdRng| {
        let (a, b) = (
            rng.random_range(0.1f32..2.0),
            rng.random_range(-0.5f32..0.5),
        );
        match rng.random_range(0..11) {
            0 => Activation::Sigmoid,
            1 => Activation::Tanh,
            2 => Activation::Relu,
            3 => Activation::HardSigmoid { alpha: a, beta: b },
            4 => Activation::LeakyRelu { alpha: a },
            5 => Activation::ThresholdedRelu { alpha: b },
            6 => Activation::ScaledTanh { alpha: a, beta: a },
            7 => Activation::Affine { alpha: a, beta: b },
            8 => Activation::Elu { alpha: a },
            9 => Activation::Softsign,
            _ => Activation::Softplus,
        }
    };
    let per_direction = |rng: &mut StdRng| {
        if rng.random_bool(0.5) {
            crate::cell::STANDARD_ACTIVATIONS
        } else {
            [activation(rng), activation(rng), activation(rng)]
        }
    };
    let activations = [per_direction(rng), per_direction(rng)];
    Cell {
        peephole: rng.random_bool(0.5),
        clip: rng.random_bool(0.5).then(|| rng.random_range(0.5f32..3.0)),
        input_forget: rng.random_bool(0.3),
        activations,
    }
}

/// A random model and inputs.
pub struct Case {
    /// The model, possibly with a head.
    pub weights: LstmWeights,
    /// `[T, B, I]` (`[B, T, I]` when `batch_first`), or unbatched `[T, I]`.
    pub x: Tensor,
    /// `[D*L, B, H_out]` (`[D*L, H_out]` unbatched), when drawn.
    pub h0: Option<Tensor>,
    /// `[D*L, B, H]` (`[D*L, H]` unbatched), when drawn.
    pub c0: Option<Tensor>,
    /// `[B]`, each in `1..=T`, when drawn.
    pub lengths: Option<Vec<usize>>,
}

impl Case {
    /// A random configuration (small sizes, every option drawn) from `seed`.
    pub fn random(seed: u64) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let hidden = rng.random_range(1..=80);
        let proj_size = if hidden > 1 && rng.random_bool(0.3) {
            rng.random_range(1..hidden)
        } else {
            0
        };
        let mut config = LstmConfig {
            input_size: rng.random_range(1..=40),
            hidden_size: hidden,
            num_layers: rng.random_range(1..=3),
            bidirectional: rng.random_bool(0.5),
            bias: rng.random_bool(0.8),
            proj_size,
            batch_first: rng.random_bool(0.3),
            cell: crate::cell::Cell::default(),
        };
        // a third of the cases without a projection get an ONNX cell variant, drawn from a
        // stream of its own (the other draws are those of the cases before variants existed)
        let mut cells = StdRng::seed_from_u64(seed ^ 0xce11);
        if proj_size == 0 && cells.random_bool(0.3) {
            config.cell = random_cell(&mut cells);
            if !config.bidirectional {
                config.cell.activations[1] = config.cell.activations[0];
            }
        }
        let (seq_len, batch) = (rng.random_range(1..=12), rng.random_range(1..=6));
        let mut weights = LstmWeights::init(&config, rng.random())?;
        if rng.random_bool(0.3) {
            let width = config.num_directions() * config.output_size();
            weights =
                weights.with_head(Linear::init(width, rng.random_range(1..=10), rng.random())?)?;
        }
        Self::inputs_for(weights, (seq_len, batch), seed, &mut rng)
    }

    /// Random inputs for `weights` (`check --weights`): T and B drawn from `seed`, with
    /// initial states and lengths half of the time each.
    pub fn for_weights(weights: LstmWeights, seed: u64) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (seq_len, batch) = (rng.random_range(1..=12), rng.random_range(1..=6));
        Self::inputs_for(weights, (seq_len, batch), seed, &mut rng)
    }

    fn inputs_for(
        weights: LstmWeights,
        (seq_len, batch): (usize, usize),
        seed: u64,
        rng: &mut StdRng,
    ) -> Result<Self> {
        let config = weights.config().clone();
        let with_state = rng.random_bool(0.5);
        let lengths: Option<Vec<usize>> = rng
            .random_bool(0.5)
            .then(|| (0..batch).map(|_| rng.random_range(1..=seq_len)).collect());
        let mut tensor = |shape: Vec<usize>| {
            let len = shape.iter().product();
            Tensor::new(
                shape,
                (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
            )
        };
        let x_shape = if config.batch_first {
            vec![batch, seq_len, config.input_size]
        } else {
            vec![seq_len, batch, config.input_size]
        };
        let x = tensor(x_shape)?;
        let states = config.num_layers * config.num_directions();
        let h0 = with_state
            .then(|| tensor(vec![states, batch, config.output_size()]))
            .transpose()?;
        let c0 = with_state
            .then(|| tensor(vec![states, batch, config.hidden_size]))
            .transpose()?;
        // Half of the single-sequence cases go in unbatched: x [T, I], state [D*L, H].
        let (x, h0, c0) = if batch == 1 && seed.is_multiple_of(2) {
            let drop_batch = |t: Tensor| {
                let s = t.shape().to_vec();
                t.reshape([s[0] * s[1], s[2]])
            };
            (
                drop_batch(x)?,
                h0.map(drop_batch).transpose()?,
                c0.map(drop_batch).transpose()?,
            )
        } else {
            (x, h0, c0)
        };
        Ok(Self {
            weights,
            x,
            h0,
            c0,
            lengths,
        })
    }

    /// One line describing the case.
    pub fn describe(&self) -> String {
        let c = self.weights.config();
        format!(
            "x{:?} H={} layers={} bidir={} bias={} proj={} batch_first={} head={} state={} lengths={:?}",
            self.x.shape(),
            c.hidden_size,
            c.num_layers,
            c.bidirectional,
            c.bias,
            c.proj_size,
            c.batch_first,
            self.weights.head().map_or(0, |h| h.out_features()),
            self.h0.is_some(),
            self.lengths
        ) + &match c.cell.is_standard() {
            true => String::new(),
            false => format!(" cell: {}", c.cell.describe()),
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs::new(&self.x)
            .state(self.h0.as_ref(), self.c0.as_ref())
            .lengths(self.lengths.as_deref())
    }

    /// Runs on the GPU and the CPU in f64; returns the first mismatch of output, h_n, c_n.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn compare(
        &self,
        ctx: &GpuContext,
        tol: Tolerance,
    ) -> Result<Option<(&'static str, Mismatch)>> {
        pollster::block_on(self.compare_async(ctx, tol))
    }

    /// The async form of [`Case::compare`].
    pub async fn compare_async(
        &self,
        ctx: &GpuContext,
        tol: Tolerance,
    ) -> Result<Option<(&'static str, Mismatch)>> {
        let got = GpuLstm::new_async(ctx, &self.weights)
            .await?
            .forward_with_async(&self.inputs())
            .await?;
        let f64_of = |t: &Tensor| t.map(f64::from);
        let (x, h0, c0) = (
            f64_of(&self.x),
            self.h0.as_ref().map(f64_of),
            self.c0.as_ref().map(f64_of),
        );
        let want = CpuLstm::<f64>::new(&self.weights).forward_with(
            &Inputs::new(&x)
                .state(h0.as_ref(), c0.as_ref())
                .lengths(self.lengths.as_deref()),
        )?;
        for (name, g, w) in [
            ("output", &got.output, &want.output),
            ("h_n", &got.h_n, &want.h_n),
            ("c_n", &got.c_n, &want.c_n),
        ] {
            if g.shape() != w.shape() {
                let count = g.data().len().max(w.data().len());
                return Ok(Some((
                    name,
                    Mismatch {
                        index: 0,
                        got: f64::NAN,
                        want: f64::NAN,
                        count,
                    },
                )));
            }
            if let Some(m) = tol.first_mismatch(g.data(), w.data()) {
                return Ok(Some((name, m)));
            }
        }
        Ok(None)
    }
}
