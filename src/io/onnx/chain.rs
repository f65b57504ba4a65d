//! Stacked LSTM graphs: what `torch.onnx.export` writes for `nn.LSTM` (1 or more layers,
//! bidirectional, batch_first, with or without a final `nn.Linear`) and what `tf2onnx` writes
//! for stacked Keras LSTM layers: the `LSTM` nodes in order, the shape plumbing between them,
//! and a final `MatMul` + `Add` head.
//!
//! The graph is not run: each value is followed symbolically ([`Sym`]) from the graph's input
//! through the nodes (which ONNX lists in topological order), and every step is checked. A
//! layer's input must be the previous layer's output re-laid out to `[T, B, D*H]`
//! (`Transpose` [0, 2, 1, 3] then `Reshape` [0, 0, -1], or `Squeeze` of the direction axis
//! with one direction); initial states must be zeros (`Expand` or `ConstantOfShape` of
//! zeros); shapes may be computed from the input (`Shape`, `Gather`, `Unsqueeze`, `Concat`,
//! `Cast`, `Slice`, `Squeeze`, `Reshape` of shapes and constants). Anything else is an error
//! naming the node.

use std::collections::HashMap;

use super::proto::{GraphProto, TensorProto};
use super::OutputKind;
use super::{attribute, bad, layer_weights, node_label, tensor, Attributes, OnnxIo, OnnxModel};
use crate::config::LstmConfig;
use crate::error::Result;
use crate::head::Linear;
use crate::tensor::Tensor;
use crate::weights::{LayerWeights, LstmWeights};

/// What a value of the graph is.
#[derive(Clone, Debug)]
enum Sym {
    /// A sequence `[T, B, F]` (`[B, T, F]` when `batch_first`): the graph's input, or the
    /// output of `layers` LSTM layers, with the head's weight `[F, O]` and bias once applied.
    Seq {
        batch_first: bool,
        width: usize,
        layers: usize,
        head: Option<(Tensor, Option<Tensor>)>,
    },
    /// `Y` of layer `layer`: `[T, D, B, H]`, or after `Transpose` `[T, B, D, H]` (`order` 1)
    /// or `[B, T, D, H]` (`order` 2).
    LstmY { layer: usize, order: u8 },
    /// `Y_h` (or `Y_c`) of the listed layers, concatenated: `[layers * D, B, H]`.
    State { hidden: bool, layers: Vec<usize> },
    /// All zeros, of any shape (an initial state).
    Zeros,
    /// Computed from shapes and constants only: usable as a shape argument, nothing else.
    Shape,
}

/// One LSTM node of the chain, read.
struct Layer {
    weights: Vec<LayerWeights>,
    attrs: Attributes,
    input_size: usize,
    hidden: usize,
    bias: bool,
    peephole: bool,
}

/// Whether a constant tensor is all zeros (any float or integer type).
fn all_zeros(t: &TensorProto) -> bool {
    match tensor::to_f32(t) {
        Ok(v) => v.data().iter().all(|&x| x == 0.0),
        Err(_) => tensor::to_i64(t).is_ok_and(|v| v.data().iter().all(|&x| x == 0)),
    }
}

fn ints(t: &TensorProto) -> Option<Vec<i64>> {
    tensor::to_i64(t).ok().map(|t| t.into_data())
}

