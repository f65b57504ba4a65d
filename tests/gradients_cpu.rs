//! The CPU backward pass (f64) against central finite differences of the loss, for every
//! parameter kind (each layer and direction's weights and biases, the projection, the head),
//! the input, h0/c0, with variable lengths, both losses, batch_first and unbatched input.

use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::loss::{Loss, Target};
use lstm_wgpu::{Inputs, Linear, LstmConfig, LstmWeights, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};

struct Setup {
    model: CpuLstm<f64>,
    x: Tensor<f64>,
    h0: Option<Tensor<f64>>,
    c0: Option<Tensor<f64>>,
    lengths: Option<Vec<usize>>,
    loss: Loss,
    target: Target,
}

fn random(shape: &[usize], rng: &mut StdRng) -> Tensor<f64> {
    let n = shape.iter().product();
    Tensor::new(
        shape.to_vec(),
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect(),
    )
    .unwrap()
}

impl Setup {
    fn loss(&self) -> f64 {
        let inputs = Inputs::new(&self.x)
            .state(self.h0.as_ref(), self.c0.as_ref())
            .lengths(self.lengths.as_deref());
        self.model
            .loss_gradients(&inputs, self.loss, &self.target)
            .unwrap()
            .0
    }
}

/// Central difference of the loss along one scalar reached by `slot`.
fn finite_difference(setup: &mut Setup, slot: impl Fn(&mut Setup) -> &mut f64) -> f64 {
    let eps = 1e-6;
    let original = *slot(setup);
    *slot(setup) = original + eps;
    let plus = setup.loss();
    *slot(setup) = original - eps;
    let minus = setup.loss();
    *slot(setup) = original;
    (plus - minus) / (2.0 * eps)
}

fn assert_matches(what: &str, analytic: f64, numeric: f64) {
    let tol = 1e-8 + 1e-5 * numeric.abs().max(analytic.abs());
    assert!(
        (analytic - numeric).abs() <= tol,
        "{what}: backward {analytic:e}, finite difference {numeric:e}"
    );
}

fn check(mut s: Setup, samples: usize) {
    let inputs = Inputs::new(&s.x)
        .state(s.h0.as_ref(), s.c0.as_ref())
        .lengths(s.lengths.as_deref());
    let (_, _, grads) = s.model.loss_gradients(&inputs, s.loss, &s.target).unwrap();
    let mut rng = StdRng::seed_from_u64(99);
    let mut pick = |n: usize| -> Vec<usize> {
        (0..samples.min(n))
            .map(|_| rng.random_range(0..n))
            .collect()
    };
    let mut checked = 0;
    for l in 0..s.model.layers.len() {
        let g = grads.layers[l].clone();
        for i in pick(g.w_ih.len()) {
            let fd = finite_difference(&mut s, |s| &mut s.model.layers[l].w_ih[i]);
            assert_matches(&format!("layers[{l}].w_ih[{i}]"), g.w_ih[i], fd);
        }
        for i in pick(g.w_hh.len()) {
            let fd = finite_difference(&mut s, |s| &mut s.model.layers[l].w_hh[i]);
            assert_matches(&format!("layers[{l}].w_hh[{i}]"), g.w_hh[i], fd);
        }
        if s.model.config.bias {
            for i in pick(g.b_ih.len()) {
                let fd = finite_difference(&mut s, |s| &mut s.model.layers[l].b_ih[i]);
                assert_matches(&format!("layers[{l}].b_ih[{i}]"), g.b_ih[i], fd);
                let fd = finite_difference(&mut s, |s| &mut s.model.layers[l].b_hh[i]);
                assert_matches(&format!("layers[{l}].b_hh[{i}]"), g.b_hh[i], fd);
            }
        }
        if let Some(w_hr) = &g.w_hr {
            for i in pick(w_hr.len()) {
                let fd =
                    finite_difference(&mut s, |s| &mut s.model.layers[l].w_hr.as_mut().unwrap()[i]);
                assert_matches(&format!("layers[{l}].w_hr[{i}]"), w_hr[i], fd);
            }
        }
        checked += 1;
    }
    if let Some(h) = grads.head.clone() {
        for i in pick(h.weight.len()) {
            let fd = finite_difference(&mut s, |s| &mut s.model.head.as_mut().unwrap().weight[i]);
            assert_matches(&format!("head.weight[{i}]"), h.weight[i], fd);
        }
        for i in pick(h.bias.len()) {
            let fd = finite_difference(&mut s, |s| &mut s.model.head.as_mut().unwrap().bias[i]);
            assert_matches(&format!("head.bias[{i}]"), h.bias[i], fd);
        }
    }
    for i in pick(s.x.data().len()) {
        let fd = finite_difference(&mut s, |s| &mut s.x.data_mut()[i]);
        assert_matches(&format!("x[{i}]"), grads.dx.data()[i], fd);
    }
    if s.h0.is_some() {
        for i in pick(grads.dh0.data().len()) {
            let fd = finite_difference(&mut s, |s| &mut s.h0.as_mut().unwrap().data_mut()[i]);
            assert_matches(&format!("h0[{i}]"), grads.dh0.data()[i], fd);
        }
        for i in pick(grads.dc0.data().len()) {
            let fd = finite_difference(&mut s, |s| &mut s.c0.as_mut().unwrap().data_mut()[i]);
            assert_matches(&format!("c0[{i}]"), grads.dc0.data()[i], fd);
        }
    }
    assert!(checked > 0);
}

