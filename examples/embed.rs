//! Embedding in a wgpu application: the application owns the device, queue, its own buffers
//! and the command encoder; the LSTM records into that encoder and its output stays on the GPU
//! until the application copies it where it wants. Run: `cargo run --release --example embed`.

use lstm_wgpu::gpu::{GpuContext, GpuLstm};
use lstm_wgpu::{Dims, LstmConfig, LstmWeights};
use wgpu::util::DeviceExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // --- the application's own device and data ---
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;
    let (seq_len, batch, input, hidden) = (6, 2, 3, 8);
    let app_input: Vec<f32> = (0..seq_len * batch * input)
        .map(|i| (i as f32 * 0.1).sin())
        .collect();
    let app_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("app input"),
        contents: bytemuck::cast_slice(&app_input),
        usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::STORAGE,
    });
    let app_result = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app result"),
        size: (seq_len * batch * hidden * 4) as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });

    // --- the LSTM on the application's device ---
    let ctx = GpuContext::from_device(device.clone(), queue.clone())?;
    let weights = LstmWeights::init(&LstmConfig::new(input, hidden), 1)?;
    let mut lstm = GpuLstm::new(&ctx, &weights)?; // weights uploaded once, here
    lstm.prepare(Dims { seq_len, batch })?;

    // --- one encoder, one submit: app copy in, LSTM, app copy out ---
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("app frame"),
    });
    encoder.copy_buffer_to_buffer(&app_buffer, 0, lstm.input_buffer()?, 0, app_buffer.size());
    lstm.encode(&mut encoder)?; // h0 = c0 = 0 and lengths = T unless written with write_input
    encoder.copy_buffer_to_buffer(lstm.output_buffer()?, 0, &app_result, 0, app_result.size());
    queue.submit([encoder.finish()]);

    app_result
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device.poll(wgpu::PollType::wait_indefinitely())?;
    let view = app_result.get_mapped_range(..)?;
    let y: &[f32] = bytemuck::cast_slice(&view);
    println!("adapter: {}", adapter.get_info().name);
    println!(
        "y[T-1, 0, :] = {:?}",
        &y[(seq_len - 1) * batch * hidden..][..hidden]
    );
    Ok(())
}
