#!/usr/bin/env bash
# Idempotent set-up: system packages (apt, when missing and running as root) and the .venv.
#
#   scripts/setup.sh           packages for the examples + venv with the package
#   scripts/setup.sh --tests   also the test packages and the [test] extras
#
# Environment: PYTHON (interpreter for the venv, default python3).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# mmdebstrap builds the local Python base image that the container example's image starts from.
DEMO_PACKAGES=(tmux podman runc docker.io mmdebstrap)
TEST_PACKAGES=(busybox-static docker-registry docker-compose catatonit iproute2 util-linux)
PYTHON="${PYTHON:-python3}"

usage() {
    echo "usage: scripts/setup.sh [--tests]" >&2
    exit 2
}

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Names of the packages in "$@" that are not installed, one per line.
missing_packages() {
    local pkg
    for pkg in "$@"; do
        package_installed "$pkg" || echo "$pkg"
    done
}

# Debian splits venv/ensurepip out of python3: needed when the interpreter cannot make a venv.
python_packages() {
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo python3 python3-venv
    elif ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        echo python3-venv
    fi
}

install_packages() {
    local -a wanted=("$@") missing
    if ! command -v dpkg-query >/dev/null 2>&1; then
        warn "not a Debian system: make sure these are installed: ${wanted[*]}"
        return 0
    fi
    mapfile -t missing < <(missing_packages "${wanted[@]}")
    if [ "${#missing[@]}" -eq 0 ]; then
        log "system packages: all present (${wanted[*]})"
        return 0
    fi
    if ! is_root; then
        die "missing system packages: ${missing[*]}; install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    fi
    mkdir -p "$CACHE_DIR"
    local apt_log="$CACHE_DIR/apt.log"
    log "installing system packages: ${missing[*]} (log: $apt_log)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update && apt-get install -y "${missing[@]}"; } >"$apt_log" 2>&1; then
        show_tail "$apt_log"
        die "apt-get install ${missing[*]} failed (full log: $apt_log)"
    fi
}

# The venv is reinstalled only when pyproject.toml, the extras or the repo path changed
# (stamp file inside the venv); a venv whose interpreter no longer runs is recreated.
venv_key() {
    echo "$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1) $REPO_ROOT"
}

setup_venv() {
    local extras="$1" stamp="$VENV_DIR/.kstlib-setup-stamp" key spec
    key="$(venv_key)"
    if [ -x "$VENV_DIR/bin/python" ] && "$VENV_DIR/bin/python" -c '' 2>/dev/null \
        && [ -f "$stamp" ]; then
        # A [test] install also serves the examples; a plain one does not serve the tests.
        if grep -qxF "$key test" "$stamp" || { [ "$extras" = none ] && grep -qxF "$key none" "$stamp"; }; then
            log "virtualenv: up to date ($VENV_DIR)"
            return 0
        fi
    fi
    if ! [ -x "$VENV_DIR/bin/python" ] || ! "$VENV_DIR/bin/python" -c '' 2>/dev/null; then
        log "virtualenv: creating $VENV_DIR with $PYTHON"
        "$PYTHON" -m venv --clear "$VENV_DIR" || die "could not create $VENV_DIR with '$PYTHON -m venv'"
    fi
    spec="$REPO_ROOT"
    [ "$extras" = test ] && spec="${REPO_ROOT}[test]"
    log "virtualenv: pip install -e '$spec'"
    rm -f "$stamp"
    "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check -q -e "$spec" \
        || die "pip install -e '$spec' failed (see above); fix it and rerun"
    echo "$key $extras" >"$stamp"
}

main() {
    local extras=none
    case "${1:-}" in
        --tests) extras="test" ;;
        "") ;;
        *) usage ;;
    esac
    local -a packages=("${DEMO_PACKAGES[@]}")
    [ "$extras" = test ] && packages+=("${TEST_PACKAGES[@]}")
    local -a py_packages
    read -r -a py_packages <<<"$(python_packages)"
    install_packages "${packages[@]}" "${py_packages[@]}"
    setup_venv "$extras"
    # An editable install leaves no .pyc and PYTHONDONTWRITEBYTECODE may forbid writing them:
    # compile once so every kstlib / inv call does not recompile the package.
    "$VENV_DIR/bin/python" -m compileall -q "$REPO_ROOT/kstlib_tasks" >/dev/null \
        || warn "could not precompile kstlib_tasks (slower start-up only)"
}

main "$@"
