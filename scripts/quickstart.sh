#!/usr/bin/env bash
# The main job on this machine, offline: `deepvision quickstart` generates verifiable visual
# problems, validates and describes them, exports them for TRL and verl, builds a tiny
# vision-language model, runs a few GSPO steps with TRL on CPU, serves the checkpoint with
# `transformers serve`, evaluates it on the embedded `synth` benchmark and writes the reports.
# Creates .venv with the `train` extra on first run. Outputs: runs/quickstart/ (replaced).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv train
exec .venv/bin/deepvision quickstart --out runs/quickstart "$@"
