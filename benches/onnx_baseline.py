"""ONNX Runtime's CPU LSTM, timed as `lstm-wgpu bench --device cpu` times a forward pass.

nn.LSTM(I, H, --layers, --bidirectional) is exported to ONNX (its LSTM operator) and run by onnxruntime's CPU execution
provider on --threads intra-op threads (inter-op 1, sequential execution). Medians over
--iters after --warmup, as one JSON line with the fields of `lstm-wgpu bench --json` that
apply (median_ms, min_ms, us_per_step, gflops). Run it beside that command and
benches/cudnn_baseline.py --device cpu on the same machine, e.g.:

    python3 benches/onnx_baseline.py --seq 100 --batch 1 --input 128 --hidden 256 --threads 2

Requires: torch, onnx and onnxruntime. The FLOP count matches `lstm-wgpu bench`:
2 * 4H * (in + H) per step and batch row.

--peepholes gives every LSTM node of the exported graph random peephole weights (ONNX's
input P, [D, 3H]), a model PyTorch cannot express; --save PATH keeps the model timed, so that
`lstm-wgpu bench --weights PATH` times the same one. --stream times one timestep per
session.run instead (a chunk of one step, (h, c) fed back from the previous run's outputs),
as a JSON line with the fields of `lstm-wgpu bench --stream --device cpu --json`.
"""
import argparse
import io
import json
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch


def add_peepholes(model_bytes, hidden, seed=0):
    """The model with a random P input [D, 3H] on every LSTM node."""
    model = onnx.load_from_string(model_bytes)
    rng = np.random.default_rng(seed)
    for k, node in enumerate(n for n in model.graph.node if n.op_type == "LSTM"):
        d = 2 if any(a.name == "direction" and a.s == b"bidirectional" for a in node.attribute) else 1
        name = f"peepholes_{k}"
        p = rng.uniform(-0.5, 0.5, (d, 3 * hidden)).astype(np.float32)
        model.graph.initializer.append(onnx.numpy_helper.from_array(p, name))
        inputs = list(node.input) + [""] * (7 - len(node.input))
        del node.input[:]
        node.input.extend(inputs[:7] + [name])
    return model.SerializeToString()


def stream(a):
    """µs per session.run of one timestep, the state carried."""
    lstm = torch.nn.LSTM(a.input, a.hidden, num_layers=a.layers).eval()
    x = torch.randn(1, a.batch, a.input)
    state = torch.zeros(a.layers, a.batch, a.hidden)
    model = io.BytesIO()
    torch.onnx.export(lstm, (x, (state, state)), model, input_names=["x", "h0", "c0"],
                      output_names=["y", "h", "c"], dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(model.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy(), "h0": state.numpy(), "c0": state.numpy()}
    steps = max(a.iters, 1000)
    rounds = []
    for r in range(12):
        start = time.perf_counter()
        for _ in range(steps):
            _, h, c = session.run(None, feed)
            feed["h0"], feed["c0"] = h, c
        if r > 0:
            rounds.append((time.perf_counter() - start) * 1e6 / steps)
    print(json.dumps({
        "kind": "stream", "device": "onnxruntime-cpu",
        "adapter": f"CPU (onnxruntime {ort.__version__}, 1 thread)",
        "batch": a.batch, "input": a.input, "hidden": a.hidden, "layers": a.layers,
        "step_us": round(statistics.median(rounds), 3), "min_step_us": round(min(rounds), 3),
    }))


def main():
    p = argparse.ArgumentParser()
    for name in ["seq", "batch", "input", "hidden"]:
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--peepholes", action="store_true")
    p.add_argument("--save")
    p.add_argument("--stream", action="store_true")
    a = p.parse_args()
    if a.stream:
        return stream(a)

    lstm = torch.nn.LSTM(a.input, a.hidden, num_layers=a.layers, bidirectional=a.bidirectional).eval()
    x = torch.randn(a.seq, a.batch, a.input)
    model = io.BytesIO()
    torch.onnx.export(lstm, (x,), model, input_names=["x"], output_names=["y", "h", "c"], dynamo=False)

    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    model = model.getvalue()
    if a.peepholes:
        model = add_peepholes(model, a.hidden)
    if a.save:
        with open(a.save, "wb") as f:
            f.write(model)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    if not a.peepholes:
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
        "threads": a.threads, **({"variant": "peepholes"} if a.peepholes else {}),
        "median_ms": median, "min_ms": min(times),
        "us_per_step": median * 1e3 / a.seq,
        "gflops": flops / (median * 1e-3) / 1e9,
    }))


if __name__ == "__main__":
    main()
