#!/usr/bin/env bash
# Run the whole test suite from a fresh checkout: creates .venv, installs the package with its
# dev extras from PyPI, installs Chromium (Debian) for the report test when missing, checks lint
# and format, then runs pytest (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv dev
# The HTML report test renders the page in headless Chromium (Debian's package).
if ! command -v chromium > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
  else
    echo "note: chromium is not installed (apt-get install chromium); the report test will fail" >&2
  fi
fi
lint=(src tests)
if compgen -G "benchmarks/*.py" > /dev/null; then lint+=(benchmarks); fi
.venv/bin/ruff check "${lint[@]}"
.venv/bin/ruff format --check "${lint[@]}"
exec .venv/bin/python -m pytest "$@"
