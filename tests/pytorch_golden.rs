//! Golden cases produced by PyTorch's `nn.LSTM` (tests/fixtures/make_golden_forward.py wrote
//! tests/fixtures/golden_forward.json), run on the CPU path (f32, f64) and the GPU path.

mod common;

use common::{assert_close, gpu, to_f64, VS_PYTORCH};
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::weights::{param_name, param_shape};
use lstm_wgpu::{LayerWeights, LstmConfig, LstmOutput, LstmWeights, ParamKind, Tensor};
use serde_json::Value;

struct Golden {
    name: String,
    weights: LstmWeights,
    x: Tensor,
    h0: Option<Tensor>,
    c0: Option<Tensor>,
    output: Vec<f64>,
    output_shape: Vec<usize>,
    h_n: Vec<f64>,
    c_n: Vec<f64>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn usize_of(case: &Value, key: &str) -> usize {
    case[key].as_u64().unwrap() as usize
}

fn load() -> Vec<Golden> {
    let text = std::fs::read_to_string("tests/fixtures/golden_forward.json").unwrap();
    let root: Value = serde_json::from_str(&text).unwrap();
    let cases = root["cases"].as_array().unwrap();
    cases
        .iter()
        .map(|case| {
            let config =
                LstmConfig::new(usize_of(case, "input_size"), usize_of(case, "hidden_size"))
                    .num_layers(usize_of(case, "num_layers"))
                    .bidirectional(case["bidirectional"].as_bool().unwrap())
                    .bias(case["bias"].as_bool().unwrap())
                    .proj_size(usize_of(case, "proj_size"))
                    .batch_first(case["batch_first"].as_bool().unwrap());
            let sd = &case["state_dict"];
            let tensor = |kind, layer, dir| -> Option<Tensor> {
                let entry = &sd[param_name(kind, layer, dir)];
                if entry.is_null() {
                    return None;
                }
                let shape: Vec<usize> = entry["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect();
                assert_eq!(Some(shape.clone()), param_shape(&config, kind, layer));
                let data = floats(&entry["data"])
                    .into_iter()
                    .map(|x| x as f32)
                    .collect();
                Some(Tensor::new(shape, data).unwrap())
            };
            let mut layers = Vec::new();
            for layer in 0..config.num_layers {
                for dir in 0..config.num_directions() {
                    layers.push(LayerWeights {
                        w_ih: tensor(ParamKind::WeightIh, layer, dir).unwrap(),
                        w_hh: tensor(ParamKind::WeightHh, layer, dir).unwrap(),
                        b_ih: tensor(ParamKind::BiasIh, layer, dir),
                        b_hh: tensor(ParamKind::BiasHh, layer, dir),
                        w_hr: tensor(ParamKind::WeightHr, layer, dir),
                        w_p: None,
                    });
                }
            }
            let (t, b, i) = (usize_of(case, "T"), usize_of(case, "B"), config.input_size);
            let x_shape = if config.batch_first {
                [b, t, i]
            } else {
                [t, b, i]
            };
            let states = config.num_layers * config.num_directions();
            let state = |key: &str, width: usize| {
                (!case[key].is_null()).then(|| {
                    Tensor::new(
                        [states, b, width],
                        floats(&case[key]).into_iter().map(|x| x as f32).collect(),
                    )
                    .unwrap()
                })
            };
            Golden {
                name: case["name"].as_str().unwrap().into(),
                h0: state("h0", config.output_size()),
                c0: state("c0", config.hidden_size),
                x: Tensor::new(
                    x_shape,
                    floats(&case["x"]).into_iter().map(|x| x as f32).collect(),
                )
                .unwrap(),
                weights: LstmWeights::from_layers(&config, layers).unwrap(),
                output: floats(&case["output"]),
                output_shape: case["output_shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect(),
                h_n: floats(&case["h_n"]),
                c_n: floats(&case["c_n"]),
            }
        })
        .collect()
}

fn check(path: &str, g: &Golden, out: LstmOutput<f32>) {
    let what = |t: &str| format!("{path} {} {t}", g.name);
    assert_eq!(
        out.output.shape(),
        g.output_shape.as_slice(),
        "{}",
        what("output shape")
    );
    assert_close(&what("output"), out.output.data(), &g.output, VS_PYTORCH);
    assert_close(&what("h_n"), out.h_n.data(), &g.h_n, VS_PYTORCH);
    assert_close(&what("c_n"), out.c_n.data(), &g.c_n, VS_PYTORCH);
}

#[test]
fn fixture_covers_the_features() {
    let cases = load();
    assert!(cases.len() >= 3);
    assert!(cases.iter().any(|g| g.weights.config().proj_size > 0));
    assert!(cases.iter().any(|g| g.weights.config().batch_first));
    assert!(cases.iter().any(|g| !g.weights.config().bias));
    assert!(cases.iter().any(|g| g.h0.is_some()));
}

#[test]
fn cpu_matches_pytorch() {
    for g in load() {
        let out = CpuLstm::<f32>::new(&g.weights)
            .forward(&g.x, g.h0.as_ref(), g.c0.as_ref())
            .unwrap();
        check("cpu f32", &g, out);
        let out64 = CpuLstm::<f64>::new(&g.weights)
            .forward(
                &to_f64(&g.x),
                g.h0.as_ref().map(to_f64).as_ref(),
                g.c0.as_ref().map(to_f64).as_ref(),
            )
            .unwrap();
        check(
            "cpu f64",
            &g,
            LstmOutput {
                output: out64.output.map(|x| x as f32),
                h_n: out64.h_n.map(|x| x as f32),
                c_n: out64.c_n.map(|x| x as f32),
            },
        );
    }
}

#[test]
fn gpu_matches_pytorch() {
    for g in load() {
        let out = GpuLstm::new(gpu(), &g.weights)
            .unwrap()
            .forward(&g.x, g.h0.as_ref(), g.c0.as_ref())
            .unwrap();
        check("gpu", &g, out);
    }
}
