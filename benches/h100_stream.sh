#!/bin/bash
# Streaming on an H100 (issue 10): `bench --stream` beside benches/stream_baseline.py (PyTorch,
# cuDNN) in one run, and examples/serve_streams as a correctness check on the device.
# Prepare .gl/ as ../shared/device/README.md says, then also:
#   cargo build --release --example serve_streams && cp target/release/examples/serve_streams .gl/bin/
#   cp benches/h100_stream.sh .gl/stream.sh
# On the H100, from the project root with .gl beside it:  bash .gl/stream.sh
# Results land in $OUT (ours.jsonl, torch.jsonl, log). ITERS=5 for a quick try on lavapipe.
set -u
O=${OUT:-$(mktemp -d)}
ITERS=${ITERS:-50}
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
export XDG_RUNTIME_DIR=$(mktemp -d)
BIN=.gl/bin/lstm-wgpu
nvidia-smi -L 2>/dev/null
$BIN info 2>&1 | head -3 | tee "$O/log"; $BIN info >/dev/null 2>&1 || { echo "no adapter: stopping"; exit 3; }
timeout 120 .gl/bin/serve_streams 1000 40 2>&1 | tee -a "$O/log"
for s in ${SHAPES:-1,256 1,512 1,1024 1024,256}; do
  IFS=, read B H <<< "$s"
  timeout 120 $BIN bench --stream --seq 1 --batch $B --input $H --hidden $H --device gpu --iters $ITERS --breakdown --json 2>>"$O/log" | tee -a "$O/ours.jsonl"
  timeout 120 python3 benches/stream_baseline.py --batch $B --input $H --hidden $H --device ${TORCH_DEVICE:-cuda} --steps $((ITERS * 10)) 2>>"$O/log" | tee -a "$O/torch.jsonl"
done
