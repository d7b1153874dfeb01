#!/usr/bin/env bash
# Prepare the real backends: tmux, podman (repo-owned CONTAINERS_CONF), a docker engine
# (dockerd started when 'docker info' fails) and the local images, built without any registry.
#
#   scripts/prepare-backends.sh [--tests]  tmux + podman + docker, busybox and python images on both
#   scripts/prepare-backends.sh --demo     tmux + every runtime that works, python image only
#
# A backend that cannot be prepared is a warning (its tests skip), except under CI=true in
# --tests mode, and when --demo ends with no container runtime at all: then it is fatal.
# Images and the mmdebstrap tarball are cached ($CACHE_DIR): a second run only checks.
# Needed by whoever runs the tests afterwards: export CONTAINERS_CONF (printed at the end).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASE_TAR="$CACHE_DIR/bookworm-python3-minimal.tar"
DOCKERD_LOG="$CACHE_DIR/dockerd.log"
DOCKERD_TIMEOUT="${KSTLIB_DOCKERD_TIMEOUT:-60}"
PROBLEMS=()
READY_RUNTIMES=()

join_problems() {
    local IFS='|'
    printf '%s' "${PROBLEMS[*]}" | sed 's/|/; /g'
}

problem() {
    PROBLEMS+=("$1")
    warn "$1"
}

# Run "$@" with its output in $CACHE_DIR/<name>.log; on failure show the log's tail.
run_logged() {
    local name="$1"
    shift
    local logfile="$CACHE_DIR/$name.log"
    if "$@" >"$logfile" 2>&1; then
        return 0
    fi
    show_tail "$logfile"
    warn "'$*' failed (full log: $logfile)"
    return 1
}

check_tmux() {
    if ! command -v tmux >/dev/null 2>&1; then
        problem "tmux is not installed: run scripts/setup.sh --tests (as root) or apt-get install tmux"
        return 1
    fi
    log "tmux: $(tmux -V)"
}

check_podman() {
    if ! command -v podman >/dev/null 2>&1; then
        problem "podman is not installed: run scripts/setup.sh --tests (as root) or apt-get install podman runc"
        return 1
    fi
    if ! run_logged podman-info podman info; then
        problem "'podman info' failed with CONTAINERS_CONF=$CONTAINERS_CONF (see the log above)"
        return 1
    fi
    log "podman: ready ($(podman --version), CONTAINERS_CONF=$CONTAINERS_CONF)"
}

docker_answers() { timeout 20 docker info >/dev/null 2>&1; }

start_dockerd() {
    log "docker: engine not answering, starting dockerd (log: $DOCKERD_LOG)"
    # Detached (own session) so it outlives this script; fd 9 (our lock) must not leak into it.
    nohup setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    local pid=$! start=$SECONDS
    while ! docker_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_tail "$DOCKERD_LOG"
            problem "dockerd exited right after start (full log: $DOCKERD_LOG)"
            return 1
        fi
        if [ $((SECONDS - start)) -ge "$DOCKERD_TIMEOUT" ]; then
            show_tail "$DOCKERD_LOG"
            problem "dockerd did not answer within ${DOCKERD_TIMEOUT}s (full log: $DOCKERD_LOG)"
            return 1
        fi
        sleep 0.5
    done
    log "docker: dockerd answering after $((SECONDS - start))s (pid $pid)"
}

check_docker() {
    if ! command -v docker >/dev/null 2>&1; then
        problem "docker is not installed: run scripts/setup.sh --tests (as root) or apt-get install docker.io"
        return 1
    fi
    if ! docker_answers; then
        if ! is_root; then
            problem "docker engine not answering and not root: start it (sudo dockerd &) or join the docker group"
            return 1
        fi
        if ! command -v dockerd >/dev/null 2>&1; then
            problem "dockerd not found: apt-get install docker.io"
            return 1
        fi
        start_dockerd || return 1
    fi
    log "docker: engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) answering"
}

