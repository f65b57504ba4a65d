//! `Workspace`: the buffers, bind groups, params and plan of one `(T, B)` shape.

use super::buffers::{storage_init, storage_nan};
use super::context::GpuContext;
use super::kernels::{Kernel, GEMM_TILE, STEP_BATCH_TILE, WORKGROUP_SIZE};
use super::model::GpuLstm;
use super::params::{GemmParams, ParamArena, StepParams, PARAMS_BINDING_SIZE};
use super::plan::{Op, Plan};
use crate::config::LstmConfig;
use crate::error::{Error, Result};
use crate::shape::Dims;
use wgpu::util::DeviceExt;

pub(crate) struct Workspace {
    pub dims: Dims,
    /// layer-0 input, as the caller lays it out
    pub x: wgpu::Buffer,
    /// layer outputs, ping-pong between layers; the last layer's is the model output
    pub y: Vec<wgpu::Buffer>,
    pub h0: wgpu::Buffer,
    pub c0: wgpu::Buffer,
    pub h_n: wgpu::Buffer,
    pub c_n: wgpu::Buffer,
    /// `[B]` u32 sequence lengths
    pub lengths: wgpu::Buffer,
    /// the head's output `[T*B, O]`, when the model has a head
    head_out: Option<wgpu::Buffer>,
    pub plan: Plan,
    num_layers: usize,
    lens: (usize, usize, usize),
}

/// Element counts of every buffer of a shape, checked against the device limits.
struct Sizes {
    x: usize,
    head_out: usize,
    pre: usize,
    y: usize,
    h_state: usize,
    c_state: usize,
    h_n: usize,
    c_n: usize,
}

impl Sizes {
    fn new(cfg: &LstmConfig, head_width: usize, Dims { seq_len, batch }: Dims) -> Self {
        let (d, h, h_out) = (cfg.num_directions(), cfg.hidden_size, cfg.output_size());
        Self {
            x: seq_len * batch * cfg.input_size,
            head_out: seq_len * batch * head_width,
            pre: seq_len * batch * d * 4 * h,
            y: seq_len * batch * d * h_out,
            h_state: 2 * d * batch * h_out,
            c_state: d * batch * h,
            h_n: cfg.num_layers * d * batch * h_out,
            c_n: cfg.num_layers * d * batch * h,
        }
    }

    fn check(&self, limits: &wgpu::Limits) -> Result<()> {
        let binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        for (what, len) in [
            ("the input", self.x),
            ("the input projection [T, B, D*4H]", self.pre),
            ("a layer output [T, B, D*H_out]", self.y),
            ("the head output [T, B, O]", self.head_out),
            ("h_n", self.h_n),
            ("c_n", self.c_n),
        ] {
            let bytes = len as u64 * 4;
            if bytes > binding {
                let limit = if limits.max_storage_buffer_binding_size <= limits.max_buffer_size {
                    "max_storage_buffer_binding_size"
                } else {
                    "max_buffer_size"
                };
                return Err(Error::Limit {
                    what: format!("{what} ({bytes} bytes)"),
                    limit,
                    needed: bytes,
                    available: binding,
                });
            }
        }
        Ok(())
    }
}

fn check_workgroups(limits: &wgpu::Limits, what: &str, groups: [u32; 3]) -> Result<[u32; 3]> {
    let max = limits.max_compute_workgroups_per_dimension;
    if let Some(&n) = groups.iter().find(|&&n| n > max) {
        return Err(Error::Limit {
            what: format!("{what} ({groups:?} workgroups)"),
            limit: "max_compute_workgroups_per_dimension",
            needed: n as u64,
            available: max as u64,
        });
    }
    Ok(groups)
}

fn to_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Input(format!("{what} ({n}) does not fit in 32 bits")))
}

