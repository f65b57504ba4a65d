//! A GPU trainer's whole state read back to the host ([`TrainerSnapshot`]) and written back
//! (exact resume), and the learning rate a schedule sets from step to step.

use super::relayout;
use super::trainer::{CarriedState, GpuTrainer};
use crate::error::{Error, Result};
use crate::gpu::device::{guarded, lock, read_f32_async, staging, storage_zeros};
use crate::gpu::plan::PlanBuilder;
use crate::tensor::Tensor;
use crate::train::{OptimizerKind, TrainerSnapshot};

impl GpuTrainer {
    /// The learning rate of the steps submitted from now on (written with each step's
    /// scalars; the recorded optimizer reads it there).
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        let mut optimizer = self.options.optimizer;
        optimizer.lr = lr;
        optimizer.validate()?;
        self.options.optimizer = optimizer;
        Ok(())
    }

    /// The async form of [`crate::train::Trainer::snapshot`]: the parameters, both moments
    /// and the carried state, copied after every submitted step and read back.
    pub async fn snapshot_async(&mut self) -> Result<TrainerSnapshot> {
        let ctx = self.model.context().clone();
        let n = self.layout.total;
        let adam = self.options.optimizer.kind != OptimizerKind::Sgd;
        let carried = self.carried.as_ref().filter(|s| s.live);
        let mut sources: Vec<(&wgpu::Buffer, usize)> = vec![(&self.params, n), (&self.moment1, n)];
        if adam {
            sources.push((&self.moment2, n));
        }
        if let Some(state) = carried {
            sources.extend([(&state.h, state.lens.0), (&state.c, state.lens.1)]);
        }
        let stages = guarded(&ctx, "training snapshot", || {
            let device = ctx.device();
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("training snapshot"),
            });
            let mut stages = Vec::with_capacity(sources.len());
            for (buffer, len) in &sources {
                let stage = staging(device, "training snapshot", *len);
                encoder.copy_buffer_to_buffer(buffer, 0, &stage, 0, (*len * 4) as u64);
                stages.push((stage, *len));
            }
            ctx.submit([encoder.finish()]);
            Ok(stages)
        })
        .await?;
        let refs: Vec<(&wgpu::Buffer, usize)> = stages.iter().map(|(b, n)| (b, *n)).collect();
        let mut read = read_f32_async(&ctx, &refs).await?.into_iter();
        let mut next = || {
            read.next()
                .ok_or_else(|| Error::Readback("snapshot: short".into()))
        };
        let params = next()?;
        let moment1 = next()?;
        let moment2 = if adam { next()? } else { Vec::new() };
        let carried = match carried {
            Some(_) => {
                let (h, c) = (next()?, next()?);
                let (h_shape, c_shape) = self.state_shapes(h.len());
                Some((Tensor::new(h_shape, h)?, Tensor::new(c_shape, c)?))
            }
            None => None,
        };
        Ok(TrainerSnapshot {
            step: self.step,
            params,
            moment1,
            moment2,
            carried,
        })
    }

    /// The async form of [`crate::train::Trainer::restore`].
    pub async fn restore_async(&mut self, snapshot: &TrainerSnapshot) -> Result<()> {
        snapshot.check(self.layout.total)?;
        if let Some((h, c)) = &snapshot.carried {
            let (h_shape, c_shape) = self.state_shapes(h.data().len());
            if h.shape() != h_shape || c.shape() != c_shape {
                return Err(Error::Input(format!(
                    "the snapshot's carried state is {:?} and {:?}, this model's is {h_shape:?} \
                     and {c_shape:?}",
                    h.shape(),
                    c.shape()
                )));
            }
        }
        let ctx = self.model.context().clone();
        self.flush_async().await?;
        let n = self.layout.total;
        let zeros = vec![0.0f32; n];
        let or_zeros = |v: &'_ [f32]| -> Vec<f32> {
            if v.is_empty() {
                zeros.clone()
            } else {
                v.to_vec()
            }
        };
        let (m, v) = (or_zeros(&snapshot.moment1), or_zeros(&snapshot.moment2));
        if self.carried.is_none() {
            if let Some((h, c)) = &snapshot.carried {
                let device = ctx.device();
                self.carried = Some(CarriedState {
                    h: storage_zeros(device, "carried h", h.data().len()),
                    c: storage_zeros(device, "carried c", c.data().len()),
                    lens: (h.data().len(), c.data().len()),
                    live: false,
                });
            }
        }
        if let (Some(state), Some((h, _))) = (&self.carried, &snapshot.carried) {
            if state.lens.0 != h.data().len() {
                return Err(Error::Input(format!(
                    "the snapshot's carried state is for another batch: {} elements of h, this \
                     trainer's {}",
                    h.data().len(),
                    state.lens.0
                )));
            }
        }
        let step = snapshot.step;
        guarded(&ctx, "restoring a snapshot", || {
            let queue = ctx.queue();
            queue.write_buffer(&self.params, 0, bytemuck::cast_slice(&snapshot.params));
            // a failed step right after this one rolls back to these parameters
            let backup = &self.backups[(step % 3) as usize];
            queue.write_buffer(backup, 0, bytemuck::cast_slice(&snapshot.params));
            queue.write_buffer(&self.moment1, 0, bytemuck::cast_slice(&m));
            queue.write_buffer(&self.moment2, 0, bytemuck::cast_slice(&v));
            if let (Some(state), Some((h, c))) = (&self.carried, &snapshot.carried) {
                queue.write_buffer(&state.h, 0, bytemuck::cast_slice(h.data()));
                queue.write_buffer(&state.c, 0, bytemuck::cast_slice(c.data()));
            }
            // the forward kernels' layouts follow the restored parameters
            let mut encoder =
                ctx.device()
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("restoring a snapshot"),
                    });
            let mut plan = PlanBuilder::new(&ctx);
            relayout::record(&mut plan, &self.model, &self.layout, &self.params)?;
            plan.finish()?.encode(&mut encoder);
            ctx.submit([encoder.finish()]);
            Ok(())
        })
        .await?;
        if let Some(state) = &mut self.carried {
            state.live = snapshot.carried.is_some();
        }
        self.step = step;
        *lock(&self.host_copy) = (step, self.layout.unflatten(&snapshot.params, &self.like)?);
        Ok(())
    }

    /// `[D*L, B, H_out]` and `[D*L, B, H]` for an `h` of `h` elements.
    fn state_shapes(&self, h: usize) -> (Vec<usize>, Vec<usize>) {
        let cfg = self.model.config();
        let states = cfg.num_directions() * cfg.num_layers;
        let batch = h / (states * cfg.output_size()).max(1);
        (
            vec![states, batch, cfg.output_size()],
            vec![states, batch, cfg.hidden_size],
        )
    }
}
