# Sourced by the scripts: ensure .venv (Python >= 3.11) with deepvision installed.
# Usage: ensure_venv [EXTRAS], e.g. ensure_venv dev
ensure_venv() {
  local py="${PYTHON:-python3}" spec="."
  "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [ -n "${1:-}" ]; then spec=".[$1]"; fi
  .venv/bin/python -m pip install --quiet -e "$spec"
}
