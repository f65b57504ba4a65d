#!/bin/bash
# Training steps of the models people train (issue 20), ours beside PyTorch in one run, shape by
# shape: sequence classification, and a language model (ids, embedding, 2 layers, per-step
# cross-entropy) over V = 256 and V = 10,000, with and without dropout. Each shape runs ROUNDS
# interleaved pairs (ours, PyTorch, ours, ...); the table gives each side's median over the
# rounds of its median step, their ratio and the range of each side's medians.
#
#   DEVICE=cpu ROUNDS=9 bash benches/train_tasks.sh     # CPU path vs PyTorch CPU, this machine
#   TASKS=char DEVICE=cpu ITERS=3 bash benches/train_tasks.sh   # the char model's window
#   bash .gl/train.sh                                    # GPU path vs PyTorch CUDA (below)
#
# On a GPU machine: prepare .gl/ as ../shared/device/README.md says, then also
# `cp benches/train_tasks.sh .gl/train.sh`; there it runs `.gl/bin/lstm-wgpu` on NVIDIA's
# Vulkan ICD. Tried here on lavapipe with
#   DEVICE=gpu TORCH_DEVICE=cpu ITERS=2 BIN=target/release/lstm-wgpu \
#     VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json bash benches/train_tasks.sh
# Results land in $OUT (rows.jsonl, log, table.md) and the table on stdout.
set -u
cd "$(dirname "$0")/.."
O=${OUT:-$(mktemp -d)}
DEVICE=${DEVICE:-gpu}
ROUNDS=${ROUNDS:-1}
ITERS=${ITERS:-20}
if [ "$DEVICE" = gpu ]; then
    BIN=${BIN:-.gl/bin/lstm-wgpu}
    TORCH_DEVICE=${TORCH_DEVICE:-cuda}
    for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
    ldconfig 2>/dev/null
    export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
    nvidia-smi -L 2>/dev/null
    $BIN info 2>&1 | head -3 | tee "$O/log"
    $BIN info >/dev/null 2>&1 || { echo "no adapter: stopping"; exit 3; }
else
    BIN=${BIN:-target/release/lstm-wgpu}
    TORCH_DEVICE=cpu
fi
# name|arguments both sides take; TASKS=char: one window of the char-level language model
# (`train --text --bptt K`, issue 21) at the sizes people train
if [ "${TASKS:-}" = char ]; then SHAPES=(
    "char model window, K=128 B=32 I=128 H=512, 2 layers, V=256|--task lm --seq 128 --batch 32 --input 128 --hidden 512 --layers 2 --vocab 256"
    "char model window, K=64 B=64 I=128 H=1024, 2 layers, V=256|--task lm --seq 64 --batch 64 --input 128 --hidden 1024 --layers 2 --vocab 256"
); else SHAPES=(
    "sequence classification, T=40 B=32 I=16 H=64, O=10|--task sequence --seq 40 --batch 32 --input 16 --hidden 64 --out-features 10"
    "sequence classification, T=50 B=64 I=32 H=128, 2 layers, bidirectional, O=10|--task sequence --seq 50 --batch 64 --input 32 --hidden 128 --layers 2 --bidirectional --out-features 10"
    "language model, T=35 B=20 I=64 H=128, 2 layers, V=256|--task lm --seq 35 --batch 20 --input 64 --hidden 128 --layers 2 --vocab 256"
    "language model, same, dropout 0.2|--task lm --seq 35 --batch 20 --input 64 --hidden 128 --layers 2 --vocab 256 --dropout 0.2"
    "language model, same, V=10,000, dropout 0.2|--task lm --seq 35 --batch 20 --input 64 --hidden 128 --layers 2 --vocab 10000 --dropout 0.2"
); fi
for entry in "${SHAPES[@]}"; do
    name=${entry%%|*}
    args=${entry#*|}
    for _ in $(seq "$ROUNDS"); do
        timeout 300 $BIN bench --train $args --device "$DEVICE" --iters "$ITERS" --warmup 3 --json 2>>"$O/log" |
            tail -1 | sed "s/^{/{\"shape\":\"$name\",\"side\":\"ours\",/" >>"$O/rows.jsonl"
        timeout 300 python3 benches/cudnn_baseline.py --train $args --device "$TORCH_DEVICE" --iters "$ITERS" --warmup 3 2>>"$O/log" |
            tail -1 | sed "s/^{/{\"shape\":\"$name\",\"side\":\"torch\",/" >>"$O/rows.jsonl"
    done
done
python3 - "$O/rows.jsonl" "$DEVICE" <<'PY' | tee "$O/table.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
shapes = list(dict.fromkeys(r["shape"] for r in rows))
print(f"| step (Adam), {sys.argv[2]} | lstm-wgpu ms | PyTorch ms | ratio |")
print("|---|---|---|---|")
for s in shapes:
    side = lambda who: sorted(r["median_ms"] for r in rows if r["shape"] == s and r["side"] == who)
    ours, torch = side("ours"), side("torch")
    if not ours or not torch:
        print(f"| {s} | {ours or '-'} | {torch or '-'} | - |")
        continue
    mo, mt = statistics.median(ours), statistics.median(torch)
    span = lambda v: f" ({v[0]:.2f}-{v[-1]:.2f})" if len(v) > 1 else ""
    print(f"| {s} | {mo:.2f}{span(ours)} | {mt:.2f}{span(torch)} | {mo / mt:.2f} |")
PY
