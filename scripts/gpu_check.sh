#!/usr/bin/env bash
# One-script GPU check for an offline GPU machine (benchmarks/gpu_check.py): a few GSPO steps
# with TRL on a small random Qwen2.5-VL built on the spot, then `transformers serve` of the
# trained model with `deepvision infer` and `deepvision eval run --benchmarks synth` against it.
# Each part prints a PASS/FAIL line; the JSON summary and the logs land in $OUT when it is set.
#
#   bash scripts/gpu_check.sh [gpu_check.py options]        (e.g. --steps 5 --family qwen3_vl)
#
# Environment: PYTHON (default python3), GPU_CHECK_TIMEOUT (seconds, default 420: the check
# itself gets 30 s less as its --budget), OUT (folder for gpu_check.json and the logs).
#
# The machine (Python 3.12, torch 2.11, transformers 5.17, accelerate, peft, tokenizers,
# pyarrow, numpy, pillow, httpx, anyio, h11, click, rich, typer, pyyaml, xxhash, sympy, ...)
# has no network. What it lacks travels as wheels in .whl/ (about 7 MB, Python 3.12,
# manylinux x86_64; pure-Python wheels elsewhere) and is installed into /tmp/site, ahead of the
# machine's packages on PYTHONPATH; the repo's own src/ gives `deepvision`:
#   trl 1.16.0                      GRPOTrainer (GSPO); needs transformers >= 4.56.2, no cap
#   datasets 5.2.0                  TRL's data; deepvision.train.trl reads the parquet with it
#   dill 0.4.1, multiprocess 0.70.19 (py312)   needed by datasets
#   math-verify 0.9.0               deepvision's answer verification (the rewards, eval)
#   latex2sympy2_extended 1.11.0    needed by math-verify
#   antlr4-python3-runtime 4.13.2   needed by latex2sympy2_extended
#   isal 1.9.1 (cp312)              deepvision's data layer (fast PNG inflate)
#   fastapi 0.141.1                 `transformers serve` (the last fastapi without the
#                                   opentelemetry-api requirement)
#   starlette 1.10.0                needed by fastapi
#   uvicorn 0.54.0                  `transformers serve`'s HTTP server
#   pydantic 2.13.5, pydantic_core 2.46.5 (cp312)   `transformers serve` and fastapi (needs
#                                   typing-extensions >= 4.14.1)
#   annotated-types 0.8.0, typing-inspection 0.4.2  needed by pydantic
#   openai 2.54.0                   `transformers serve` imports its types (openai 3.x would
#                                   need httpx2, which the machine lacks; 2.x uses httpx)
#   jiter 0.19.0 (cp312), distro 1.9.0, sniffio 1.3.1  needed by openai
# .whl/fallback/typing_extensions-4.16.0: installed only if pydantic / fastapi / openai fail to
# import with the machine's own typing-extensions.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=/tmp/site
LIMIT=${GPU_CHECK_TIMEOUT:-420}
LOGDIR=${OUT:-/tmp}
mkdir -p "$LOGDIR"
LOG="$LOGDIR/gpu_check.log"
: >"$LOG"
say() { echo "[gpu_check.sh] $*" | tee -a "$LOG"; }

if ls .whl/*.whl >/dev/null 2>&1; then
  t=$SECONDS
  if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*.whl >>"$LOG" 2>&1; then
    say "FAIL: pip could not install .whl/ into $SITE (log above)"
    tail -20 "$LOG"
    exit 3
  fi
  export PYTHONPATH="$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$SITE/bin:$PATH"
  say "installed $(ls .whl/*.whl | wc -l) wheels into $SITE in $((SECONDS - t)) s"
  if ! "$PY" -c 'import pydantic, fastapi, openai' >/dev/null 2>&1 && ls .whl/fallback/*.whl >/dev/null 2>&1; then
    say "pydantic/fastapi/openai do not import: adding .whl/fallback (typing-extensions)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" .whl/fallback/*.whl >>"$LOG" 2>&1 || say "fallback install failed"
  fi
else
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  say "no .whl/ here: using the packages of $PY as they are"
fi

# `deepvision serve --backend transformers` runs `transformers` from beside the interpreter, else
# from PATH; where neither has it, a shim that runs the CLI of the importable transformers.
PYBIN=$("$PY" -c 'import sys, os; print(os.path.dirname(sys.executable))')
if [ ! -x "$PYBIN/transformers" ] && ! command -v transformers >/dev/null 2>&1; then
  mkdir -p "$SITE/bin"
  printf '#!/bin/sh\nexec "%s" -c "from transformers.cli.transformers import main; main()" "$@"\n' \
    "$(command -v "$PY")" >"$SITE/bin/transformers"
  chmod +x "$SITE/bin/transformers"
  export PATH="$SITE/bin:$PATH"
  say "no transformers command: using a shim in $SITE/bin"
fi

say "python $("$PY" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
command -v nvidia-smi >/dev/null 2>&1 &&
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG"
"$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import importlib
bad = []
for m in ("torch", "transformers", "trl", "datasets", "accelerate", "peft", "math_verify",
          "fastapi", "uvicorn", "pydantic", "openai", "deepvision.cli.main"):
    try:
        importlib.import_module(m)
    except Exception as exc:  # report all, let the check say which part fails
        bad.append(f"{m}: {type(exc).__name__}: {exc}")
print("[gpu_check.sh] imports: " + ("all ok" if not bad else "; ".join(bad)))
EOF

export PYTHONUNBUFFERED=1
timeout -k 20 "$LIMIT" "$PY" benchmarks/gpu_check.py --budget "$((LIMIT - 30))" "$@" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] && say "FAIL: the check ran past ${LIMIT} s and was stopped"
say "exit $rc; log $LOG"
exit "$rc"
