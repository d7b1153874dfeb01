#!/usr/bin/env bash
# THE main job (README quick start): set up, prepare tmux and a container runtime, build the
# example image, then run each config-driven example (start, status, logs, stop) and the stack
# example (up --wait, list, logs, down).
#
#   bash scripts/demo.sh
#
# Environment: KSTLIB_DEMO_SECONDS (how long each session runs before status/logs, default 6).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EXAMPLES_DIR="$REPO_ROOT/examples/ops"
EXAMPLE_IMAGE="astro-bot"
DEMO_SECONDS="${KSTLIB_DEMO_SECONDS:-6}"
# "<folder under examples/ops>:<session name in its kstlib.conf.yml>", run in this order.
EXAMPLES=(
    "config_driven/tmux:astro-dev"
    "config_driven/container:astro-prod"
)
CURRENT_EXAMPLE=""
STACK_DIR="$EXAMPLES_DIR/stack"
STACK_UP=""

# astro-bot from examples/ops/Containerfile on every runtime that has the local Python base.
build_example_image() {
    local containerfile="$EXAMPLES_DIR/Containerfile" rt logfile
    if ! [ -f "$containerfile" ]; then
        warn "$containerfile not found: $EXAMPLE_IMAGE not built"
        return 0
    fi
    for rt in podman docker; do
        if ! command -v "$rt" >/dev/null 2>&1 || ! image_exists "$rt" "$PYTHON_IMAGE"; then
            continue
        fi
        logfile="$CACHE_DIR/build-$EXAMPLE_IMAGE-$rt.log"
        log "$rt: building $EXAMPLE_IMAGE (BASE_IMAGE=$PYTHON_IMAGE, log: $logfile)"
        local -a build=(podman build --pull=never)
        [ "$rt" = docker ] && build=(env DOCKER_BUILDKIT=0 docker build)
        if ! "${build[@]}" --build-arg "BASE_IMAGE=$PYTHON_IMAGE" -t "$EXAMPLE_IMAGE" \
            -f "$containerfile" "$EXAMPLES_DIR" >"$logfile" 2>&1; then
            show_tail "$logfile"
            die "$rt: building $EXAMPLE_IMAGE from $containerfile failed (full log: $logfile)"
        fi
    done
}

# in_example FOLDER CMD...: run CMD inside an example's folder (where its kstlib.conf.yml is found).
in_example() { local folder="$1"; shift; (cd "$EXAMPLES_DIR/$folder" && "$@"); }

stop_current_example() {
    [ -n "$CURRENT_EXAMPLE" ] || return 0
    log "${CURRENT_EXAMPLE%%:*}: stop"
    local rc=0
    in_example "${CURRENT_EXAMPLE%%:*}" python run.py --stop || rc=$?
    CURRENT_EXAMPLE=""
    return "$rc"
}

# One example end to end; returns non-zero when any step failed (the session is stopped anyway).
run_example() {
    local folder="${1%%:*}" name="${1##*:}" rc=0
    local backend="${folder##*/}"  # config_driven/tmux -> tmux, config_driven/container -> container
    log "${folder}: start (session $name)"
    CURRENT_EXAMPLE="$1"
    if ! in_example "$folder" python run.py; then
        CURRENT_EXAMPLE=""
        warn "$folder: 'python run.py' failed"
        return 1
    fi
    sleep "$DEMO_SECONDS"
    log "${folder}: status"
    in_example "$folder" python run.py --status || rc=1
    log "${folder}: list (kstlib ops list --backend $backend)"
    in_example "$folder" kstlib ops list --backend "$backend" || rc=1
    log "${folder}: logs (kstlib ops logs $name --lines 20)"
    in_example "$folder" kstlib ops logs "$name" --lines 20 || rc=1
    stop_current_example || rc=1
    log "${folder}: status after the stop (back to defined)"
    in_example "$folder" python run.py --status || rc=1
    [ "$rc" -eq 0 ] || warn "$folder: a step failed (see above)"
    return "$rc"
}

stop_stack() {
    [ -n "$STACK_UP" ] || return 0
    STACK_UP=""
    log "stack: down (dependents first)"
    (cd "$STACK_DIR" && kstlib ops down)
}

# The stack example: a one-shot migration, an API it gates, a containerized worker on the API.
run_stack() {
    local rc=0
    log "stack: check (config and machine)"
    (cd "$STACK_DIR" && kstlib ops check) || rc=1
    log "stack: up --wait (migrate completed, then api ready, then worker ready)"
    STACK_UP=1
    if ! (cd "$STACK_DIR" && kstlib ops up --wait --timeout 120); then
        warn "stack: 'kstlib ops up --wait' failed"
        rc=1
    fi
    log "stack: list"
    (cd "$STACK_DIR" && kstlib ops list) || rc=1
    log "stack: logs api worker --lines 5"
    (cd "$STACK_DIR" && kstlib ops logs api worker --lines 5) || rc=1
    stop_stack || rc=1
    rm -f "$STACK_DIR/stack-state.txt"
    return "$rc"
}

main() {
    cd "$REPO_ROOT"
    bash scripts/setup.sh
    export_backend_env
    bash scripts/prepare-backends.sh --demo
    build_example_image

    # The examples use the venv's python and kstlib.
    export PATH="$VENV_DIR/bin:$PATH"
    # Interrupted (Ctrl-C, kill): the running example is still stopped.
    trap 'stop_current_example || true; stop_stack || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    local example ran=0 failed=0
    for example in "${EXAMPLES[@]}"; do
        if ! [ -f "$EXAMPLES_DIR/${example%%:*}/run.py" ]; then
            warn "examples/ops/${example%%:*}/run.py not found: example skipped"
            continue
        fi
        ran=$((ran + 1))
        run_example "$example" || failed=$((failed + 1))
    done

    if [ -f "$STACK_DIR/kstlib.conf.yml" ]; then
        ran=$((ran + 1))
        run_stack || failed=$((failed + 1))
    fi

    [ "$ran" -gt 0 ] || die "no example found under $EXAMPLES_DIR: nothing to run"
    [ "$failed" -eq 0 ] || die "$failed of $ran example(s) failed (see above)"
    log "demo done: $ran example(s) started, checked and stopped"
}

main "$@"
