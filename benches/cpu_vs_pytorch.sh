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
# Needs a release build (cargo build --release) and torch in $PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BIN=target/release/lstm-wgpu
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-1}
export OMP_NUM_THREADS=$THREADS
out=$(mktemp)
forward() { # T B I H
    for _ in $(seq "$ROUNDS"); do
        $BIN bench --seq "$1" --batch "$2" --input "$3" --hidden "$4" --device cpu --iters 20 --threads "$THREADS" --json >>"$out"
        $PYTHON benches/cudnn_baseline.py --seq "$1" --batch "$2" --input "$3" --hidden "$4" --device cpu --iters 20 >>"$out"
    done
}
train() { # T B I H O
    for _ in $(seq "$ROUNDS"); do
        $BIN bench --train --seq "$1" --batch "$2" --input "$3" --hidden "$4" --out-features "$5" --device cpu --iters 20 --threads "$THREADS" --json >>"$out"
        $PYTHON benches/cudnn_baseline.py --train --seq "$1" --batch "$2" --input "$3" --hidden "$4" --out-features "$5" --device cpu --iters 20 >>"$out"
    done
}
forward 100 1 128 256
forward 100 16 256 512
forward 50 64 512 512
train 40 32 1 32 1
train 100 16 64 256 8
$PYTHON - "$out" "$ROUNDS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rounds = int(sys.argv[2])
med = statistics.median
print("| run | T / B / I / H | ours (ms) | PyTorch (ms) | ours / PyTorch |")
print("|---|---|---|---|---|")
pairs = list(zip(rows[0::2], rows[1::2]))
for at in range(0, len(pairs), rounds):
    shape_pairs = pairs[at:at + rounds]
    ours, torch = shape_pairs[0]
    kind = "training step" if ours.get("train") else "forward"
    shape = f"{ours['seq']} / {ours['batch']} / {ours['input']} / {ours['hidden']}"
    a = med(o["median_ms"] for o, _ in shape_pairs)
    b = med(t["median_ms"] for _, t in shape_pairs)
    ratio = med(o["median_ms"] / t["median_ms"] for o, t in shape_pairs)
    spread = ""
    if rounds > 1:
        ratios = sorted(o["median_ms"] / t["median_ms"] for o, t in shape_pairs)
        spread = f" ({ratios[0]:.2f}-{ratios[-1]:.2f})"
    print(f"| {kind} | {shape} | {a:.2f} | {b:.2f} | {ratio:.2f}x{spread} |")
print()
print(f"ours: {rows[0]['adapter']}; PyTorch: {rows[1]['adapter']}; {rounds} interleaved round(s) per shape")
PY
rm -f "$out"
