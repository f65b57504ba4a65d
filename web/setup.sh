#!/usr/bin/env bash
# Installs what building and testing the engine for the browser needs on a fresh Debian or
# Ubuntu machine, by package name:
# - the wasm32-unknown-unknown standard library: `rustup target add` where rustup reaches its
#   server (WEB_TOOLCHAIN=debian skips it); else Debian's rustc-web + rust-web-src (std
#   built from source with -Zbuild-std, see build-env.sh) and the linker that goes with it;
# - Chromium and its ChromeDriver (headless WebGPU, on SwiftShader where there is no GPU);
# - wasm-bindgen-cli (wasm-bindgen, wasm-bindgen-test-runner) at the version web/Cargo.lock
#   pins, which must match the wasm-bindgen crate exactly.
set -euo pipefail
cd "$(dirname "$0")"

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "${APT_UPDATED:-}" ]; then
        $sudo apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

if [ "${WEB_TOOLCHAIN:-}" = debian ]; then
    echo "wasm32: Debian's rustc-web (WEB_TOOLCHAIN=debian)"
    apt_install rustc-web cargo-web rust-web-src rust-web-llvm lld-22
elif rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "wasm32: rustup's target is installed"
elif timeout 300 rustup target add wasm32-unknown-unknown 2>/dev/null; then
    echo "wasm32: installed rustup's target"
elif [ -x /usr/bin/rustc ] && /usr/bin/rustc --version | grep -q . \
    && [ -d /usr/lib/rustlib/src/rust/library ] && command -v rust-lld >/dev/null; then
    echo "wasm32: Debian's rustc-web with rust-web-src"
else
    echo "wasm32: rustup's server is out of reach; installing Debian's rustc-web"
    apt_install rustc-web cargo-web rust-web-src rust-web-llvm lld-22
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver
fi

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
    echo "installing wasm-bindgen-cli $version (the version web/Cargo.lock pins)"
    cargo install wasm-bindgen-cli --version "$version"
fi
echo "setup: ok ($(chromium --version), wasm-bindgen $version)"
