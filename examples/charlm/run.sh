#!/usr/bin/env bash
# A char-level language model of the repository's own sources and docs (git ls-files: the
# .rs, .md and .wgsl files concatenated, about 1.8 MB), trained with `lstm-wgpu train --text`
# on the CPU path: bytes as tokens (V = 256), 32 streams, truncated BPTT over windows of 64,
# the last 5 % held out for validation. PyTorch trains the same model (nn.Embedding,
# nn.LSTM(2 layers), nn.Linear, Adam, the same batchify / get_batch) for the same wall time in
# the same run, and both report validation bits per byte; then `lstm-wgpu sample` prints text.
#     bash examples/charlm/run.sh [OUT_DIR]      STEPS=3000 (ours, about 3 minutes on 2 vCPU; PyTorch gets the same time)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/charlm}
steps=${STEPS:-3000}
threads=${THREADS:-$(nproc)}
mkdir -p "$out"
cargo build --release --quiet
bin=target/release/lstm-wgpu
git ls-files '*.rs' '*.md' '*.wgsl' | xargs cat >"$out/corpus.txt"
echo "corpus: $(wc -c <"$out/corpus.txt") bytes"
$bin init --input-size 64 --hidden-size 256 --num-layers 2 --embedding 256 --head 256 \
    --seed 1 --out "$out/init.safetensors"
common=(--streams 32 --bptt 64 --val-fraction 0.05 --optimizer adam --lr 0.002 --clip-norm 1)
log=$($bin train --weights "$out/init.safetensors" --text "$out/corpus.txt" "${common[@]}" \
    --steps "$steps" --eval-every 200 --lr-schedule constant --warmup 20 --device cpu \
    --threads "$threads" --seed 1 --checkpoint "$out/lm.ckpt" --log "$out/log.csv" \
    --plot "$out/curves.png" --out "$out/lm.safetensors")
echo "== lstm-wgpu, CPU path, $threads threads"
echo "$log"
seconds=$(sed -n 's/.*steps\/s (\([0-9.]*\) s).*/\1/p' <<<"$log")
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)'), CPU, $threads threads, $seconds s"
python3 examples/charlm/pytorch.py "$out/corpus.txt" "$seconds" "$threads"
echo "== lstm-wgpu sample --prime 'pub fn ' --length 300 --temperature 0.7 --seed 3"
$bin sample --weights "$out/lm.safetensors" --prime 'pub fn ' --length 300 \
    --temperature 0.7 --seed 3 --device cpu
echo
