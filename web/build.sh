#!/usr/bin/env bash
# Builds the page's wasm module into web/pkg (wasm-bindgen's `web` target, ES modules).
# Serve the page with `bash web/serve.sh`. Run `bash web/setup.sh` once first.
set -euo pipefail
cd "$(dirname "$0")"
source ./build-env.sh
web_cargo build --release --target wasm32-unknown-unknown --target-dir ../target
wasm-bindgen --target web --no-typescript --out-dir pkg \
    ../target/wasm32-unknown-unknown/release/lstm_wgpu_web.wasm
echo "built web/pkg ($(du -h pkg/lstm_wgpu_web_bg.wasm | cut -f1) of wasm)"
