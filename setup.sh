#!/usr/bin/env bash
# Creates the project-local virtualenv .venv and installs the project with its test tools.
# torch is pinned to the CPU wheel through constraints.txt; GPU users: see README "GPU".
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -c constraints.txt -e ".[test]"
# musicnn ships the real published weights; its own dependencies (TensorFlow 1) are never installed.
.venv/bin/pip install -q --no-deps musicnn==0.1.0
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
