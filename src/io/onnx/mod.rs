//! ONNX models in: a graph with one `LSTM` node (opsets 7 to 22) read into [`LstmWeights`]
//! and the graph's inputs and outputs, so that [`OnnxModel::run`] returns exactly what ONNX
//! Runtime returns for the graph.
//!
//! What the reader takes: the node's `W`, `R`, `B`, `P` as initializers or `Constant` outputs
//! (float32, float16 or float64, raw or typed data); `X`, `sequence_lens`, `initial_h`,
//! `initial_c` as graph inputs (or initializers, for the last three); `Identity` and
//! `Constant` nodes around it. Anything else is an error naming the first node it does not
//! understand. External data is refused.
//!
//! ONNX's gate order is i, o, f, c (peepholes i, o, f); the weights are reordered to
//! PyTorch's i, f, g, o (peepholes i, f, o). `direction = "reverse"` runs the engine's forward
//! direction on each sequence reversed within its length (the same steps ONNX's reverse
//! direction takes). `layout = 1` is the engine's `batch_first`.

mod chain;
mod proto;
mod run;
mod tensor;

pub use run::OnnxInputs;

use std::collections::HashMap;

use prost::Message;

use crate::cell::{Activation, Cell, STANDARD_ACTIVATIONS};
use crate::config::LstmConfig;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::weights::{LayerWeights, LstmWeights};
use proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

/// Whether `bytes` look like an ONNX model (a protobuf whose first field is `ir_version`, as
/// every writer puts it), so that `--weights` can tell it from a safetensors file.
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    // field 1, varint: tag byte 0x08; safetensors starts with a little-endian u64 length
    bytes.first() == Some(&0x08) && ModelProto::decode(bytes).is_ok()
}

/// The graph's names for the LSTM's inputs and outputs (`None`: absent from the graph).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OnnxIo {
    /// `X`: `[T, B, I]`, or `[B, T, I]` with `layout = 1`.
    pub x: String,
    /// `sequence_lens`: `[B]` int32.
    pub sequence_lens: Option<String>,
    /// `initial_h`: `[D, B, H]`, or `[B, D, H]` with `layout = 1`.
    pub initial_h: Option<String>,
    /// `initial_c`: as `initial_h`.
    pub initial_c: Option<String>,
    /// The graph's outputs in order: each one's name and what it is.
    pub outputs: Vec<(String, OutputKind)>,
}

/// What a graph output is, in terms of the engine's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// The LSTM node's `Y`: `[T, D, B, H]` (`[B, T, D, H]` with `layout = 1`).
    Y,
    /// The LSTM node's `Y_h`: `[D, B, H]` (`[B, D, H]` with `layout = 1`).
    YH,
    /// The LSTM node's `Y_c`, as `Y_h`.
    YC,
    /// The model's output as the engine gives it: `[T, B, F]` (`[B, T, F]` batch-first), the
    /// head's when there is one (the stacked graphs of `torch.onnx.export` and `tf2onnx`).
    Output,
    /// `h_n` of every layer, `[L*D, B, H]` (a `Concat` of the layers' `Y_h`).
    HN,
    /// `c_n` of every layer, as `HN`.
    CN,
}

/// An ONNX LSTM model: its weights in this crate's form and how the graph is wired.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxModel {
    /// The weights (PyTorch's layout and gate order; `batch_first` is ONNX's `layout`).
    pub weights: LstmWeights,
    /// ONNX's `direction = "reverse"` (one direction, run backwards in time).
    pub reverse: bool,
    /// The graph's input and output names.
    pub io: OnnxIo,
    /// Initial states or lengths that the graph holds as initializers.
    pub constants: HashMap<String, Tensor>,
}

fn bad(why: impl Into<String>) -> Error {
    Error::Input(format!("ONNX model: {}", why.into()))
}

fn node_label(node: &NodeProto) -> String {
    format!(
        "node `{}` ({})",
        node.name.as_deref().unwrap_or(""),
        node.op_type.as_deref().unwrap_or("?")
    )
}

/// The node's attribute `name`, if present.
fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

