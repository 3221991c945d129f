#!/usr/bin/env bash
# The main job on the embedded sample: validate it, describe it (numbers and plots), export it
# for verl and as inference JSONL. Creates .venv and installs the package on first run.
# Outputs go to runs/quickstart/ (replaced on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
dv=.venv/bin/deepvision
out=runs/quickstart
mkdir -p "$out"
set -x
$dv data validate
$dv data stats --out "$out/stats"
$dv data export --to verl --out "$out/train_verl.parquet" --overwrite
$dv data export --to jsonl --out "$out/problems.jsonl" --overwrite
{ set +x; } 2>/dev/null
echo
echo "Done. Open $out/stats/summary.md and the plots in $out/stats/;"
echo "verl training data: $out/train_verl.parquet; inference input: $out/problems.jsonl"
