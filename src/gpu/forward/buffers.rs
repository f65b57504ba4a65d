//! The buffers of a forward pass, allocated once per shape.

use std::sync::Mutex;

use super::slots::Slots;
use crate::error::Result;
use crate::gpu::device::{lock, storage_init, storage_nan};
use crate::gpu::kernels::{check_size, to_u32};
use crate::gpu::weights::ResidentWeights;
use crate::shape::{Batched, Dims};

/// The buffers of a forward pass; per-layer vectors hold clones of one buffer where layers
/// share.
pub(crate) struct ForwardBuffers {
    /// layer-0 input
    pub x: wgpu::Buffer,
    /// the input projection of one chunk of steps `[chunk steps, B, D*4H]`
    pub pre: wgpu::Buffer,
    /// each layer's output `[T, B, D*H_out]`
    pub y: Vec<wgpu::Buffer>,
    /// each layer's h states `[D, slots, B, H_out]`
    pub h_state: Vec<wgpu::Buffer>,
    /// each layer's c states `[D, slots, B, H]`
    pub c_state: Vec<wgpu::Buffer>,
    /// each layer's o ⊙ tanh(c) `[D, T or 1, B, H]`
    pub h_full: Vec<wgpu::Buffer>,
    /// each layer's gate activations `[D, T, B, H]` vec4 (training)
    pub gates: Vec<wgpu::Buffer>,
    pub h0: wgpu::Buffer,
    pub c0: wgpu::Buffer,
    pub h_n: wgpu::Buffer,
    pub c_n: wgpu::Buffer,
    /// `[B]` u32
    pub lengths: wgpu::Buffer,
    /// the head's output `[T*B, O]`
    pub head_out: Option<wgpu::Buffer>,
    /// a 1-element buffer bound where a kernel's input is absent (no bias)
    pub unused: wgpu::Buffer,
    /// element counts of (model output, h_n, c_n)
    pub lens: (usize, usize, usize),
    /// what h0, c0 and lengths hold, so that an unchanged one is not uploaded again
    written: Mutex<Written>,
}

/// The contents of the small input buffers, as last written.
struct Written {
    h0_zero: bool,
    c0_zero: bool,
    lengths: Vec<u32>,
}

