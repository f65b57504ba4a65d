//! Forward inference, GPU vs CPU, as a user sees it (input on the host, output back on the
//! host). Every GPU iteration waits for the GPU: `forward` returns only after the readback.
//! Run: `cargo bench --bench forward`. On lavapipe the GPU numbers say nothing about real GPUs.

use criterion::{criterion_group, criterion_main, Criterion};
use lstm_wgpu::cpu::{CpuLstm, FastCpuLstm};
use lstm_wgpu::gpu::{GpuContext, GpuLstm};
use lstm_wgpu::{LstmConfig, LstmWeights, Tensor};

fn forward(c: &mut Criterion) {
    let (seq_len, batch, input, hidden) = (32, 8, 64, 128);
    let config = LstmConfig::new(input, hidden);
    let weights = LstmWeights::init(&config, 0).expect("weights");
    let x = Tensor::full([seq_len, batch, input], 0.25f32);
    let name = format!("T{seq_len}_B{batch}_I{input}_H{hidden}");

    let fast = FastCpuLstm::new(&weights);
    c.bench_function(&format!("cpu_fast_{}threads/{name}", fast.threads()), |b| {
        b.iter(|| fast.forward(&x, None, None).expect("cpu"))
    });
    let reference = CpuLstm::<f32>::new(&weights);
    c.bench_function(&format!("cpu_reference_f32/{name}"), |b| {
        b.iter(|| reference.forward(&x, None, None).expect("cpu"))
    });

    match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("adapter: {}", ctx.adapter_name());
            let mut gpu = GpuLstm::new(&ctx, &weights).expect("gpu model");
            let mut group = c.benchmark_group("gpu");
            group.sample_size(10);
            group.bench_function(&name, |b| {
                b.iter(|| gpu.forward(&x, None, None).expect("gpu"))
            });
            group.finish();
        }
        Err(e) => eprintln!("skipping the GPU benchmark: {e}"),
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