fn model(config: &LstmConfig, head: Option<usize>, seed: u64) -> CpuLstm<f64> {
    let mut w = LstmWeights::init(config, seed).unwrap();
    if let Some(o) = head {
        w = w
            .with_head(
                Linear::init(config.num_directions() * config.output_size(), o, seed + 1).unwrap(),
            )
            .unwrap();
    }
    CpuLstm::new(&w)
}

#[test]
fn two_layers_bidirectional_projection_head_lengths_state_mse() {
    let config = LstmConfig::new(3, 5)
        .num_layers(2)
        .bidirectional(true)
        .proj_size(3);
    let mut rng = StdRng::seed_from_u64(1);
    let (t, b) = (5, 3);
    let s = Setup {
        model: model(&config, Some(2), 10),
        x: random(&[t, b, 3], &mut rng),
        h0: Some(random(&[4, b, 3], &mut rng)),
        c0: Some(random(&[4, b, 5], &mut rng)),
        lengths: Some(vec![3, 5, 1]),
        loss: Loss::Mse,
        target: Target::Values(random(&[t, b, 2], &mut rng).map(|v| v as f32)),
    };
    check(s, 6);
}

#[test]
fn no_bias_batch_first_cross_entropy() {
    let config = LstmConfig::new(4, 6)
        .bias(false)
        .batch_first(true)
        .num_layers(2);
    let mut rng = StdRng::seed_from_u64(2);
    let (t, b, classes) = (4, 2, 3);
    let targets = Tensor::new([b, t], (0..b * t).map(|i| (i % classes) as i64).collect()).unwrap();
    let s = Setup {
        model: model(&config, Some(classes), 20),
        x: random(&[b, t, 4], &mut rng),
        h0: None,
        c0: None,
        lengths: Some(vec![4, 2]),
        loss: Loss::CrossEntropy,
        target: Target::Classes(targets),
    };
    check(s, 6);
}

#[test]
fn unbatched_bidirectional_state_without_head() {
    let config = LstmConfig::new(2, 4).bidirectional(true);
    let mut rng = StdRng::seed_from_u64(3);
    let s = Setup {
        model: model(&config, None, 30),
        x: random(&[6, 2], &mut rng),
        h0: Some(random(&[2, 4], &mut rng)),
        c0: Some(random(&[2, 4], &mut rng)),
        lengths: None,
        loss: Loss::Mse,
        target: Target::Values(random(&[6, 8], &mut rng).map(|v| v as f32)),
    };
    check(s, 8);
}
