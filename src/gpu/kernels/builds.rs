//! Every shader build the engine can make on a device: each kernel with each set of override
//! constants it can run with there, and the text an implementation compiles for it. The
//! portability check (web/tests/browser.rs) hands every build to Tint; tests/shaders.rs to
//! naga.
//!
//! The subgroup kernels need `enable subgroups;` under WGSL implementations that follow the
//! spec's extension rule (Tint, in browsers), and naga 30 rejects the directive: it is added
//! for the browser's WebGPU backend only ([`Kernel::source_for`]).

use std::borrow::Cow;
use std::collections::HashSet;

use super::backward_tiles::BackwardTiles;
use super::cell::cell_constants;
use super::choice::KernelChoice;
use super::recurrence::{DeviceCaps, Recurrence, RecurrentShape, SequenceTiles, StepTiles};
use super::table::{Kernel, KERNELS};
use crate::cell::Cell;

/// One pipeline: a kernel and its override constants.
#[derive(Clone, Debug, PartialEq)]
pub struct ShaderBuild {
    pub kernel: Kernel,
    /// e.g. `lstm_step U=4 KS=16 BT=1 QPI=2 SPAN=1`
    pub label: String,
    pub constants: Vec<(&'static str, f64)>,
}

impl Kernel {
    /// True for the kernels that call subgroup builtins (they need the SUBGROUP feature).
    pub fn uses_subgroups(self) -> bool {
        matches!(
            self,
            Kernel::LstmStepSubgroup | Kernel::LstmSequenceSubgroup
        )
    }

    /// The WGSL text `backend` compiles for this kernel: its source, with `enable
    /// subgroups;` first where the kernel uses subgroups and the backend is a browser's.
    pub fn source_for(self, backend: wgpu::Backend) -> Cow<'static, str> {
        let source = self.spec().source;
        if self.uses_subgroups() && backend == wgpu::Backend::BrowserWebGpu {
            Cow::Owned(format!("enable subgroups;\n{source}"))
        } else {
            Cow::Borrowed(source)
        }
    }
}

/// The recurrent shapes the enumeration resolves choices at: every H where a table row or a
/// tile limit changes, with and without a projection, and batches across the table's rows.
const HIDDEN: [usize; 14] = [1, 2, 4, 5, 8, 16, 17, 63, 64, 65, 128, 129, 256, 1024];
const BATCH: [usize; 6] = [1, 3, 8, 16, 17, 64];

/// Tiles the tests force besides the table's (degenerate, odd, and subgroup-folded ones).
/// Cell variants the shader builds cover: every flag and every activation, in both directions.
fn variant_cells() -> Vec<Cell> {
    use crate::cell::Activation as A;
    let all = [
        [
            A::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            A::LeakyRelu { alpha: 0.1 },
            A::ThresholdedRelu { alpha: 0.5 },
        ],
        [
            A::ScaledTanh {
                alpha: 1.5,
                beta: 0.5,
            },
            A::Affine {
                alpha: 2.0,
                beta: 0.1,
            },
            A::Elu { alpha: 1.0 },
        ],
    ];
    vec![
        Cell {
            peephole: true,
            clip: Some(3.0),
            input_forget: true,
            activations: all,
        },
        Cell {
            activations: [
                [A::Softsign, A::Softplus, A::Relu],
                [A::Sigmoid, A::Tanh, A::Tanh],
            ],
            ..Cell::default()
        },
    ]
}

