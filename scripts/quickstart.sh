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
# Inference and judging, end to end on CPU: a local stand-in for a vLLM server (instant canned
# replies, so the accuracy printed is meaningless; point --endpoint at a real server instead).
.venv/bin/python -m deepvision.cli.fake_server --port 18123 --fail-rate 0.05 > /dev/null &
server=$!
trap 'kill $server 2>/dev/null' EXIT
.venv/bin/python -c 'import time, httpx
for _ in range(100):
    try:
        httpx.get("http://127.0.0.1:18123/v1/models"); break
    except httpx.HTTPError:
        time.sleep(0.1)'
rm -f "$out/infer.jsonl" "$out"/infer.*.jsonl "$out/infer.summary.json"
set -x
$dv infer --endpoint http://127.0.0.1:18123/v1 --model stand-in --out "$out/infer.jsonl"
$dv judge "$out/infer.jsonl"
{ set +x; } 2>/dev/null
echo
echo "Done. Open $out/stats/summary.md and the plots in $out/stats/;"
echo "verl training data: $out/train_verl.parquet; inference input: $out/problems.jsonl;"
echo "model outputs and verdicts: $out/infer.jsonl, $out/infer.verdicts.jsonl, $out/infer.summary.json"
