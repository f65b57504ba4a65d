#!/bin/bash
# Every recurrent-kernel variant worth trying on the target shapes of issue 7, beside
# PyTorch/cuDNN, in one run on one machine: the figures the table in src/gpu/kernels/choice.rs is
# chosen from. Results are JSON lines (lstm-wgpu bench --json; benches/cudnn_baseline.py).
#
#   BIN=target/release/lstm-wgpu OUT=results bash benches/kernel_sweep.sh
#
# BASELINE=cuda|cpu|none (default cuda), ITERS (default 20), QUICK=1 runs every shape at
# T = 4 with 1 iteration (to try the script out on lavapipe).
set -u
BIN=${BIN:-target/release/lstm-wgpu}
O=${OUT:-$(mktemp -d)}
ITERS=${ITERS:-20}
BASELINE=${BASELINE:-cuda}
mkdir -p "$O"

ours() {
    timeout 120 "$BIN" bench "$@" --device gpu --iters "$ITERS" --warmup 3 --json 2>>"$O/log" \
        | tee -a "$O/ours.jsonl"
}
theirs() {
    [ "$BASELINE" = none ] && return
    env -u LD_LIBRARY_PATH timeout 120 python3 benches/cudnn_baseline.py "$@" \
        --device "$BASELINE" --iters "$ITERS" 2>>"$O/log" | tee -a "$O/cudnn.jsonl"
}
# shape "ARGS" [kernel ...]: the table's choice, each listed kernel, then the baseline
shape() {
    local args=$1
    shift
    if [ -n "${QUICK:-}" ]; then
        args=$(echo "$args" | sed -E 's/--seq [0-9]+/--seq 4/')
        ITERS=1
    fi
    ours $args
    for k in "$@"; do ours $args --kernel "$k"; done
    theirs $args
}

shape "--seq 1024 --batch 1 --input 512 --hidden 512" "step u=8 ks=32 bt=1 qpi=4" \
    "step u=4 ks=32 bt=1 qpi=4 sg=8"
shape "--seq 1024 --batch 1 --input 1024 --hidden 1024" "step u=4 ks=32 bt=1 qpi=8" \
    "step u=8 ks=32 bt=1 qpi=8 sg=4"
shape "--seq 1024 --batch 1 --input 32 --hidden 128" "sequence ks=8 p=16 sg=0" "step"
shape "--seq 1024 --batch 1 --input 64 --hidden 64" "sequence ks=4 p=32 sg=0" \
    "sequence ks=2 p=32 sg=1" "step"
shape "--seq 1024 --batch 1 --input 32 --hidden 32" "sequence ks=1 p=32 sg=0"
shape "--seq 4096 --batch 1 --input 1 --hidden 1"
shape "--seq 256 --batch 64 --input 64 --hidden 64" "step"
shape "--seq 256 --batch 16 --input 512 --hidden 512" \
    "step u=16 ks=8 bt=8 qpi=8" "step u=4 ks=16 bt=16 qpi=8" "step u=2 ks=32 bt=8 qpi=4" \
    "step u=4 ks=16 bt=8 qpi=8 sg=8"
shape "--seq 50 --batch 64 --input 512 --hidden 512" \
    "step u=4 ks=16 bt=8 qpi=8" "step u=16 ks=8 bt=16 qpi=8" "step u=16 ks=8 bt=8 qpi=8 sg=2"
shape "--seq 256 --batch 32 --input 256 --hidden 512 --layers 2 --bidirectional" \
    "step u=4 ks=16 bt=8 qpi=8"
shape "--seq 256 --batch 64 --input 1024 --hidden 1024" "step u=16 ks=4 bt=16 qpi=8"
shape "--seq 100 --batch 1 --input 128 --hidden 256"
shape "--seq 100 --batch 16 --input 256 --hidden 512"
echo "results in $O"