# FROM scratch + the static busybox with its applets: no registry involved.
build_busybox_image() {
    local rt="$1" ctx
    if image_exists "$rt" "$BUSYBOX_IMAGE"; then
        log "$rt: $BUSYBOX_IMAGE present (cached)"
        return 0
    fi
    if ! [ -x /bin/busybox ]; then
        problem "/bin/busybox missing: apt-get install busybox-static"
        return 1
    fi
    ctx="$(mktemp -d)"
    cp /bin/busybox "$ctx/busybox"
    cat >"$ctx/Containerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
EOF
    log "$rt: building $BUSYBOX_IMAGE"
    local -a build=("$rt" build)
    # docker: the legacy builder is enough (no buildx plugin needed).
    [ "$rt" = docker ] && build=(env DOCKER_BUILDKIT=0 docker build)
    if ! run_logged "build-busybox-$rt" "${build[@]}" -t "$BUSYBOX_IMAGE" -f "$ctx/Containerfile" "$ctx"; then
        rm -rf "$ctx"
        problem "$rt: could not build $BUSYBOX_IMAGE"
        return 1
    fi
    rm -rf "$ctx"
}

# Debian bookworm (essential) + python3-minimal, as a rootfs tarball kept in the cache.
ensure_base_tar() {
    if [ -s "$BASE_TAR" ]; then
        return 0
    fi
    if ! command -v mmdebstrap >/dev/null 2>&1; then
        problem "mmdebstrap is not installed: apt-get install mmdebstrap"
        return 1
    fi
    if ! is_root; then
        problem "building $BASE_TAR needs root (mmdebstrap --mode=root); rerun as root"
        return 1
    fi
    local tmp="$CACHE_DIR/base.$$.tmp.tar"
    log "mmdebstrap: building bookworm + python3-minimal rootfs (~15 s) -> $BASE_TAR"
    if ! run_logged mmdebstrap mmdebstrap --variant=essential --include=python3-minimal \
        --mode=root bookworm "$tmp"; then
        rm -f "$tmp"
        problem "mmdebstrap failed: cannot build $PYTHON_IMAGE"
        return 1
    fi
    mv "$tmp" "$BASE_TAR"
}

import_python_image() {
    local rt="$1"
    if image_exists "$rt" "$PYTHON_IMAGE"; then
        log "$rt: $PYTHON_IMAGE present (cached)"
        return 0
    fi
    ensure_base_tar || return 1
    log "$rt: importing $PYTHON_IMAGE from $BASE_TAR"
    if ! run_logged "import-python-$rt" "$rt" import --change 'CMD ["python3"]' \
        "$BASE_TAR" "$PYTHON_IMAGE"; then
        problem "$rt: could not import $PYTHON_IMAGE"
        return 1
    fi
}

prepare_runtime() {
    local rt="$1" mode="$2"
    "check_$rt" || return 1
    if [ "$mode" = tests ]; then
        build_busybox_image "$rt" || return 1
    fi
    import_python_image "$rt" || return 1
    READY_RUNTIMES+=("$rt")
}

usage() {
    echo "usage: scripts/prepare-backends.sh [--tests|--demo]" >&2
    exit 2
}

main() {
    local mode=tests
    case "${1:-}" in
        --tests | "") mode=tests ;;
        --demo) mode=demo ;;
        *) usage ;;
    esac
    export_backend_env
    mkdir -p "$CACHE_DIR"
    # One preparation at a time on this machine (dockerd start, image builds, base tarball).
    exec 9>"$CACHE_DIR/prepare.lock"
    flock 9

    if ! check_tmux && [ "$mode" = demo ]; then
        die "the tmux example needs tmux: run scripts/setup.sh as root or apt-get install tmux"
    fi
    prepare_runtime podman "$mode" || true
    prepare_runtime docker "$mode" || true
    exec 9>&-

    log "ready container runtimes: ${READY_RUNTIMES[*]:-none}"
    log "for a manual run: export CONTAINERS_CONF=$CONTAINERS_CONF"
    if [ "${#PROBLEMS[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$mode" = tests ] && in_ci; then
        die "CI=true: ${#PROBLEMS[@]} backend problem(s) (never skipped in CI): $(join_problems)"
    fi
    if [ "$mode" = demo ] && [ "${#READY_RUNTIMES[@]}" -eq 0 ]; then
        die "no container runtime ready for the container example: $(join_problems)"
    fi
    warn "${#PROBLEMS[@]} backend problem(s): tests needing them will be skipped (fatal under CI=true)"
}

main "$@"
