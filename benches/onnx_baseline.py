"""ONNX Runtime's CPU LSTM, timed as `lstm-wgpu bench --device cpu` times a forward pass.

nn.LSTM(I, H, --layers, --bidirectional) is exported to ONNX (its LSTM operator) and run by onnxruntime's CPU execution
provider on --threads intra-op threads (inter-op 1, sequential execution). Medians over
--iters after --warmup, as one JSON line with the fields of `lstm-wgpu bench --json` that
apply (median_ms, min_ms, us_per_step, gflops). Run it beside that command and
benches/cudnn_baseline.py --device cpu on the same machine, e.g.:

    python3 benches/onnx_baseline.py --seq 100 --batch 1 --input 128 --hidden 256 --threads 2

Requires: torch, onnx and onnxruntime. The FLOP count matches `lstm-wgpu bench`:
2 * 4H * (in + H) per step and batch row.
"""
import argparse
import io
import json
import statistics
import time

import onnxruntime as ort
import torch


def main():
    p = argparse.ArgumentParser()
    for name in ["seq", "batch", "input", "hidden"]:
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()

    lstm = torch.nn.LSTM(a.input, a.hidden, num_layers=a.layers, bidirectional=a.bidirectional).eval()
    x = torch.randn(a.seq, a.batch, a.input)
    model = io.BytesIO()
    torch.onnx.export(lstm, (x,), model, input_names=["x"], output_names=["y", "h", "c"], dynamo=False)

    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(model.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    want, _ = lstm(x)
    got = session.run(["y"], feed)[0]
    assert abs(got - want.detach().numpy()).max() < 1e-4, "ONNX Runtime disagrees with PyTorch"

    for _ in range(a.warmup):
        session.run(["y"], feed)
    times = []
    for _ in range(a.iters):
        start = time.perf_counter()
        session.run(["y"], feed)
        times.append((time.perf_counter() - start) * 1e3)
    median = statistics.median(times)
    d = 2 if a.bidirectional else 1
    widths = [a.input] + [d * a.hidden] * (a.layers - 1)
    flops = sum(2 * 4 * a.hidden * (w + a.hidden) * d for w in widths) * a.seq * a.batch
    print(json.dumps({
        "device": "onnxruntime-cpu",
        "adapter": f"CPU (onnxruntime {ort.__version__}, {a.threads} threads)",
        "seq": a.seq, "batch": a.batch, "input": a.input, "hidden": a.hidden,
        "layers": a.layers, "bidirectional": a.bidirectional,
        "threads": a.threads,
        "median_ms": median, "min_ms": min(times),
        "us_per_step": median * 1e3 / a.seq,
        "gflops": flops / (median * 1e-3) / 1e9,
    }))


if __name__ == "__main__":
    main()
