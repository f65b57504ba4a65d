#!/usr/bin/env bash
# The soak test (examples/soak.rs): 8 threads on one GpuContext for MINUTES minutes (default
# 10) mixing forwards of random shapes, streamed steps and training steps, each checked
# against the CPU path, with RSS and GPU memory sampled every 5 s and their growth over the
# second half printed. Non-zero exit on a mismatch, an error or a panic.
#
#   benches/soak.sh 10                     # the default adapter (lavapipe here)
#   WGPU_BACKEND=gl benches/soak.sh 10     # wgpu's GL backend
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example soak
exec target/release/examples/soak "${1:-10}"