/// Reads a stacked graph (see the module docs).
pub(super) fn read_chain(
    graph: &GraphProto,
    known: &HashMap<String, TensorProto>,
) -> Result<OnnxModel> {
    let inputs: Vec<&str> = graph
        .input
        .iter()
        .filter_map(|v| v.name.as_deref())
        .filter(|n| !known.contains_key(*n))
        .collect();
    let [x] = inputs[..] else {
        return Err(bad(format!(
            "a stacked graph takes one input (the sequence), this one has {}: {inputs:?}",
            inputs.len()
        )));
    };
    let input_width = graph
        .input
        .iter()
        .find(|v| v.name.as_deref() == Some(x))
        .and_then(|v| v.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref())
        .and_then(|s| s.dim.get(2)?.dim_value)
        .and_then(|d| usize::try_from(d).ok());
    let mut syms: HashMap<String, Sym> = HashMap::new();
    // the graph's input is `batch_first: false` until a Transpose flips it; at layer 0, which
    // takes [T, B, I], that says whether the input was [B, T, I]
    let mut input_layout: Option<bool> = None;
    syms.insert(
        x.to_string(),
        Sym::Seq {
            batch_first: false,
            width: input_width.unwrap_or(0),
            layers: 0,
            head: None,
        },
    );
    let mut layers: Vec<Layer> = Vec::new();
    let sym_of = |syms: &HashMap<String, Sym>, name: &str| -> Option<Sym> {
        if name.is_empty() {
            return None;
        }
        syms.get(name)
            .cloned()
            .or_else(|| known.contains_key(name).then_some(Sym::Shape))
    };
    for node in &graph.node {
        let op = node.op_type.as_deref().unwrap_or("");
        let label = node_label(node);
        let arg = |i: usize| node.input.get(i).map(String::as_str).unwrap_or("");
        let not_understood = |why: &str| bad(format!("{label}: not understood ({why})"));
        let first = sym_of(&syms, arg(0));
        let constant = |i: usize| known.get(arg(i));
        let out = match op {
            "Constant" => Some(Sym::Shape),
            "Identity" => first.clone(),
            "Shape" => Some(Sym::Shape),
            "Gather" | "Unsqueeze" | "Concat" | "Cast" | "Slice" | "Squeeze" | "Reshape"
                if node
                    .input
                    .iter()
                    .all(|i| i.is_empty() || matches!(sym_of(&syms, i), Some(Sym::Shape))) =>
            {
                Some(Sym::Shape)
            }
            "Expand" => match (&first, constant(0)) {
                (Some(Sym::Zeros), _) => Some(Sym::Zeros),
                (_, Some(t)) if all_zeros(t) => Some(Sym::Zeros),
                _ => return Err(not_understood("an Expand of something other than zeros")),
            },
            "ConstantOfShape" => {
                let zero = attribute(node, "value")
                    .and_then(|a| a.t.as_ref())
                    .is_none_or(all_zeros);
                if !zero {
                    return Err(not_understood("a ConstantOfShape other than zeros"));
                }
                Some(Sym::Zeros)
            }
            "Transpose" => {
                let perm = attribute(node, "perm")
                    .map(|a| a.ints.clone())
                    .unwrap_or_default();
                match (&first, perm.as_slice()) {
                    (
                        Some(Sym::Seq {
                            batch_first,
                            width,
                            layers,
                            head,
                        }),
                        [1, 0, 2],
                    ) => Some(Sym::Seq {
                        batch_first: !batch_first,
                        width: *width,
                        layers: *layers,
                        head: head.clone(),
                    }),
                    (Some(Sym::LstmY { layer, order: 0 }), [0, 2, 1, 3]) => Some(Sym::LstmY {
                        layer: *layer,
                        order: 1,
                    }),
                    (Some(Sym::LstmY { layer, order: 0 }), [2, 0, 1, 3]) => Some(Sym::LstmY {
                        layer: *layer,
                        order: 2,
                    }),
                    _ => {
                        return Err(not_understood(&format!(
                            "a Transpose with perm {perm:?} here"
                        )))
                    }
                }
            }
            "Squeeze" => {
                let axes = attribute(node, "axes")
                    .map(|a| a.ints.clone())
                    .or_else(|| constant(1).and_then(ints))
                    .unwrap_or_default();
                match (&first, axes.as_slice()) {
                    (Some(Sym::LstmY { layer, order }), [axis])
                        if layers[*layer].attrs.directions() == 1
                            && ((*order == 0 && *axis == 1) || (*order == 2 && *axis == 2)) =>
                    {
                        Some(Sym::Seq {
                            batch_first: *order == 2,
                            width: layers[*layer].hidden,
                            layers: layer + 1,
                            head: None,
                        })
                    }
                    _ => return Err(not_understood(&format!("a Squeeze of axes {axes:?} here"))),
                }
            }
            "Reshape" => {
                let shape = constant(1).and_then(ints).unwrap_or_default();
                match &first {
                    Some(Sym::LstmY {
                        layer,
                        order: order @ (1 | 2),
                    }) => {
                        let l = &layers[*layer];
                        let width = l.attrs.directions() * l.hidden;
                        let merged =
                            matches!(shape.as_slice(), [0, 0, w] if *w == -1 || *w == width as i64);
                        if !merged {
                            return Err(not_understood(&format!(
                                "a Reshape of an LSTM's output to {shape:?}; expected [0, 0, -1]"
                            )));
                        }
                        Some(Sym::Seq {
                            batch_first: *order == 2,
                            width,
                            layers: layer + 1,
                            head: None,
                        })
                    }
                    _ => return Err(not_understood("a Reshape of data")),
                }
            }
            "LSTM" => {
                let Some(Sym::Seq {
                    batch_first,
                    width,
                    layers: done,
                    head: None,
                }) = &first
                else {
                    return Err(not_understood("its X is not a sequence of the graph"));
                };
                if *done != layers.len() {
                    return Err(not_understood(&format!(
                        "its X is the output of {done} layers, but it is layer {}",
                        layers.len()
                    )));
                }
                let attrs = Attributes::of(node)?;
                if attrs.layout != 0 || attrs.direction == "reverse" {
                    return Err(not_understood(
                        "layout 1 or direction reverse inside a stack",
                    ));
                }
                // the graph's input: batch-first when it reaches layer 0 through a Transpose
                if *done == 0 {
                    input_layout = Some(*batch_first);
                } else if *batch_first {
                    return Err(not_understood("its X is batch-major without layout 1"));
                }
                for (i, what) in [(4, "sequence_lens"), (5, "initial_h"), (6, "initial_c")] {
                    match sym_of(&syms, arg(i)) {
                        None | Some(Sym::Zeros) => {}
                        _ if i >= 5 && constant(i).is_some_and(all_zeros) => {}
                        _ => {
                            return Err(not_understood(&format!(
                                "its {what} is not absent or zeros (a stacked graph runs from \
                                 zero states, over whole sequences)"
                            )))
                        }
                    }
                }
                let read = |i: usize, what: &str| -> Result<Option<Tensor>> {
                    match arg(i) {
                        "" => Ok(None),
                        name => known
                            .get(name)
                            .map(tensor::to_f32)
                            .transpose()?
                            .map(Some)
                            .ok_or_else(|| bad(format!("{label}: {what} is not a constant"))),
                    }
                };
                let w = read(1, "W")?.ok_or_else(|| bad(format!("{label}: no W")))?;
                let r = read(2, "R")?.ok_or_else(|| bad(format!("{label}: no R")))?;
                let (b, p) = (read(3, "B")?, read(7, "P")?);
                let d = attrs.directions();
                let ws = w.shape().to_vec();
                if ws.len() != 3 || ws[0] != d || ws[1] % 4 != 0 || ws[1] == 0 {
                    return Err(bad(format!("{label}: W has shape {ws:?}")));
                }
                let (hidden, input_size) = (ws[1] / 4, ws[2]);
                if *width != 0 && *width != input_size {
                    return Err(bad(format!(
                        "{label}: W takes {input_size} features, its X has {width}"
                    )));
                }
                let shapes_ok = r.shape() == [d, 4 * hidden, hidden]
                    && b.as_ref().is_none_or(|b| b.shape() == [d, 8 * hidden])
                    && p.as_ref().is_none_or(|p| p.shape() == [d, 3 * hidden]);
                if !shapes_ok {
                    return Err(bad(format!(
                        "{label}: R, B or P does not match W {ws:?} (R {:?})",
                        r.shape()
                    )));
                }
                let weights = (0..d)
                    .map(|dir| {
                        layer_weights(dir, hidden, input_size, (&w, &r, b.as_ref(), p.as_ref()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let k = layers.len();
                layers.push(Layer {
                    weights,
                    attrs,
                    input_size,
                    hidden,
                    bias: b.is_some(),
                    peephole: p.is_some(),
                });
                for (i, sym) in [
                    Sym::LstmY { layer: k, order: 0 },
                    Sym::State {
                        hidden: true,
                        layers: vec![k],
                    },
                    Sym::State {
                        hidden: false,
                        layers: vec![k],
                    },
                ]
                .into_iter()
                .enumerate()
                {
                    if let Some(name) = node.output.get(i).filter(|n| !n.is_empty()) {
                        syms.insert(name.clone(), sym);
                    }
                }
                None
            }
            "Concat" => {
                let parts: Vec<Option<Sym>> = node.input.iter().map(|i| sym_of(&syms, i)).collect();
                let axis = attribute(node, "axis").and_then(|a| a.i).unwrap_or(0);
                let mut merged: Option<(bool, Vec<usize>)> = None;
                for part in &parts {
                    let Some(Sym::State { hidden, layers }) = part else {
                        return Err(not_understood("a Concat of data other than LSTM states"));
                    };
                    let entry = merged.get_or_insert((*hidden, Vec::new()));
                    if entry.0 != *hidden || axis != 0 {
                        return Err(not_understood("a Concat mixing h and c, or not on axis 0"));
                    }
                    entry.1.extend(layers);
                }
                let (hidden, layers) = merged.ok_or_else(|| not_understood("an empty Concat"))?;
                Some(Sym::State { hidden, layers })
            }
            "MatMul" => match (&first, constant(1)) {
                (
                    Some(Sym::Seq {
                        batch_first,
                        width,
                        layers: done,
                        head: None,
                    }),
                    Some(w),
                ) if *done > 0 => {
                    let w = tensor::to_f32(w)?;
                    if w.shape().len() != 2 || w.shape()[0] != *width {
                        return Err(bad(format!(
                            "{label}: the head's weight has shape {:?}; expected [{width}, O]",
                            w.shape()
                        )));
                    }
                    Some(Sym::Seq {
                        batch_first: *batch_first,
                        width: w.shape()[1],
                        layers: *done,
                        head: Some((w, None)),
                    })
                }
                _ => {
                    return Err(not_understood(
                        "a MatMul other than the LSTM's output times a constant",
                    ))
                }
            },
            "Add" => {
                let (seq, bias) = match (&first, sym_of(&syms, arg(1))) {
                    (Some(seq @ Sym::Seq { .. }), _) => (seq.clone(), constant(1)),
                    (_, Some(seq @ Sym::Seq { .. })) => (seq, constant(0)),
                    _ => return Err(not_understood("an Add other than the head's bias")),
                };
                match (seq, bias) {
                    (
                        Sym::Seq {
                            batch_first,
                            width,
                            layers,
                            head: Some((w, None)),
                        },
                        Some(b),
                    ) => {
                        let b = tensor::to_f32(b)?;
                        if b.shape() != [width] {
                            return Err(bad(format!(
                                "{label}: the head's bias has shape {:?}; expected [{width}]",
                                b.shape()
                            )));
                        }
                        Some(Sym::Seq {
                            batch_first,
                            width,
                            layers,
                            head: Some((w, Some(b))),
                        })
                    }
                    _ => return Err(not_understood("an Add other than the head's bias")),
                }
            }
            _ => return Err(not_understood("an op a stacked LSTM graph does not use")),
        };
        if let (Some(sym), Some(name)) = (out, node.output.first()) {
            syms.insert(name.clone(), sym);
        }
    }
    assemble(graph, x, &syms, layers, input_layout.unwrap_or(false))
}

/// The weights and outputs of a chain whose nodes were all understood.
fn assemble(
    graph: &GraphProto,
    x: &str,
    syms: &HashMap<String, Sym>,
    layers: Vec<Layer>,
    batch_first: bool,
) -> Result<OnnxModel> {
    let first = layers
        .first()
        .ok_or_else(|| bad("the graph has no LSTM node"))?;
    let (d, hidden, cell) = (
        first.attrs.directions(),
        first.hidden,
        first.attrs.cell(first.peephole),
    );
    for (k, l) in layers.iter().enumerate() {
        if l.attrs.directions() != d || l.hidden != hidden || l.attrs.cell(l.peephole) != cell {
            return Err(bad(format!(
                "LSTM layer {k} differs from layer 0 in directions, hidden size or cell: the \
                 engine runs one configuration for every layer"
            )));
        }
        if k > 0 && l.input_size != d * hidden {
            return Err(bad(format!(
                "LSTM layer {k} takes {} features, not {}",
                l.input_size,
                d * hidden
            )));
        }
    }
    let bias = layers.iter().any(|l| l.bias);
    let config = LstmConfig::new(first.input_size, hidden)
        .num_layers(layers.len())
        .bidirectional(d == 2)
        .bias(bias)
        .batch_first(batch_first)
        .cell(cell);
    let all_layers = layers.len();
    let mut per_layer = Vec::new();
    for l in layers {
        for mut w in l.weights {
            if bias && w.b_ih.is_none() {
                w.b_ih = Some(Tensor::new([4 * hidden], vec![0.0; 4 * hidden])?);
                w.b_hh = Some(Tensor::new([4 * hidden], vec![0.0; 4 * hidden])?);
            }
            per_layer.push(w);
        }
    }
    let mut weights = LstmWeights::from_layers(&config, per_layer)?;
    let mut head_seen: Option<bool> = None;
    let mut outputs = Vec::new();
    for name in graph.output.iter().filter_map(|v| v.name.clone()) {
        let kind = match syms.get(&name) {
            Some(Sym::Seq {
                batch_first: bf,
                layers,
                head,
                ..
            }) if *layers == all_layers && *bf == batch_first => {
                match (head, head_seen) {
                    (Some((w, b)), None) => {
                        let mut wt = vec![0.0; w.data().len()];
                        let (f, o) = (w.shape()[0], w.shape()[1]);
                        for i in 0..f {
                            for j in 0..o {
                                wt[j * f + i] = w.data()[i * o + j];
                            }
                        }
                        weights =
                            weights.with_head(Linear::new(Tensor::new([o, f], wt)?, b.clone())?)?;
                        head_seen = Some(true);
                    }
                    (None, None) => head_seen = Some(false),
                    (h, Some(seen)) if h.is_some() != seen => {
                        return Err(bad(
                            "the graph returns the LSTM's output with and without the head",
                        ))
                    }
                    _ => {}
                }
                OutputKind::Output
            }
            Some(Sym::State { hidden: h, layers })
                if *layers == (0..all_layers).collect::<Vec<_>>() =>
            {
                if *h {
                    OutputKind::HN
                } else {
                    OutputKind::CN
                }
            }
            Some(Sym::LstmY { layer, order: 0 })
                if all_layers == 1 && *layer == 0 && !batch_first =>
            {
                OutputKind::Y
            }
            _ => {
                return Err(bad(format!(
                    "graph output `{name}` is not the LSTM's output (in the input's layout), \
                     nor every layer's h_n or c_n"
                )))
            }
        };
        outputs.push((name, kind));
    }
    Ok(OnnxModel {
        weights,
        reverse: false,
        io: OnnxIo {
            x: x.to_string(),
            outputs,
            ..Default::default()
        },
        constants: HashMap::new(),
    })
}
