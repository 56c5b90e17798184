#!/usr/bin/env bash
# Creates the project-local virtualenv .venv and installs the project with its test tools.
# torch is pinned to the CPU wheel through constraints.txt; GPU users: see README "GPU".
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# One line of progress per step. pip and the build backend are chatty (local-index notices,
# setuptools' editable-install banner), so a step's output is kept in $LOG and shown in
# full only when the step fails; pip's own ERROR lines (e.g. dependency conflicts, which
# exit 0) are shown either way.
step() {
    echo "setup: $1"
    shift
    if ! "$@" >"$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "setup: failed: $*" >&2
        exit 1
    fi
    grep "^ERROR" "$LOG" >&2 || true
}

[ -x .venv/bin/python ] || step "creating .venv with $PYTHON" "$PYTHON" -m venv .venv
step "upgrading pip" .venv/bin/pip install -q --upgrade pip
step "installing mfs and its dependencies (a few minutes; compiles the C kernels in extractors/fma518 and extractors/hf)" \
    .venv/bin/pip install -q -c constraints.txt -e ".[test]"
# musicnn ships the real published weights; its own dependencies (TensorFlow 1) are never installed.
step "installing the musicnn 0.1.0 weights" .venv/bin/pip install -q --no-deps musicnn==0.1.0
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
