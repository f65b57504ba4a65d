#!/usr/bin/env bash
# Sequence classification on real data: scikit-learn's handwritten digits, each 8x8 image read
# as 8 steps of 8 pixels, one class per sequence. Trains the same model (LSTM(8, 64) + Linear
# head, Adam) with `lstm-wgpu train` on the GPU and on the CPU path, scores the test set with
# `lstm-wgpu eval`, and trains it with PyTorch in the same run for comparison.
#     bash examples/digits/run.sh [OUT_DIR]        (needs python3 with numpy, scikit-learn,
#                                                   torch and safetensors for the comparison)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/digits}
epochs=${EPOCHS:-20}
batch=64
lr=0.01
cargo build --release --quiet
bin=target/release/lstm-wgpu
python3 examples/digits/make_data.py "$out"
$bin init --input-size 8 --hidden-size 64 --head 10 --seed 0 --out "$out/init.safetensors"
for device in gpu cpu; do
    echo "== lstm-wgpu, $device"
    log=$($bin train --weights "$out/init.safetensors" --input "$out/x_train.npy" \
        --target "$out/y_train.npy" --loss cross-entropy --optimizer adam --lr $lr \
        --epochs "$epochs" --batch-size $batch --device $device --seed 1 \
        --out "$out/trained_$device.safetensors")
    echo "$log"
    # the training loop's own time, as pytorch.py times its loop
    seconds=$(sed -n 's/.*steps\/s (\([0-9.]*\) s).*/\1/p' <<<"$log")
    python3 -c "print(f'seconds per epoch: {$seconds / $epochs:.4f}')"
    echo -n "test set: "
    $bin eval --weights "$out/trained_$device.safetensors" --input "$out/x_test.npy" \
        --target "$out/y_test.npy" --loss cross-entropy --device $device
done
echo "== PyTorch, cpu"
python3 examples/digits/pytorch.py "$out" "$epochs" $batch $lr cpu
