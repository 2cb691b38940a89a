# Shared environment for scripts/test and scripts/demo (sourced, not run).
#
# Builds go to a target directory outside the clone so that a fresh clone (CI) reuses the
# compiled dependencies: a cold build of burn with wgpu takes ~30 min on 2 cores.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sessionrank/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Mesa (lavapipe) wants a private runtime dir; without one it warns on every start.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
  export XDG_RUNTIME_DIR="$HOME/.cache/sessionrank/xdg"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 0700 "$XDG_RUNTIME_DIR"
fi
# Keep compiled shaders between runs (first wgpu step: ~110 s cold, ~10 s warm).
export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$HOME/.cache/sessionrank/mesa}"

# Install a Debian package only when the file that proves it is installed is missing.
need_deb() { # need_deb <probe path> <package...>
  local probe=$1; shift
  if ! compgen -G "$probe" >/dev/null; then
    echo "installing $* (missing $probe)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
  fi
}

# Install a rustup component (rustfmt, clippy) only when cargo cannot run it.
need_rustup_component() { # need_rustup_component <rustfmt|clippy>
  local subcommand=$1
  [ "$subcommand" = rustfmt ] && subcommand=fmt
  if ! cargo "$subcommand" --version >/dev/null 2>&1; then
    echo "installing the $1 component (rustup)" >&2
    rustup component add "$1"
  fi
}
