#!/usr/bin/env bash
# Run the whole test suite from a fresh checkout: creates .venv, installs the package with its
# dev extras from PyPI, checks lint and format, then runs pytest (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv dev
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
exec .venv/bin/python -m pytest "$@"
