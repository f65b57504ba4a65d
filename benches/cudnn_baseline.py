"""The PyTorch baseline for `lstm-wgpu bench`: nn.LSTM forward (cuDNN on CUDA), timed the same way.

Input starts on the host and the output comes back to the host, every iteration synchronised
(median_ms, min_ms: what `lstm-wgpu bench` reports as median_ms). It also times the LSTM with
the input already on the device and the output left there (device_ms, device_us_per_step), the
counterpart of `lstm-wgpu bench`'s GPU time. Medians over --iters after --warmup, as one JSON
line with the fields of `lstm-wgpu bench --json`. Run it beside that command on the same
machine, e.g.:

    python3 benches/cudnn_baseline.py --seq 64 --batch 16 --input 64 --hidden 256 --device cuda

With --train (and --out-features, --optimizer) it times one training step as
`lstm-wgpu bench --train` does: zero_grad, forward through the LSTM and a Linear head, MSE,
backward, the optimizer step, and one loss read (`.item()`), data on the device; median_ms is
milliseconds per step.

Requires: torch (numpy not needed). The FLOP count matches `lstm-wgpu bench`:
2 * 4H * (in + H) per step, layer, direction and batch row (three times that for a
training step).
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
    p.add_argument("--train", action="store_true")
    p.add_argument("--out-features", type=int, default=16)
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="adam")
    p.add_argument("--task", choices=["step", "sequence", "lm"], default="step",
                   help="with --train: MSE at every step, cross-entropy per sequence on head(h_n), "
                        "or a language model (ids, embedding, cross-entropy over --vocab per step)")
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.0,
                   help="with --train: dropout on the input, between layers and on the output")
    a = p.parse_args()

    # fp32 as lstm-wgpu computes it: no TF32 in cuDNN's RNN or in matmuls
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device(a.device)
    lstm = torch.nn.LSTM(a.input, a.hidden, num_layers=a.layers, bidirectional=a.bidirectional).to(device).eval()
    x_host = torch.randn(a.seq, a.batch, a.input)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    if a.train:
        return train(a, lstm.train(), x_host.to(device), device, sync)

    x_device = x_host.to(device)

    def host_in_out():
        with torch.no_grad():
            y, _ = lstm(x_host.to(device))
            return y.cpu()

    def on_device():
        with torch.no_grad():
            y, _ = lstm(x_device)
            return y

    times = timed(a, host_in_out, sync)
    device_times = timed(a, on_device, sync)

    flops = forward_flops(a)
    median = statistics.median(times)
    device_ms = statistics.median(device_times)
    adapter = adapter_name(a)
    print(json.dumps(dict(device=f"torch-{a.device}", adapter=adapter, seq=a.seq, batch=a.batch, input=a.input,
                          hidden=a.hidden, layers=a.layers, bidirectional=a.bidirectional,
                          median_ms=median, min_ms=min(times), us_per_step=median * 1e3 / a.seq,
                          device_ms=device_ms, device_us_per_step=device_ms * 1e3 / a.seq,
                          gflops=flops / median / 1e6)))


def forward_flops(a):
    """2 * 4H * (in + H) per step, layer, direction and batch row, as `lstm-wgpu bench`."""
    d = 2 if a.bidirectional else 1
    per_row = sum(2 * 4 * a.hidden * ((a.input if l == 0 else d * a.hidden) + a.hidden) for l in range(a.layers))
    return per_row * d * a.seq * a.batch


def adapter_name(a):
    if a.device == "cuda":
        return torch.cuda.get_device_name() + " (cuDNN)"
    return f"CPU (torch {torch.__version__}, {torch.get_num_threads()} threads)"


def timed(a, run, sync):
    for _ in range(a.warmup):
        run()
    times = []
    for _ in range(max(a.iters, 1)):
        sync()
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def train(a, lstm, x, device, sync):
    d = 2 if a.bidirectional else 1
    head = torch.nn.Linear(d * a.hidden, a.out_features).to(device)
    params = list(lstm.parameters()) + list(head.parameters())
    lr = 0.01 if a.optimizer == "sgd" else 0.001
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[a.optimizer](params, lr=lr)
    drop = torch.nn.Dropout(a.dropout)
    if a.task == "lm":
        embedding = torch.nn.Embedding(a.vocab, a.input).to(device)
        head = torch.nn.Linear(d * a.hidden, a.vocab).to(device)
        params = list(lstm.parameters()) + list(head.parameters()) + list(embedding.parameters())
        opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[a.optimizer](params, lr=lr)
        ids = (torch.arange(a.seq * a.batch, device=device) * 7919 % a.vocab).reshape(a.seq, a.batch)
        target = (torch.arange(a.seq * a.batch, device=device) * 104729 % a.vocab).reshape(a.seq, a.batch)
        ce = torch.nn.CrossEntropyLoss()
        lstm.dropout = a.dropout

        def step():
            opt.zero_grad()
            y, _ = lstm(drop(embedding(ids)))
            loss = ce(head(drop(y)).reshape(-1, a.vocab), target.reshape(-1))
            loss.backward()
            opt.step()
            return loss.item()
        return report(a, timed(a, step, sync), device)
    if a.task == "sequence":
        target = torch.arange(a.batch, device=device) % a.out_features
        loss_fn = torch.nn.CrossEntropyLoss()

        def predict(y, h_n):
            features = torch.cat([h_n[-2], h_n[-1]], 1) if a.bidirectional else h_n[-1]
            return head(features)
    else:
        target = torch.rand(a.seq, a.batch, a.out_features, device=device) * 2 - 1
        loss_fn = torch.nn.MSELoss()

        def predict(y, h_n):
            return head(y)

    lstm.dropout = a.dropout

    def step():
        opt.zero_grad()
        y, (h_n, _) = lstm(drop(x))
        loss = loss_fn(predict(drop(y) if a.task == "step" else y, h_n), target)
        loss.backward()
        opt.step()
        return loss.item()

    return report(a, timed(a, step, sync), device)


def report(a, times, device):
    flops = 3 * forward_flops(a)
    median = statistics.median(times)
    adapter = adapter_name(a)
    print(json.dumps(dict(device=f"torch-{a.device}", adapter=adapter, seq=a.seq, batch=a.batch, input=a.input,
                          hidden=a.hidden, layers=a.layers, bidirectional=a.bidirectional, train=True,
                          out_features=a.out_features, optimizer=a.optimizer, task=a.task, vocab=a.vocab if a.task == "lm" else None,
                          dropout=a.dropout, median_ms=median,
                          min_ms=min(times), steps_per_s=1e3 / median, gflops=flops / median / 1e6)))


if __name__ == "__main__":
    main()
