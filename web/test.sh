#!/usr/bin/env bash
# The browser suite, as CI runs it: installs what it needs (setup.sh), then in headless
# Chromium (WebGPU through Dawn and Tint, on SwiftShader where there is no GPU):
# 1. tests/browser.rs under wasm-bindgen-test-runner: GPU vs CPU forward sweeps on both
#    limit settings, GPU state and step, the state pool, SGD and Adam training, and Tint
#    compiling every shader build the engine can make;
# 2. the page (page_test.py): it trains, and runs the trained model on GPU and CPU.
# Any failure exits non-zero.
set -euo pipefail
cd "$(dirname "$0")"
bash ./setup.sh
source ./build-env.sh
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
start=$SECONDS
web_cargo test --release --target wasm32-unknown-unknown --target-dir ../target
echo "browser suite: $((SECONDS - start)) s"
start=$SECONDS
bash ./build.sh
python3 page_test.py ${PAGE_SCREENSHOT:+--screenshot "$PAGE_SCREENSHOT"}
echo "page test: $((SECONDS - start)) s"
