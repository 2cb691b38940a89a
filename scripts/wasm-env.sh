# Shared by scripts/build-wasm, scripts/test-browser and scripts/bench-browser (sourced).
#
# The wasm build has its own target directory: the native one holds a wgpu/rayon build of
# burn that a wasm32 build cannot share, and keeping them apart lets both stay warm.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export WASM_TARGET_DIR="${WASM_TARGET_DIR:-$HOME/.cache/sessionrank/target-wasm}"
WASM_CRATE=crates/wasm
WASM_ARTEFACT="$WASM_TARGET_DIR/wasm32-unknown-unknown/release/sessionrank_wasm.wasm"
# The WebGPU artefact: `--features webgpu`, size profile `release-webgpu` (crates/wasm/Cargo.toml).
WASM_WEBGPU_ARTEFACT="$WASM_TARGET_DIR/wasm32-unknown-unknown/release-webgpu/sessionrank_wasm.wasm"

# The wasm-bindgen version crates/wasm is locked to: the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$WASM_CRATE/Cargo.lock"
}

# Install wasm-bindgen-cli (wasm-bindgen, wasm-bindgen-test-runner) of that version if missing.
# Without --locked: one of its locked dependency versions is missing from the registry mirror.
need_wasm_bindgen() {
  local want; want=$(wasm_bindgen_version)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    echo "installing wasm-bindgen-cli $want (~3 min)" >&2
    CARGO_TARGET_DIR="$HOME/.cache/sessionrank/target-tools" nice -n 15 cargo install wasm-bindgen-cli --version "$want"
  fi
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
  fi
}

# Build crates/wasm for the browser (release; CPU backend).
build_wasm() {
  (cd "$WASM_CRATE" && CARGO_TARGET_DIR="$WASM_TARGET_DIR" nice -n 15 cargo build --release --locked --target wasm32-unknown-unknown)
}

# The same crate with burn's WebGPU backend (+ the CPU one), size profile: the second,
# lazily loaded artefact (~5 min cold on 2 cores, longer when the machine is busy).
build_wasm_webgpu() {
  (cd "$WASM_CRATE" && CARGO_TARGET_DIR="$WASM_TARGET_DIR" nice -n 15 cargo build --profile release-webgpu --locked --target wasm32-unknown-unknown --features webgpu)
}
