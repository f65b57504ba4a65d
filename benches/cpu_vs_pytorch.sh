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
# B=1, I=266, H=25, 3 bidirectional layers), the same with peepholes (an ONNX model that
# onnx_baseline.py writes and both ONNX Runtime and ours time; PyTorch has no peepholes), a
# 128-unit detector over 2000 frames, one 512-sample audio block through a 40-unit LSTM, and
# streaming one timestep per call at H = 40 (I = 1) and H = 128 (I = 128): ours `bench
# --stream --device cpu`, ONNX Runtime's session.run of one step, PyTorch's per-call time
# (stream_baseline.py --device cpu). The realtime shapes always include ONNX Runtime. BUSY=1
# keeps one core busy with a spinning process during every measurement, for all engines
# alike (a machine doing other work).
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
[ "$SHAPES" = realtime ] && ORT=1
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
peepholes() { # T B I H L bi: the ONNX model with peepholes, timed by ONNX Runtime and ours
    local model
    model=$(mktemp --suffix .onnx)
    for _ in $(seq "$ROUNDS"); do
        $PYTHON benches/onnx_baseline.py --seq "$1" --batch "$2" --input "$3" --hidden "$4" --layers "$5" --bidirectional --peepholes --save "$model" --threads "$THREADS" --iters 20 2>/dev/null >>"$out"
        $BIN bench --weights "$model" --seq "$1" --batch "$2" --device cpu --iters 20 --threads "$THREADS" --json | sed 's/^{/{"variant":"peepholes",/' >>"$out"
    done
    rm -f "$model"
}
stream() { # B I H: one timestep per call
    for _ in $(seq "$ROUNDS"); do
        $BIN bench --stream --seq 1 --batch "$1" --input "$2" --hidden "$3" --device cpu --json >>"$out"
        $PYTHON benches/onnx_baseline.py --stream --seq 1 --batch "$1" --input "$2" --hidden "$3" 2>/dev/null >>"$out"
        $PYTHON benches/stream_baseline.py --device cpu --steps 2000 --batch "$1" --input "$2" --hidden "$3" >>"$out"
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
    peepholes 18000 1 266 25 3 bi
    forward 2000 1 128 128
    forward 512 1 1 40
    stream 1 1 40
    stream 1 128 128
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
streams = [r for r in rows if r.get("kind") == "stream"]
rows = [r for r in rows if r.get("kind") != "stream"]
# rows come as rounds of (ours, PyTorch[, ONNX Runtime]) per shape, shapes in order
groups = {}
for row in rows:
    key = (bool(row.get("train")), row["seq"], row["batch"], row["input"], row["hidden"],
           row.get("layers", 1), bool(row.get("bidirectional")), row.get("variant", ""))
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
for (train, *shape, layers, bidir, variant), by_device in groups.items():
    ours, torch = by_device["cpu"], by_device.get("torch-cpu")
    adapters.update({d: r[0]["adapter"] for d, r in by_device.items()})
    kind = "training step" if train else "forward"
    stack = f" ({layers}{', bi' if bidir else ''}{', ' + variant if variant else ''})" if layers > 1 or bidir or variant else ""
    pytorch = (f"{med(t['median_ms'] for t in torch):.2f} | {ratio(ours, torch)}" if torch
               else "- | -")
    line = (f"| {kind} | {' / '.join(map(str, shape))}{stack} | {med(o['median_ms'] for o in ours):.2f} | "
            f"{pytorch} |")
    if ort:
        onnx = by_device.get("onnxruntime-cpu")
        line += (f" {med(r['median_ms'] for r in onnx):.2f} | {ratio(ours, onnx)} |" if onnx
                 else " - | - |")
    print(line)
if streams:
    print()
    print("| streamed step | B / I / H | ours (µs) | ONNX Runtime (µs) | ours / ONNX Runtime | PyTorch (µs) | ours / PyTorch |")
    print("|---|---|---|---|---|---|---|")
    by_shape = {}
    for r in streams:
        key = (r["batch"], r["input"], r["hidden"])
        by_shape.setdefault(key, {}).setdefault(r["device"], []).append(r)
    for shape, by_device in by_shape.items():
        us = {"cpu": "step_us", "onnxruntime-cpu": "step_us", "torch-cpu": "resident_step_us"}
        got = {d: [r[us[d]] for r in rs] for d, rs in by_device.items()}
        adapters.update({f"{d} stream": rs[0]["adapter"] for d, rs in by_device.items()})
        ours = med(got["cpu"])
        cells = []
        for d in ["onnxruntime-cpu", "torch-cpu"]:
            ratios = sorted(o / t for o, t in zip(got["cpu"], got[d]))
            spread = f" ({ratios[0]:.2f}-{ratios[-1]:.2f})" if rounds > 1 else ""
            cells.append(f"{med(got[d]):.2f} | {med(ratios):.2f}x{spread}")
        print(f"| one step per call | {' / '.join(map(str, shape))} | {ours:.3f} | {' | '.join(cells)} |")
print()
names = {"cpu": "ours", "torch-cpu": "PyTorch", "onnxruntime-cpu": "ONNX Runtime"}
def name(device):
    engine, *stream = device.split()
    return names[engine] + (" streaming" if stream else "")
print("; ".join(f"{name(d)}: {a}" for d, a in adapters.items())
      + f"; {rounds} interleaved round(s) per shape"
      + ("; one core kept busy by a spinning process (BUSY=1)" if busy else ""))
PY
rm -f "$out"
