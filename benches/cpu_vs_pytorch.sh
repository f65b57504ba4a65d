#!/usr/bin/env bash
# The CPU path against PyTorch's CPU LSTM, in one run on the same machine and threads:
# the three forward shapes and two training shapes of issue 9, each timed by
# `lstm-wgpu bench --device cpu --json` and `benches/cudnn_baseline.py --device cpu` back to
# back, then a markdown table of the medians and their ratio. With ROUNDS=n (default 1) each
# shape runs n interleaved pairs (ours, PyTorch, ours, PyTorch, ...) and the table gives the
# median over the rounds of each side's median and the median of the per-pair ratios, so
# that a machine that slows down or speeds up for a while weighs on both sides alike.
#
#   PYTHON=/path/to/venv/bin/python THREADS=2 ROUNDS=5 benches/cpu_vs_pytorch.sh
#
# With ORT=1 each forward round also times ONNX Runtime (benches/onnx_baseline.py, after
# PyTorch) and the table gets its median and ours / ONNX Runtime.
#
# SHAPES=realtime times the small real-time models of issue 25 instead: a beat tracker (T=18000,
# B=1, I=266, H=25, 3 bidirectional layers), a 128-unit detector over 2000 frames, and one
# 512-sample audio block through a 40-unit LSTM. BUSY=1 keeps one core busy with a spinning
# process during every measurement, for all engines alike (a machine doing other work).
#
# Needs a release build (cargo build --release) and torch in $PYTHON (default python3); with
# ORT=1 also onnx and onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BIN=target/release/lstm-wgpu
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-1}
ORT=${ORT:-0}
SHAPES=${SHAPES:-issue9}
BUSY=${BUSY:-0}
export OMP_NUM_THREADS=$THREADS
out=$(mktemp)
if [ "$BUSY" = 1 ]; then
    # one core busy for the whole run: a spinning shell, stopped on exit
    bash -c 'while :; do :; done' &
    spinner=$!
    trap 'kill $spinner 2>/dev/null' EXIT
fi
forward() { # T B I H [L [bi]]
    local extra="--layers ${5:-1}"
    [ "${6:-}" = bi ] && extra="$extra --bidirectional"
    for _ in $(seq "$ROUNDS"); do
        $BIN bench --seq "$1" --batch "$2" --input "$3" --hidden "$4" $extra --device cpu --iters 20 --threads "$THREADS" --json >>"$out"
        $PYTHON benches/cudnn_baseline.py --seq "$1" --batch "$2" --input "$3" --hidden "$4" $extra --device cpu --iters 20 >>"$out"
        if [ "$ORT" = 1 ]; then
            $PYTHON benches/onnx_baseline.py --seq "$1" --batch "$2" --input "$3" --hidden "$4" $extra --threads "$THREADS" --iters 20 2>/dev/null >>"$out"
        fi
    done
}
train() { # T B I H O
    for _ in $(seq "$ROUNDS"); do
        $BIN bench --train --seq "$1" --batch "$2" --input "$3" --hidden "$4" --out-features "$5" --device cpu --iters 20 --threads "$THREADS" --json >>"$out"
        $PYTHON benches/cudnn_baseline.py --train --seq "$1" --batch "$2" --input "$3" --hidden "$4" --out-features "$5" --device cpu --iters 20 >>"$out"
    done
}
if [ "$SHAPES" = realtime ]; then
    forward 18000 1 266 25 3 bi
    forward 2000 1 128 128
    forward 512 1 1 40
else
    forward 100 1 128 256
    forward 100 16 256 512
    forward 50 64 512 512
    train 40 32 1 32 1
    train 100 16 64 256 8
fi
$PYTHON - "$out" "$ROUNDS" "$ORT" "$BUSY" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rounds, ort, busy = int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
med = statistics.median
# rows come as rounds of (ours, PyTorch[, ONNX Runtime]) per shape, shapes in order
groups = {}
for row in rows:
    key = (bool(row.get("train")), row["seq"], row["batch"], row["input"], row["hidden"],
           row.get("layers", 1), bool(row.get("bidirectional")))
    groups.setdefault(key, {}).setdefault(row["device"], []).append(row)
def ratio(ours, other):
    ratios = sorted(o["median_ms"] / t["median_ms"] for o, t in zip(ours, other))
    spread = f" ({ratios[0]:.2f}-{ratios[-1]:.2f})" if rounds > 1 else ""
    return f"{med(ratios):.2f}x{spread}"
head = "| run | T / B / I / H | ours (ms) | PyTorch (ms) | ours / PyTorch |"
rule = "|---|---|---|---|---|"
if ort:
    head += " ONNX Runtime (ms) | ours / ONNX Runtime |"
    rule += "---|---|"
print(head)
print(rule)
adapters = {}
for (train, *shape, layers, bidir), by_device in groups.items():
    ours, torch = by_device["cpu"], by_device["torch-cpu"]
    adapters.update({d: r[0]["adapter"] for d, r in by_device.items()})
    kind = "training step" if train else "forward"
    stack = f" ({layers}{', bi' if bidir else ''})" if layers > 1 or bidir else ""
    line = (f"| {kind} | {' / '.join(map(str, shape))}{stack} | {med(o['median_ms'] for o in ours):.2f} | "
            f"{med(t['median_ms'] for t in torch):.2f} | {ratio(ours, torch)} |")
    if ort:
        onnx = by_device.get("onnxruntime-cpu")
        line += (f" {med(r['median_ms'] for r in onnx):.2f} | {ratio(ours, onnx)} |" if onnx
                 else " - | - |")
    print(line)
print()
names = {"cpu": "ours", "torch-cpu": "PyTorch", "onnxruntime-cpu": "ONNX Runtime"}
print("; ".join(f"{names[d]}: {a}" for d, a in adapters.items())
      + f"; {rounds} interleaved round(s) per shape"
      + ("; one core kept busy by a spinning process (BUSY=1)" if busy else ""))
PY
rm -f "$out"
