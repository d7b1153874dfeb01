# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts sourcing this
# Shared helpers for scripts/*.sh (sourced, never run directly).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${KSTLIB_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/kstlib-tasks}"
VENV_DIR="$REPO_ROOT/.venv"

# Image names used by the tests (tests/helpers.py) and as the examples' base image.
BUSYBOX_IMAGE="localhost/kstlib-test-busybox:latest"
PYTHON_IMAGE="localhost/kstlib-test-python:latest"

log() { printf '[kstlib] %s\n' "$*"; }
warn() { printf '[kstlib] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[kstlib] ERROR: %s\n' "$*" >&2
    exit 1
}

in_ci() {
    case "${CI:-}" in
        1 | true | TRUE | True | yes) return 0 ;;
        *) return 1 ;;
    esac
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# image_exists RUNTIME IMAGE: true when the image is present locally on that runtime.
image_exists() { "$1" image inspect "$2" >/dev/null 2>&1; }

# Podman needs the runc runtime and explicit ulimits here: a repo-owned containers.conf,
# never the system files.
export_backend_env() {
    export CONTAINERS_CONF="${CONTAINERS_CONF:-$REPO_ROOT/tests/containers.conf}"
}

# Print the last lines of a log file to stderr, indented (used after a failed step).
show_tail() {
    [ -f "$1" ] || return 0
    tail -n "${2:-15}" "$1" | sed 's/^/    | /' >&2
}