/// Reads the ONNX model at `path` (errors name the file).
pub fn load(path: &std::path::Path) -> Result<OnnxModel> {
    let bytes = super::read_file(path)?;
    read(&bytes).map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// Reads the ONNX model in `bytes`.
pub fn read(bytes: &[u8]) -> Result<OnnxModel> {
    let model =
        ModelProto::decode(bytes).map_err(|e| bad(format!("not an ONNX protobuf ({e})")))?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| bad("the model has no graph"))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .unwrap_or(1);
    if !(7..=22).contains(&opset) {
        return Err(bad(format!(
            "opset {opset}: the LSTM reader takes opsets 7 to 22"
        )));
    }
    read_graph(graph)
}

/// Every tensor a node input can name without running anything: initializers and the
/// outputs of `Constant` nodes, through `Identity` nodes.
fn constants(graph: &GraphProto) -> Result<HashMap<String, TensorProto>> {
    let mut known: HashMap<String, TensorProto> = graph
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.clone()?, t.clone())))
        .collect();
    for node in &graph.node {
        match node.op_type.as_deref() {
            Some("Constant") => {
                let value = attribute(node, "value")
                    .and_then(|a| a.t.clone())
                    .ok_or_else(|| {
                        bad(format!(
                            "{}: only a `value` tensor is supported",
                            node_label(node)
                        ))
                    })?;
                if let Some(out) = node.output.first() {
                    known.insert(out.clone(), value);
                }
            }
            Some("Identity") => {
                if let (Some(input), Some(out)) = (node.input.first(), node.output.first()) {
                    if let Some(t) = known.get(input).cloned() {
                        known.insert(out.clone(), t);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(known)
}

fn read_graph(graph: &GraphProto) -> Result<OnnxModel> {
    let lstms: Vec<&NodeProto> = graph
        .node
        .iter()
        .filter(|n| n.op_type.as_deref() == Some("LSTM"))
        .collect();
    if lstms.is_empty() {
        return Err(bad("the graph has no LSTM node"));
    }
    let plain = graph
        .node
        .iter()
        .all(|n| matches!(n.op_type.as_deref(), Some("LSTM" | "Constant" | "Identity")));
    if lstms.len() > 1 || !plain {
        // stacked layers, plumbing, a head: followed node by node
        return chain::read_chain(graph, &constants(graph)?);
    }
    let node = lstms[0];
    let mut aliases: HashMap<String, String> = HashMap::new();
    for other in &graph.node {
        if other.op_type.as_deref() == Some("Identity") {
            if let (Some(i), Some(o)) = (other.input.first(), other.output.first()) {
                aliases.insert(o.clone(), i.clone());
            }
        }
    }
    if let Some(domain) = node
        .domain
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "ai.onnx")
    {
        return Err(bad(format!("{}: domain `{domain}`", node_label(node))));
    }
    let known = constants(graph)?;
    let input = |i: usize| node.input.get(i).filter(|n| !n.is_empty()).cloned();
    let tensor = |i: usize, what: &str| -> Result<Option<Tensor>> {
        match input(i) {
            None => Ok(None),
            Some(name) => match known.get(&name) {
                Some(t) => tensor::to_f32(t).map(Some),
                None => Err(bad(format!(
                    "{}: input {what} (`{name}`) is not an initializer or Constant",
                    node_label(node)
                ))),
            },
        }
    };
    let w = tensor(1, "W")?.ok_or_else(|| bad(format!("{}: no W", node_label(node))))?;
    let r = tensor(2, "R")?.ok_or_else(|| bad(format!("{}: no R", node_label(node))))?;
    let b = tensor(3, "B")?;
    let p = tensor(7, "P")?;
    let attrs = Attributes::of(node)?;
    let d = attrs.directions();
    let (ws, rs) = (w.shape().to_vec(), r.shape().to_vec());
    if ws.len() != 3 || ws[0] != d || ws[1] % 4 != 0 || ws[1] == 0 {
        return Err(bad(format!(
            "{}: W has shape {ws:?}; expected [{d}, 4*hidden_size, input_size]",
            node_label(node)
        )));
    }
    let hidden = ws[1] / 4;
    if let Some(h) = attrs.hidden_size.filter(|&h| h != hidden) {
        return Err(bad(format!(
            "{}: hidden_size {h} but W has 4*{hidden} rows",
            node_label(node)
        )));
    }
    if rs != [d, 4 * hidden, hidden] {
        return Err(bad(format!(
            "{}: R has shape {rs:?}; expected [{d}, {}, {hidden}]",
            node_label(node),
            4 * hidden
        )));
    }
    if let Some(b) = &b {
        if b.shape() != [d, 8 * hidden] {
            return Err(bad(format!(
                "{}: B has shape {:?}; expected [{d}, {}]",
                node_label(node),
                b.shape(),
                8 * hidden
            )));
        }
    }
    if let Some(p) = &p {
        if p.shape() != [d, 3 * hidden] {
            return Err(bad(format!(
                "{}: P has shape {:?}; expected [{d}, {}]",
                node_label(node),
                p.shape(),
                3 * hidden
            )));
        }
    }
    let cell = attrs.cell(p.is_some());
    let config = LstmConfig::new(ws[2], hidden)
        .bidirectional(d == 2)
        .bias(b.is_some())
        .batch_first(attrs.layout == 1)
        .cell(cell);
    config.validate()?;
    let layers = (0..d)
        .map(|dir| layer_weights(dir, hidden, ws[2], (&w, &r, b.as_ref(), p.as_ref())))
        .collect::<Result<Vec<_>>>()?;
    let weights = LstmWeights::from_layers(&config, layers)?;

    let resolve = |name: String| aliases.get(&name).cloned().unwrap_or(name);
    let graph_inputs: Vec<String> = graph.input.iter().filter_map(|v| v.name.clone()).collect();
    let mut constants = HashMap::new();
    let mut state_input = |i: usize, what: &str| -> Result<Option<String>> {
        let Some(name) = input(i).map(&resolve) else {
            return Ok(None);
        };
        if let Some(t) = known.get(&name) {
            let value = if i == 4 {
                tensor::to_i64(t)?.map(|v| v as f32)
            } else {
                tensor::to_f32(t)?
            };
            constants.insert(name.clone(), value);
        } else if !graph_inputs.contains(&name) {
            return Err(bad(format!(
                "{}: {what} (`{name}`) is neither a graph input nor a constant",
                node_label(node)
            )));
        }
        Ok(Some(name))
    };
    let x = state_input(0, "X")?.ok_or_else(|| bad(format!("{}: no X", node_label(node))))?;
    let sequence_lens = state_input(4, "sequence_lens")?;
    let initial_h = state_input(5, "initial_h")?;
    let initial_c = state_input(6, "initial_c")?;
    if constants.contains_key(&x) {
        return Err(bad(format!("{}: X is a constant", node_label(node))));
    }
    let output = |i: usize| node.output.get(i).filter(|n| !n.is_empty()).cloned();
    let (y, y_h, y_c) = (output(0), output(1), output(2));
    // graph outputs, each one of the node's (directly or through Identity)
    let mut outputs = Vec::new();
    for out in graph.output.iter().filter_map(|v| v.name.clone()) {
        let source = resolve(out.clone());
        let kind = [
            (&y, OutputKind::Y),
            (&y_h, OutputKind::YH),
            (&y_c, OutputKind::YC),
        ]
        .into_iter()
        .find(|(o, _)| o.as_deref() == Some(source.as_str()))
        .map(|(_, kind)| kind)
        .ok_or_else(|| {
            bad(format!(
                "graph output `{out}` is not one of the LSTM's outputs"
            ))
        })?;
        outputs.push((out, kind));
    }
    Ok(OnnxModel {
        weights,
        reverse: attrs.direction == "reverse",
        io: OnnxIo {
            x,
            sequence_lens,
            initial_h,
            initial_c,
            outputs,
        },
        constants,
    })
}

/// Direction `dir`'s weights, reordered from ONNX's gates (i, o, f, c) to PyTorch's
/// (i, f, g, o), and peepholes from (i, o, f) to (i, f, o).
fn layer_weights(
    dir: usize,
    hidden: usize,
    input: usize,
    (w, r, b, p): (&Tensor, &Tensor, Option<&Tensor>, Option<&Tensor>),
) -> Result<LayerWeights> {
    const GATES: [usize; 4] = [0, 2, 3, 1]; // ours i, f, g, o from ONNX's blocks
    let rows = |t: &Tensor, width: usize, blocks: &[usize]| -> Vec<f32> {
        let per_dir = &t.data()[dir * 4 * hidden * width..(dir + 1) * 4 * hidden * width];
        blocks
            .iter()
            .flat_map(|&g| per_dir[g * hidden * width..(g + 1) * hidden * width].to_vec())
            .collect()
    };
    let bias = |half: usize| -> Option<Result<Tensor>> {
        b.map(|b| {
            let per_dir = &b.data()[dir * 8 * hidden..(dir + 1) * 8 * hidden];
            let part = &per_dir[half * 4 * hidden..(half + 1) * 4 * hidden];
            let data = GATES
                .iter()
                .flat_map(|&g| part[g * hidden..(g + 1) * hidden].to_vec())
                .collect();
            Tensor::new([4 * hidden], data)
        })
    };
    let w_p = p.map(|p| {
        let per_dir = &p.data()[dir * 3 * hidden..(dir + 1) * 3 * hidden];
        let data = [0, 2, 1]
            .iter()
            .flat_map(|&g| per_dir[g * hidden..(g + 1) * hidden].to_vec())
            .collect();
        Tensor::new([3 * hidden], data)
    });
    Ok(LayerWeights {
        w_ih: Tensor::new([4 * hidden, input], rows(w, input, &GATES))?,
        w_hh: Tensor::new([4 * hidden, hidden], rows(r, hidden, &GATES))?,
        b_ih: bias(0).transpose()?,
        b_hh: bias(1).transpose()?,
        w_hr: None,
        w_p: w_p.transpose()?,
    })
}

/// The LSTM node's attributes, checked.
struct Attributes {
    direction: String,
    hidden_size: Option<usize>,
    clip: Option<f32>,
    input_forget: bool,
    layout: i64,
    activations: [[Activation; 3]; 2],
}

impl Attributes {
    fn of(node: &NodeProto) -> Result<Self> {
        let label = node_label(node);
        for a in &node.attribute {
            let name = a.name.as_deref().unwrap_or("");
            if ![
                "activation_alpha",
                "activation_beta",
                "activations",
                "clip",
                "direction",
                "hidden_size",
                "input_forget",
                "layout",
            ]
            .contains(&name)
            {
                return Err(bad(format!("{label}: unknown attribute `{name}`")));
            }
        }
        let text = |a: &AttributeProto| {
            String::from_utf8_lossy(a.s.as_deref().unwrap_or(&[])).into_owned()
        };
        let direction = attribute(node, "direction").map_or("forward".into(), text);
        if !["forward", "reverse", "bidirectional"].contains(&direction.as_str()) {
            return Err(bad(format!("{label}: direction `{direction}`")));
        }
        let int = |name: &str| attribute(node, name).and_then(|a| a.i);
        let hidden_size = int("hidden_size")
            .map(|h| usize::try_from(h).map_err(|_| bad(format!("{label}: hidden_size {h}"))))
            .transpose()?;
        let clip = attribute(node, "clip").and_then(|a| a.f);
        if let Some(c) = clip.filter(|c| !(*c > 0.0 && c.is_finite())) {
            return Err(bad(format!("{label}: clip {c}: must be positive")));
        }
        let input_forget = match int("input_forget").unwrap_or(0) {
            0 => false,
            1 => true,
            v => return Err(bad(format!("{label}: input_forget {v}"))),
        };
        let layout = int("layout").unwrap_or(0);
        if !(0..=1).contains(&layout) {
            return Err(bad(format!("{label}: layout {layout}")));
        }
        let d = if direction == "bidirectional" { 2 } else { 1 };
        let mut activations = [STANDARD_ACTIVATIONS; 2];
        if let Some(a) = attribute(node, "activations") {
            let names: Vec<String> = a
                .strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            if names.len() != 3 * d {
                return Err(bad(format!(
                    "{label}: {} activations; expected {} (f, g, h per direction)",
                    names.len(),
                    3 * d
                )));
            }
            let alpha = attribute(node, "activation_alpha").map_or(vec![], |a| a.floats.clone());
            let beta = attribute(node, "activation_beta").map_or(vec![], |a| a.floats.clone());
            let (mut alphas, mut betas) = (alpha.into_iter(), beta.into_iter());
            for (k, name) in names.iter().enumerate() {
                activations[k / 3][k % 3] = Activation::from_onnx(name, &mut alphas, &mut betas)
                    .map_err(|e| bad(format!("{label}: {e}")))?;
            }
            if d == 1 {
                activations[1] = activations[0];
            }
        }
        Ok(Self {
            direction,
            hidden_size,
            clip,
            input_forget,
            layout,
            activations,
        })
    }

    fn cell(&self, peephole: bool) -> Cell {
        Cell {
            peephole,
            clip: self.clip,
            input_forget: self.input_forget,
            activations: self.activations,
        }
    }

    fn directions(&self) -> usize {
        if self.direction == "bidirectional" {
            2
        } else {
            1
        }
    }
}