impl Workspace {
    pub fn new(model: &GpuLstm, dims: Dims) -> Result<Self> {
        let (ctx, cfg, layers): (&GpuContext, &LstmConfig, _) =
            (model.context(), model.config(), &model.layers);
        let device = ctx.device();
        let limits = device.limits();
        let head_width = model.head.as_ref().map_or(0, |h| h.out_features);
        let sizes = Sizes::new(cfg, head_width, dims);
        sizes.check(&limits)?;

        let Dims { seq_len, batch } = dims;
        let (d, h, h_out) = (cfg.num_directions(), cfg.hidden_size, cfg.output_size());
        let proj = cfg.proj_size > 0;
        let u = |what, n| to_u32(what, n);
        let (t32, b32, d32) = (u("seq_len", seq_len)?, u("batch", batch)?, d as u32);

        let gemm_groups = |what: &str, m: usize, n: usize| -> Result<[u32; 3]> {
            let groups = [
                u("gemm columns", n.div_ceil(GEMM_TILE as usize))?,
                u("gemm rows", m.div_ceil(GEMM_TILE as usize))?,
                1,
            ];
            check_workgroups(&limits, what, groups)
        };
        let step_groups = check_workgroups(
            &limits,
            "lstm_step",
            [
                (h as u32).div_ceil(WORKGROUP_SIZE),
                b32.div_ceil(STEP_BATCH_TILE),
                d32,
            ],
        )?;
        let proj_groups = check_workgroups(
            &limits,
            "lstm_proj",
            [(h_out as u32).div_ceil(WORKGROUP_SIZE), b32, d32],
        )?;

        // Params: one slot per gemm, one per timestep (shared by lstm_step and lstm_proj).
        let mut arena = ParamArena::new(limits.min_uniform_buffer_offset_alignment);
        let mut gemm_offsets = Vec::new();
        let mut step_offsets = Vec::new();
        for layer in 0..cfg.num_layers {
            let in_size = cfg.layer_input_size(layer);
            let (group_stride, row_stride) = if layer == 0 && cfg.batch_first {
                (in_size, seq_len * in_size)
            } else {
                (batch * in_size, in_size)
            };
            gemm_offsets.push(arena.push(&GemmParams {
                m: u("T*B", seq_len * batch)?,
                n: u("D*4H", d * 4 * h)?,
                k: u("input width", in_size)?,
                has_bias: cfg.bias as u32,
                a_group_rows: b32,
                a_group_stride: u("input stride", group_stride)?,
                a_row_stride: u("input stride", row_stride)?,
                a_k_stride: 1,
                b_k_stride: u("D*4H", d * 4 * h)?,
                b_n_stride: 1,
                c_row_stride: u("D*4H", d * 4 * h)?,
                ..Default::default()
            }));
            let width = d * h_out;
            let last = layer + 1 == cfg.num_layers;
            let (y_t_stride, y_b_stride) = if last && cfg.batch_first {
                (width, seq_len * width)
            } else {
                (batch * width, width)
            };
            let mut offsets = Vec::with_capacity(seq_len);
            for step in 0..t32 {
                offsets.push(arena.push(&StepParams {
                    seq_len: t32,
                    batch: b32,
                    hidden: h as u32,
                    hidden_out: h_out as u32,
                    dirs: d32,
                    step,
                    y_t_stride: u("output stride", y_t_stride)?,
                    y_b_stride: u("output stride", y_b_stride)?,
                    proj: proj as u32,
                    has_lengths: 1,
                    ..Default::default()
                }));
            }
            step_offsets.push(offsets);
        }
        let head_offset = model.head.as_ref().map(|head| -> Result<u32> {
            let width = d * h_out;
            Ok(arena.push(&GemmParams {
                m: u("T*B", seq_len * batch)?,
                n: u("head width", head.out_features)?,
                k: u("D*H_out", width)?,
                has_bias: head.bias.is_some() as u32,
                a_group_rows: u("T*B", seq_len * batch)?,
                a_row_stride: u("D*H_out", width)?,
                a_k_stride: 1,
                b_k_stride: u("head width", head.out_features)?,
                b_n_stride: 1,
                c_row_stride: u("head width", head.out_features)?,
                ..Default::default()
            }))
        });
        let head_offset = head_offset.transpose()?;
        let params_bytes = arena.bytes().len() as u64;
        if params_bytes > limits.max_buffer_size {
            return Err(Error::Limit {
                what: format!(
                    "the per-step params ({} slots)",
                    step_offsets.len() * seq_len
                ),
                limit: "max_buffer_size",
                needed: params_bytes,
                available: limits.max_buffer_size,
            });
        }

        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: arena.bytes(),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let x = storage_nan(device, "x", sizes.x);
        let pre = storage_nan(device, "input projection", sizes.pre);
        let y: Vec<_> = (0..cfg.num_layers.min(2))
            .map(|i| storage_nan(device, &format!("layer output {i}"), sizes.y))
            .collect();
        let h_state = storage_nan(device, "h state", sizes.h_state);
        let c_state = storage_nan(device, "c state", sizes.c_state);
        let h_full = storage_nan(
            device,
            "h before projection",
            if proj { sizes.c_state } else { 1 },
        );
        // Initial state defaults to zeros, as in PyTorch, until write_input says otherwise.
        let h0 = storage_init(device, "h0", &vec![0.0; sizes.h_n]);
        let c0 = storage_init(device, "c0", &vec![0.0; sizes.c_n]);
        let h_n = storage_nan(device, "h_n", sizes.h_n);
        let c_n = storage_nan(device, "c_n", sizes.c_n);
        let lengths = storage_init(device, "lengths", &vec![t32; batch]);
        let head_out = model
            .head
            .as_ref()
            .map(|_| storage_nan(device, "head output", sizes.head_out));
        let unused_read = storage_nan(device, "unused (read)", 1);
        if let Some(source) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                during: "workspace allocation",
                source,
            });
        }

        let params_binding = wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &params,
            offset: 0,
            size: wgpu::BufferSize::new(PARAMS_BINDING_SIZE),
        });
        let bind = |kernel: Kernel, layer: usize, buffers: &[&wgpu::Buffer]| {
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: params_binding.clone(),
            }];
            entries.extend(
                buffers
                    .iter()
                    .enumerate()
                    .map(|(i, b)| wgpu::BindGroupEntry {
                        binding: i as u32 + 1,
                        resource: b.as_entire_binding(),
                    }),
            );
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("{} l{layer}", kernel.name())),
                layout: &ctx.pipelines().get(kernel).layout,
                entries: &entries,
            })
        };

        let (h_layer, c_layer) = ((d * batch * h_out * 4) as u64, (d * batch * h * 4) as u64);
        let mut ops = Vec::new();
        for (layer, weights) in layers.iter().enumerate() {
            let input = if layer == 0 { &x } else { &y[(layer - 1) % 2] };
            let output = &y[layer % 2];
            let bias = if cfg.bias {
                &weights.bias
            } else {
                &unused_read
            };
            let copy =
                |src: &wgpu::Buffer, src_offset, dst: &wgpu::Buffer, dst_offset, size| Op::Copy {
                    src: src.clone(),
                    src_offset,
                    dst: dst.clone(),
                    dst_offset,
                    size,
                };
            ops.push(copy(&h0, layer as u64 * h_layer, &h_state, 0, h_layer));
            ops.push(copy(&c0, layer as u64 * c_layer, &c_state, 0, c_layer));
            ops.push(Op::Dispatch {
                kernel: Kernel::Gemm,
                layer,
                bind_group: bind(Kernel::Gemm, layer, &[input, &weights.w_ih_t, bias, &pre]),
                params_offset: gemm_offsets[layer],
                workgroups: gemm_groups("the input projection", seq_len * batch, d * 4 * h)?,
            });
            let step_group = bind(
                Kernel::LstmStep,
                layer,
                &[
                    &pre,
                    &weights.w_hh,
                    &h_state,
                    &c_state,
                    output,
                    &h_full,
                    &lengths,
                ],
            );
            let proj_group = proj.then(|| {
                bind(
                    Kernel::LstmProj,
                    layer,
                    &[&h_full, &weights.w_hr_t, &h_state, output, &lengths],
                )
            });
            for &params_offset in &step_offsets[layer] {
                ops.push(Op::Dispatch {
                    kernel: Kernel::LstmStep,
                    layer,
                    bind_group: step_group.clone(),
                    params_offset,
                    workgroups: step_groups,
                });
                if let Some(group) = &proj_group {
                    ops.push(Op::Dispatch {
                        kernel: Kernel::LstmProj,
                        layer,
                        bind_group: group.clone(),
                        params_offset,
                        workgroups: proj_groups,
                    });
                }
            }
            let final_half = (seq_len % 2) as u64 * h_layer;
            ops.push(copy(
                &h_state,
                final_half,
                &h_n,
                layer as u64 * h_layer,
                h_layer,
            ));
            ops.push(copy(&c_state, 0, &c_n, layer as u64 * c_layer, c_layer));
        }
        if let (Some(head), Some(out), Some(params_offset)) = (&model.head, &head_out, head_offset)
        {
            let last = cfg.num_layers - 1;
            let bias = head.bias.as_ref().unwrap_or(&unused_read);
            ops.push(Op::Dispatch {
                kernel: Kernel::Gemm,
                layer: last,
                bind_group: bind(
                    Kernel::Gemm,
                    last,
                    &[&y[last % 2], &head.weight_t, bias, out],
                ),
                params_offset,
                workgroups: gemm_groups("the head", seq_len * batch, head.out_features)?,
            });
        }

        Ok(Self {
            dims,
            x,
            y,
            h0,
            c0,
            h_n,
            c_n,
            lengths,
            head_out,
            plan: Plan { ops },
            num_layers: cfg.num_layers,
            lens: (
                if head_width > 0 {
                    sizes.head_out
                } else {
                    sizes.y
                },
                sizes.h_n,
                sizes.c_n,
            ),
        })
    }

    /// The model's output: the head's, else the last layer's.
    pub fn output(&self) -> &wgpu::Buffer {
        self.head_out
            .as_ref()
            .unwrap_or(&self.y[(self.num_layers - 1) % 2])
    }

    /// Element counts of (output, h_n, c_n).
    pub fn output_lens(&self) -> (usize, usize, usize) {
        self.lens
    }
}
