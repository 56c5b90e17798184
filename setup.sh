#!/usr/bin/env bash
# Creates the project-local virtualenv .venv and installs the project with its test tools.
# torch is pinned to the CPU wheel through constraints.txt; GPU users: see README "GPU".
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

# pip on these machines warns once per package about absent local indexes; keep real errors.
pip_quiet() { .venv/bin/pip "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip_quiet install -q --upgrade pip
pip_quiet install -q -c constraints.txt -e ".[test]"
# musicnn ships the real published weights; its own dependencies (TensorFlow 1) are never installed.
pip_quiet install -q --no-deps musicnn==0.1.0
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