fn forced_choices() -> Vec<KernelChoice> {
    let step = |units, splits, rows, quads, span| {
        KernelChoice::Exact(Recurrence::PerStep(StepTiles {
            units,
            splits,
            rows,
            quads,
            span,
        }))
    };
    let sequence = |splits, steps, subgroups| {
        KernelChoice::Exact(Recurrence::Sequence(SequenceTiles {
            splits,
            steps,
            subgroups,
        }))
    };
    vec![
        step(1, 1, 1, 1, 1),
        step(4, 64, 1, 2, 1),
        step(3, 5, 3, 3, 1),
        step(8, 8, 16, 4, 1),
        step(2, 16, 4, 1, 1),
        step(4, 16, 1, 2, 2),
        step(2, 8, 4, 1, 4),
        step(1, 16, 3, 2, 8),
        // folded within a subgroup of 4 (SwiftShader's)
        step(2, 8, 2, 1, 2),
        step(1, 16, 1, 2, 4),
        sequence(1, 1, false),
        sequence(3, 5, false),
        sequence(2, 3, false),
        sequence(2, 3, true),
        sequence(2, 8, false),
        sequence(4, 32, true),
    ]
}

/// Every build the engine can make on a device with `caps`: each fixed-constant kernel once,
/// each backward tiling, and each recurrent variant that the choice table, its forced forms and the tests' tiles
/// resolve to at the enumeration's shapes (those `caps` can run), each distinct set once.
pub fn shader_builds(caps: &DeviceCaps) -> Vec<ShaderBuild> {
    let mut builds: Vec<ShaderBuild> = KERNELS
        .iter()
        .filter(|spec| !shaped(spec.kernel))
        .map(|spec| build(spec.kernel, spec.constants.to_vec()))
        .collect();
    let mut choices = vec![
        KernelChoice::Auto,
        KernelChoice::Sequence,
        KernelChoice::PerStep,
    ];
    choices.extend(forced_choices());
    let mut seen = HashSet::new();
    let mut push = |kernel: Kernel, constants: Vec<(&'static str, f64)>| {
        let key: Vec<u64> = constants.iter().map(|(_, v)| v.to_bits()).collect();
        if seen.insert((kernel, key)) {
            builds.push(build(kernel, constants));
        }
    };
    for hidden in HIDDEN {
        for hidden_out in [hidden, hidden.div_ceil(2)] {
            for batch in BATCH {
                let shape = RecurrentShape {
                    hidden,
                    hidden_out,
                    batch,
                };
                if let Ok(tiles) = BackwardTiles::for_shape(hidden, batch, &caps.limits) {
                    for kernel in [Kernel::LstmBackwardDh, Kernel::LstmBackwardStep] {
                        push(kernel, tiles.constants());
                    }
                }
                for choice in &choices {
                    let Ok(variant) = choice.resolve(shape, caps) else {
                        continue;
                    };
                    push(variant.kernel(), variant.constants(shape));
                    // the cell variants (ONNX's), without a projection, at a few shapes
                    if hidden_out == hidden && [1, 64, 129].contains(&hidden) && batch <= 3 {
                        for cell in variant_cells() {
                            let mut constants = variant.constants(shape);
                            constants.extend(cell_constants(&cell));
                            push(variant.kernel(), constants);
                        }
                    }
                }
            }
        }
    }
    builds
}

/// The kernels whose constants depend on the shape: the recurrent variants and the backward
/// step's tiles.
fn shaped(kernel: Kernel) -> bool {
    matches!(
        kernel,
        Kernel::LstmStep
            | Kernel::LstmStepSubgroup
            | Kernel::LstmSequence
            | Kernel::LstmSequenceSubgroup
            | Kernel::LstmBackwardDh
            | Kernel::LstmBackwardStep
    )
}

fn build(kernel: Kernel, constants: Vec<(&'static str, f64)>) -> ShaderBuild {
    ShaderBuild {
        kernel,
        label: pipeline_label(kernel, &constants),
        constants,
    }
}

/// A pipeline's label: the kernel and its constants, e.g. `lstm_step U=4 KS=64 BT=1 QPI=2`.
pub fn pipeline_label(kernel: Kernel, constants: &[(&'static str, f64)]) -> String {
    let mut label = kernel.name().to_string();
    for (name, value) in constants {
        label.push_str(&format!(" {name}={value}"));
    }
    label
}
