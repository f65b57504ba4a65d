"""The PyTorch side of `lstm-wgpu bench --stream`: nn.LSTM fed one timestep at a time with
(h, c) carried from Python, the way the issue's anchor was measured.

- host_us: the step's input starts on the host (numpy) and its output comes back to the host
  every step (a synchronising copy), as `lstm-wgpu bench --stream`'s host in/out figure;
- resident_step_us: input already on the device, outputs left there, one synchronisation at
  the end of all steps (total / steps), the counterpart of the GPU-resident figures.

One JSON line with the field names of `lstm-wgpu bench --stream --json`. Example:

    python3 benches/stream_baseline.py --batch 1 --input 512 --hidden 512 --device cuda

Requires: torch, numpy.
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch


def main():
    p = argparse.ArgumentParser()
    for name in ["batch", "input", "hidden"]:
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    a = p.parse_args()
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    lstm = torch.nn.LSTM(a.input, a.hidden, num_layers=a.layers).to(dev)
    shape = (a.layers, a.batch, a.hidden)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    x_host = np.random.default_rng(0).standard_normal((1, a.batch, a.input), dtype=np.float32)
    with torch.no_grad():
        h, c = torch.zeros(shape, device=dev), torch.zeros(shape, device=dev)
        times = []
        for i in range(a.steps + 10):
            start = time.perf_counter()
            y, (h, c) = lstm(torch.from_numpy(x_host).to(dev), (h, c))
            y.cpu()
            if i >= 10:
                times.append((time.perf_counter() - start) * 1e6)
        host = statistics.median(times)

        x = torch.from_numpy(x_host).to(dev)
        rounds = []
        for _ in range(4):
            sync()
            start = time.perf_counter()
            for _ in range(a.steps):
                y, (h, c) = lstm(x, (h, c))
            sync()
            rounds.append((time.perf_counter() - start) * 1e6 / a.steps)
        resident = statistics.median(rounds[1:])
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
    print(json.dumps({
        "kind": "stream", "device": f"torch-{dev.type}",
        "adapter": f"{name} (torch {torch.__version__})",
        "batch": a.batch, "input": a.input, "hidden": a.hidden, "layers": a.layers,
        "host_us": round(host, 2), "resident_step_us": round(resident, 2),
    }))


if __name__ == "__main__":
    main()
