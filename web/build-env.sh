# Sourced by web/build.sh and web/test.sh: how to build for wasm32-unknown-unknown here.
# With rustup and its wasm32 target: plain cargo. Without (Debian's rustc-web, where rustup's
# server is out of reach): Debian's compiler, building std from rust-web-src.
# WEB_TOOLCHAIN=debian forces the second way (to test it where both exist).
web_cargo() {
    if [ "${WEB_TOOLCHAIN:-}" != debian ] \
        && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        cargo "$@"
    else
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
            /usr/bin/cargo "$@" -Zbuild-std=std,panic_abort
    fi
}
