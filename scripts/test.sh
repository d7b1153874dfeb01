#!/usr/bin/env bash
# THE test command (README quick start, .ci/run): set up, prepare the real backends, lint,
# type-check, test.
#
#   bash scripts/test.sh [pytest args...]
#
# Under CI=true a backend that cannot be prepared fails the run (never skipped).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
    cd "$REPO_ROOT"
    bash scripts/setup.sh --tests
    export_backend_env
    bash scripts/prepare-backends.sh --tests

    local lint=0 types=0 tests=0
    log "ruff check"
    "$VENV_DIR/bin/ruff" check . || lint=$?
    log "mypy (strict, on the package)"
    "$VENV_DIR/bin/mypy" || types=$?
    log "pytest${*:+ $*}"
    "$VENV_DIR/bin/pytest" "$@" || tests=$?

    if [ "$lint" -ne 0 ] || [ "$types" -ne 0 ] || [ "$tests" -ne 0 ]; then
        die "failed: ruff check exit $lint, mypy exit $types, pytest exit $tests"
    fi
    log "all green: ruff check, mypy and pytest passed"
}

main "$@"