impl ForwardBuffers {
    /// Checks every size against the device limits, then allocates (all NaN, so an element
    /// no kernel writes shows up in any comparison). `chunk_steps` sizes `pre`.
    pub fn new(
        device: &wgpu::Device,
        weights: &ResidentWeights,
        dims: Dims,
        cache: bool,
        chunk_steps: usize,
    ) -> Result<Self> {
        let cfg = &weights.config;
        let limits = device.limits();
        let Dims { seq_len, batch } = dims;
        let (d, h, h_out, layers) = (
            cfg.num_directions(),
            cfg.hidden_size,
            cfg.output_size(),
            cfg.num_layers,
        );
        let rows = seq_len * batch;
        let width = d * h_out;
        let head_width = weights.head.as_ref().map_or(0, |hd| hd.out_features);
        let (h_slots, c_slots) = Slots::new(cache, seq_len).counts();
        let t_slots = if cache { seq_len } else { 1 };
        let gates_len = if cache {
            d * seq_len * batch * 4 * h
        } else {
            4
        };
        let h_full_len = if cfg.proj_size > 0 || cache {
            d * t_slots * batch * h
        } else {
            1
        };
        for (what, len) in [
            ("the input", rows * cfg.input_size),
            (
                "the input projection of a chunk [steps, B, D*4H]",
                chunk_steps * batch * d * 4 * h,
            ),
            ("a layer output [T, B, D*H_out]", rows * width),
            ("the head output [T, B, O]", rows * head_width),
            ("the h states", d * h_slots * batch * h_out),
            ("the c states", d * c_slots * batch * h),
            ("the gate cache", gates_len),
            ("h_full", h_full_len),
        ] {
            check_size(&limits, what, len)?;
        }

        // Per layer in training; shared (ping-pong for y) in inference.
        let per_layer = |label: &str, len: usize, count: usize| -> Vec<wgpu::Buffer> {
            let made: Vec<_> = (0..count)
                .map(|i| storage_nan(device, &format!("{label} {i}"), len))
                .collect();
            (0..layers).map(|l| made[l % count].clone()).collect()
        };
        let distinct = |n: usize| if cache { layers } else { n };
        // The initial state defaults to zeros, as in PyTorch, until written.
        let (hn_len, cn_len) = (layers * d * batch * h_out, layers * d * batch * h);
        let all_t = vec![to_u32("seq_len", seq_len)?; batch];
        let out_len = if head_width > 0 {
            rows * head_width
        } else {
            rows * width
        };
        Ok(Self {
            x: storage_nan(device, "x", rows * cfg.input_size),
            pre: storage_nan(device, "input projection", chunk_steps * batch * d * 4 * h),
            y: per_layer("layer output", rows * width, distinct(layers.min(2))),
            h_state: per_layer("h states", d * h_slots * batch * h_out, distinct(1)),
            c_state: per_layer("c states", d * c_slots * batch * h, distinct(1)),
            h_full: per_layer("h_full", h_full_len, distinct(1)),
            gates: per_layer("gate cache", gates_len, distinct(1)),
            h0: storage_init(device, "h0", &vec![0.0f32; hn_len]),
            c0: storage_init(device, "c0", &vec![0.0f32; cn_len]),
            h_n: storage_nan(device, "h_n", hn_len),
            c_n: storage_nan(device, "c_n", cn_len),
            lengths: storage_init(device, "lengths", &all_t),
            head_out: weights
                .head
                .as_ref()
                .map(|_| storage_nan(device, "head output", rows * head_width)),
            unused: storage_nan(device, "unused (read)", 1),
            lens: (out_len, hn_len, cn_len),
            written: Mutex::new(Written {
                h0_zero: true,
                c0_zero: true,
                lengths: all_t,
            }),
        })
    }

    /// Uploads `inputs`' h0 and c0 (zeros when absent) and its lengths, skipping what the
    /// buffers already hold (zeros, the same lengths).
    pub fn write_state(&self, queue: &wgpu::Queue, inputs: &Batched<'_, f32>) {
        let (_, hn_len, cn_len) = self.lens;
        let mut written = lock(&self.written);
        let state =
            |buffer, t: &Option<std::borrow::Cow<'_, crate::Tensor>>, len, zero: &mut bool| {
                match t {
                    Some(t) => queue.write_buffer(buffer, 0, bytemuck::cast_slice(t.data())),
                    None if !*zero => {
                        queue.write_buffer(buffer, 0, bytemuck::cast_slice(&vec![0.0f32; len]))
                    }
                    None => {}
                }
                *zero = t.is_none();
            };
        let w = &mut *written;
        state(&self.h0, &inputs.h0, hn_len, &mut w.h0_zero);
        state(&self.c0, &inputs.c0, cn_len, &mut w.c0_zero);
        let lengths: Vec<u32> = inputs.lengths.iter().map(|&l| l as u32).collect();
        if lengths != w.lengths {
            queue.write_buffer(&self.lengths, 0, bytemuck::cast_slice(&lengths));
            w.lengths = lengths;
        }
    }

    /// Notes that h0 and c0 were overwritten on the GPU (from a state), so the next host
    /// write of zeros is not skipped.
    pub fn state_overwritten(&self) {
        let mut written = lock(&self.written);
        written.h0_zero = false;
        written.c0_zero = false;
    }

    /// The model's output: the head's, else the last layer's.
    pub fn output(&self) -> &wgpu::Buffer {
        self.head_out.as_ref().unwrap_or(&self.y[self.y.len() - 1])
    }
}
