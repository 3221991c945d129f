#!/usr/bin/env bash
# The main job on the embedded sample: validate it, describe it (numbers and plots), export it
# for verl and as inference JSONL. Creates .venv and installs the package on first run.
# Outputs go to runs/quickstart/ (replaced on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv
dv=.venv/bin/deepvision
out=runs/quickstart
mkdir -p "$out"
set -x
$dv data validate
$dv data stats --out "$out/stats"
$dv data export --to verl --out "$out/train_verl.parquet" --overwrite
$dv data export --to jsonl --out "$out/problems.jsonl" --overwrite
$dv verify check 'so the area is \boxed{\frac{37}{2}}' --gold 18.5
{ set +x; } 2>/dev/null
echo
echo "Done. Open $out/stats/summary.md and the plots in $out/stats/;"
echo "verl training data: $out/train_verl.parquet; inference input: $out/problems.jsonl"
