#!/usr/bin/env bash
# The main job on this machine, offline: `deepvision quickstart` runs the data tools on generated
# verifiable visual problems (validate, stats, export for TRL and verl), then shows RL learning:
# a tiny vision-language model built offline is served with `transformers serve` and scored by
# `deepvision eval` on held-out colour problems, trained with GSPO (TRL, CPU), then served and
# scored again. Held-out accuracy before and after, the reward curve and links to every report:
# runs/quickstart/report.html and summary.json (decoding is constrained to the four answers).
# Creates .venv with the `train` extra on first run. Outputs: runs/quickstart/ (replaced).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv train
exec .venv/bin/deepvision quickstart --out runs/quickstart "$@"
