#!/usr/bin/env bash
# Run the whole test suite from a fresh checkout: creates .venv, installs the package with its
# dev extras from PyPI, checks lint and format, then runs pytest (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv dev
lint=(src tests)
if compgen -G "benchmarks/*.py" > /dev/null; then lint+=(benchmarks); fi
.venv/bin/ruff check "${lint[@]}"
.venv/bin/ruff format --check "${lint[@]}"
exec .venv/bin/python -m pytest "$@"
