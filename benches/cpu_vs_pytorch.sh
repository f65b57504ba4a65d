#!/usr/bin/env bash
# The CPU path against PyTorch's CPU LSTM, in one run on the same machine and threads:
# the three forward shapes and two training shapes of issue 9, each timed by
# `lstm-wgpu bench --device cpu --json` and `benches/cudnn_baseline.py --device cpu` back to
# back, then a markdown table of the medians and their ratio.
#
#   PYTHON=/path/to/venv/bin/python THREADS=2 benches/cpu_vs_pytorch.sh
#
# Needs a release build (cargo build --release) and torch in $PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BIN=target/release/lstm-wgpu
THREADS=${THREADS:-$(nproc)}
export OMP_NUM_THREADS=$THREADS
out=$(mktemp)
forward() { # T B I H
    $BIN bench --seq "$1" --batch "$2" --input "$3" --hidden "$4" --device cpu --iters 20 --threads "$THREADS" --json >>"$out"
    $PYTHON benches/cudnn_baseline.py --seq "$1" --batch "$2" --input "$3" --hidden "$4" --device cpu --iters 20 >>"$out"
}
train() { # T B I H O
    $BIN bench --train --seq "$1" --batch "$2" --input "$3" --hidden "$4" --out-features "$5" --device cpu --iters 20 --threads "$THREADS" --json >>"$out"
    $PYTHON benches/cudnn_baseline.py --train --seq "$1" --batch "$2" --input "$3" --hidden "$4" --out-features "$5" --device cpu --iters 20 >>"$out"
}
forward 100 1 128 256
forward 100 16 256 512
forward 50 64 512 512
train 40 32 1 32 1
train 100 16 64 256 8
$PYTHON - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| run | T / B / I / H | ours (ms) | PyTorch (ms) | ours / PyTorch |")
print("|---|---|---|---|---|")
for ours, torch in zip(rows[0::2], rows[1::2]):
    kind = "training step" if ours.get("train") else "forward"
    shape = f"{ours['seq']} / {ours['batch']} / {ours['input']} / {ours['hidden']}"
    print(f"| {kind} | {shape} | {ours['median_ms']:.2f} | {torch['median_ms']:.2f} | {ours['median_ms'] / torch['median_ms']:.2f}x |")
print()
print(f"ours: {rows[0]['adapter']}; PyTorch: {rows[1]['adapter']}")
PY
rm -f "$out"
