"""The PyTorch baseline for `lstm-wgpu bench`: nn.LSTM forward (cuDNN on CUDA), timed the same way.

Input starts on the host and the output comes back to the host, every iteration synchronised.
The report is the median and minimum over --iters after --warmup, as one JSON line with the
fields of `lstm-wgpu bench --json`. Run it beside that command on the same machine, e.g.:

    python3 benches/cudnn_baseline.py --seq 64 --batch 16 --input 64 --hidden 256 --device cuda

Requires: torch (numpy not needed). The FLOP count matches `lstm-wgpu bench`:
2 * 4H * (in + H) per step, layer, direction and batch row.
"""
import argparse
import json
import statistics
import time

import torch


def main():
    p = argparse.ArgumentParser()
    for name in ["seq", "batch", "input", "hidden"]:
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    a = p.parse_args()

    device = torch.device(a.device)
    lstm = torch.nn.LSTM(a.input, a.hidden, num_layers=a.layers, bidirectional=a.bidirectional).to(device).eval()
    x_host = torch.randn(a.seq, a.batch, a.input)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)

    def run():
        with torch.no_grad():
            y, _ = lstm(x_host.to(device))
            return y.cpu()

    for _ in range(a.warmup):
        run()
    times = []
    for _ in range(max(a.iters, 1)):
        sync()
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1e3)

    d = 2 if a.bidirectional else 1
    per_row = sum(2 * 4 * a.hidden * ((a.input if l == 0 else d * a.hidden) + a.hidden) for l in range(a.layers))
    flops = per_row * d * a.seq * a.batch
    median = statistics.median(times)
    adapter = torch.cuda.get_device_name() + " (cuDNN)" if a.device == "cuda" else f"CPU (torch {torch.__version__})"
    print(json.dumps(dict(device=f"torch-{a.device}", adapter=adapter, seq=a.seq, batch=a.batch, input=a.input,
                          hidden=a.hidden, layers=a.layers, bidirectional=a.bidirectional,
                          median_ms=median, min_ms=min(times), gflops=flops / median / 1e6)))


if __name__ == "__main__":
    main()
