#!/usr/bin/env bash
# Serves the page on http://127.0.0.1:${PORT:-8000}/ (a static file server; build it first
# with `bash web/build.sh`). Open it in a browser with WebGPU (Chrome, Edge; Chromium
# headless needs --enable-unsafe-webgpu).
set -euo pipefail
cd "$(dirname "$0")"
exec python3 -m http.server --bind 127.0.0.1 "${PORT:-8000}"
