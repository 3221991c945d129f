"""One-script GPU check: GSPO training steps with TRL, then `transformers serve` + infer + eval.

Everything is built offline: a Qwen2.5-VL (or Qwen3-VL) with random weights, its tokenizer and
processor from `deepvision.train.tiny.build_tiny_vlm`, scaled up to a realistic small size
(`--size small`, about 0.4B parameters: 24 layers, hidden 896, an 8-layer vision tower), and
synthetic problems from `deepvision.data.synth.generate`, exported with `deepvision.data.export`.

(a) GSPO with TRL: a recipe (`deepvision.train.recipe`, written to YAML and read back as
    `deepvision train trl` does, whose `--dry-run` is run too) drives
    `deepvision.train.trl.build_trl_trainer` (GRPOTrainer, importance_sampling_level="sequence",
    HF generation, our rewards), then trains and saves like `run_trl`. Per step: wall time,
    mean reward, peak GPU memory, generated and processed tokens/s.
(b) `deepvision serve --backend transformers` on the model trained in (a) (the base model if
    (a) failed), then `deepvision infer` on synthetic problems and
    `deepvision eval run --benchmarks synth` against it: throughput and accuracy (about 0 for
    random weights).

Each part prints one `PASS`/`FAIL` line with its figures. The JSON summary and the log go to the
work folder and, when OUT is set, to `$OUT/gpu_check.json` and `$OUT/gpu_check.log` (with the
server, infer and eval logs). Exit code 0 when both parts pass. `scripts/gpu_check.sh` runs it
on a machine without network, with the missing packages carried as wheels in `.whl/`.

    python benchmarks/gpu_check.py                      # GPU defaults: cuda, small, 4 steps
    python benchmarks/gpu_check.py --device cpu --size tiny --steps 2   # CPU smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
if SRC.is_dir() and str(SRC) not in sys.path:  # the repo's deepvision, installed or not
    sys.path.insert(0, str(SRC))

T0 = time.perf_counter()
_LOG: list[str] = []
_LOG_FILE: Path | None = None


def log(msg: str = "") -> None:
    line = f"[{time.perf_counter() - T0:7.1f}s] {msg}"
    print(line, flush=True)
    _LOG.append(line)
    if _LOG_FILE is not None:
        with _LOG_FILE.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


# --- sizes ---------------------------------------------------------------------------------

# `small`: realistic proportions (Qwen2.5-0.5B's text stack, a shallower vision tower); images
# near their native 560x420 size (about 300 visual tokens). `tiny`: build_tiny_vlm as it is.
SMALL = {
    "qwen2_5_vl": {
        "text": dict(
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            max_position_embeddings=8192,
        ),
        "mrope_section": [8, 12, 12],  # sums to head_dim / 2 = 32
        "vision": dict(
            depth=8,
            hidden_size=640,
            intermediate_size=1728,
            num_heads=10,
            out_hidden_size=896,
            fullatt_block_indexes=[3, 7],
            window_size=112,
        ),
        "pixels": 28 * 28,
    },
    "qwen3_vl": {
        "text": dict(
            hidden_size=1024,
            intermediate_size=3072,
            num_hidden_layers=24,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=64,
            max_position_embeddings=8192,
        ),
        "mrope_section": [12, 10, 10],  # sums to head_dim / 2 = 32
        "vision": dict(
            depth=8,
            hidden_size=640,
            intermediate_size=1728,
            num_heads=10,
            out_hidden_size=1024,
            num_position_embeddings=2304,
            deepstack_visual_indexes=[2, 5, 7],
        ),
        "pixels": 32 * 32,
    },
}

# Workload per size: problems, GRPO group size n, completions per step, response tokens;
# serving: problems for `infer`, synth items for `eval`, max tokens per answer, concurrency.
WORKLOAD = {
    "small": dict(
        train_problems=64,
        n=8,
        batch=32,
        response=256,
        infer=8,
        eval=8,
        max_tokens=128,
        concurrency=8,
    ),
    "tiny": dict(
        train_problems=16, n=4, batch=8, response=16, infer=4, eval=4, max_tokens=16, concurrency=4
    ),
}


def build_model(out: Path, family: str, size: str, device: str, dtype: str) -> dict[str, Any]:
    """build_tiny_vlm (tokenizer, processor, config); for `small`, the same model family
    re-initialized at the small size and saved over it."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig

    from deepvision.train.tiny import build_tiny_vlm

    build_tiny_vlm(out, seed=0, family=family)
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    if size == "tiny" and dtype == "fp32":
        model = AutoModelForImageTextToText.from_pretrained(out)
        return _model_facts(model)
    cfg = AutoConfig.from_pretrained(out)
    if size == "small":
        spec = SMALL[family]
        d = cfg.to_dict()
        text, vision = d["text_config"], d["vision_config"]
        text.update(spec["text"])
        text.pop("layer_types", None)  # one per layer: derived again from num_hidden_layers
        if family == "qwen2_5_vl":
            text.pop("head_dim", None)  # derived from hidden_size / heads
        for key in ("rope_parameters", "rope_scaling"):
            if isinstance(text.get(key), dict) and "mrope_section" in text[key]:
                text[key]["mrope_section"] = list(spec["mrope_section"])
        vision.update(spec["vision"])
        cfg = type(cfg).from_dict(d)
        for k in ("bos_token_id", "eos_token_id", "pad_token_id", "vocab_size"):
            setattr(cfg, k, text[k])
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(cfg, dtype=torch_dtype)
    model.generation_config = GenerationConfig.from_pretrained(out)
    for f in out.glob("*.safetensors*"):
        f.unlink()
    model.save_pretrained(out)
    if size == "small":  # keep the synth figures near their native size
        from transformers import AutoProcessor

        proc = AutoProcessor.from_pretrained(out)
        ip = proc.image_processor
        px = SMALL[family]["pixels"]
        lo, hi = px * 16, px * 320
        ip.size = {"shortest_edge": lo, "longest_edge": hi}
        for attr, v in (("min_pixels", lo), ("max_pixels", hi)):
            if hasattr(ip, attr):
                setattr(ip, attr, v)
        proc.save_pretrained(out)
    facts = _model_facts(model)
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return facts


def _model_facts(model: Any) -> dict[str, Any]:
    tc = model.config.text_config
    vc = model.config.vision_config
    return {
        "class": type(model).__name__,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "text_layers": tc.num_hidden_layers,
        "hidden": tc.hidden_size,
        "vocab": tc.vocab_size,
        "vision_depth": vc.depth,
    }


# --- data ----------------------------------------------------------------------------------


def build_data(work: Path, n_train: int, n_infer: int) -> dict[str, Path]:
    """Synthetic problems -> DeepVision parquet -> TRL parquet (train); held-out problems for
    `deepvision infer` (a later stretch of the same stream, so none is a training problem)."""
    from deepvision.data.export import ExportOptions, export
    from deepvision.data.synth import generate
    from deepvision.data.writer import ProblemWriter

    problems = work / "synth-train.parquet"
    with ProblemWriter(problems) as w:
        w.write(list(generate(n_train, seed=7)))
    trl_file = work / "trl" / "train.parquet"
    trl_file.parent.mkdir(parents=True, exist_ok=True)
    rep = export([problems], trl_file, "trl", opts=ExportOptions())
    if rep.written != n_train:
        raise RuntimeError(f"TRL export wrote {rep.written} of {n_train} rows")
    held = work / "synth-infer.parquet"
    with ProblemWriter(held) as w:
        w.write(list(generate(n_infer, seed=7, start=n_train)))
    return {"problems": problems, "trl": trl_file, "infer": held}


# --- part (a): GSPO with TRL ---------------------------------------------------------------


def make_recipe(
    work: Path, model_dir: Path, trl_file: Path, args: argparse.Namespace, wl: dict[str, Any]
) -> Path:
    from deepvision.train.recipe import dump_recipe, recipe_from_dict

    cpu = args.device == "cpu"
    raw = {
        "name": "gpu-check",
        "model": {"path": str(model_dir), "gradient_checkpointing": not cpu},
        "data": {"train_files": [str(trl_file)], "max_response_length": wl["response"]},
        "algorithm": {"loss": "gspo", "total_steps": args.steps},
        "rollout": {"engine": "hf", "n": wl["n"], "temperature": 1.0},
        "hardware": {"gpus": 8},
        "logger": ["console"],
        "checkpoint": {"dir": str(work / "run"), "save_freq": -1},
        "trl": {
            "per_device_train_batch_size": wl["batch"],
            "steps_per_generation": 1,
            "use_cpu": cpu,
            "bf16": args.dtype == "bf16" and not cpu,
            "logging_steps": 1,
            "seed": 0,
        },
    }
    path = work / "recipe.yaml"
    path.write_text(dump_recipe(recipe_from_dict(raw)), encoding="utf-8")
    return path


def cuda_mem() -> dict[str, float]:
    import torch

    if not torch.cuda.is_available():
        return {}
    free, total = torch.cuda.mem_get_info()
    return {
        "peak_alloc_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "reserved_gib": round(torch.cuda.memory_reserved() / 2**30, 2),
        "used_gib": round((total - free) / 2**30, 2),
        "total_gib": round(total / 2**30, 1),
    }


def part_train(
    work: Path,
    model_dir: Path,
    data: dict[str, Path],
    args: argparse.Namespace,
    wl: dict[str, Any],
    res: dict[str, Any],
) -> Path | None:
    """GSPO steps; returns the saved model folder (None on failure)."""
    import torch
    from transformers import TrainerCallback

    from deepvision.train.recipe import load_recipe
    from deepvision.train.trl import build_trl_trainer

    recipe_path = make_recipe(work, model_dir, data["trl"], args, wl)
    res["recipe"] = str(recipe_path)
    # The CLI on the same recipe: GRPOConfig settings and the multi-GPU launch line.
    dry = run_cli(
        ["train", "trl", str(recipe_path), "--dry-run"], work / "train-dry-run.txt", timeout=120
    )
    if dry["rc"] != 0:
        raise RuntimeError(f"`deepvision train trl --dry-run` failed:\n{dry['tail']}")
    recipe = load_recipe(recipe_path)
    steps: list[dict[str, Any]] = []
    cuda = args.device == "cuda"

    class Meter(TrainerCallback):
        def __init__(self) -> None:
            self.t = time.perf_counter()
            self.tokens = 0.0

        def on_train_begin(self, a, state, control, **kw):
            self.t = time.perf_counter()
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()

        def on_step_end(self, a, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            now = time.perf_counter()
            steps.append(
                {"step": state.global_step, "seconds": round(now - self.t, 2), **cuda_mem()}
            )
            self.t = now
            if cuda:
                torch.cuda.reset_peak_memory_stats()

        def on_log(self, a, state, control, logs=None, **kw):
            if not logs or not steps or "reward" not in logs:
                return
            s = steps[-1]
            s["reward"] = round(float(logs["reward"]), 4)
            s["loss"] = float(logs.get("loss", float("nan")))
            mean_len = float(logs.get("completions/mean_length", 0.0))
            s["completion_mean_len"] = round(mean_len, 1)
            gen_tokens = mean_len * wl["batch"]
            s["gen_tokens_per_s"] = round(gen_tokens / s["seconds"], 1)
            if "num_tokens" in logs:  # cumulative prompt + completion tokens
                done = float(logs["num_tokens"])
                s["tokens_per_s"] = round((done - self.tokens) / s["seconds"], 1)
                self.tokens = done
            for k in (
                "grad_norm",
                "kl",
                "entropy",
                "clip_ratio/region_mean",
                "frac_reward_zero_std",
                "completions/clipped_ratio",
                "step_time",
            ):
                if k in logs:
                    s[k.replace("/", "_")] = round(float(logs[k]), 6)
            log(
                "  step {step}: {seconds:.2f} s, reward {reward:.3f}, loss {loss:.4g}, "
                "{gen_tokens_per_s:.0f} generated tok/s, {tps} processed tok/s{mem}".format(
                    tps=s.get("tokens_per_s", "?"),
                    mem=f", peak GPU {s['peak_alloc_gib']} GiB" if "peak_alloc_gib" in s else "",
                    **s,
                )
            )

    t_build = time.perf_counter()
    run = build_trl_trainer(recipe, work / "trained")  # the path run_trl takes
    trainer = run.trainer
    from transformers.trainer_callback import ProgressCallback

    trainer.remove_callback(ProgressCallback)  # one clean line per step instead of a bar
    trainer.add_callback(Meter())
    a = trainer.args
    res["config"] = {
        k: getattr(a, k, None)
        for k in (
            "importance_sampling_level",
            "loss_type",
            "num_generations",
            "per_device_train_batch_size",
            "steps_per_generation",
            "max_completion_length",
            "beta",
            "epsilon",
            "epsilon_high",
            "learning_rate",
            "bf16",
            "gradient_checkpointing",
            "use_vllm",
            "max_steps",
        )
    }
    res["trainer_build_s"] = round(time.perf_counter() - t_build, 1)
    log(f"  GRPOTrainer ready in {res['trainer_build_s']} s: {res['config']}")
    if a.importance_sampling_level != "sequence":
        raise RuntimeError(f"not GSPO: importance_sampling_level={a.importance_sampling_level}")
    t_train = time.perf_counter()
    trainer.train()
    res["train_s"] = round(time.perf_counter() - t_train, 1)
    trainer.save_model(str(run.output_dir))
    res["steps"] = steps
    done = [s for s in steps if "reward" in s]
    if len(steps) != args.steps or len(done) != args.steps:
        raise RuntimeError(f"{len(steps)} steps ran, {len(done)} logged, {args.steps} asked")
    bad = [s["step"] for s in done if not math.isfinite(s["loss"])]
    if bad:
        raise RuntimeError(f"non-finite loss at steps {bad}")
    later = done[1:] or done  # the first step carries the warm-up
    res["mean_step_s"] = round(sum(s["seconds"] for s in later) / len(later), 2)
    res["mean_reward"] = round(sum(s["reward"] for s in done) / len(done), 4)
    res["gen_tokens_per_s"] = round(sum(s["gen_tokens_per_s"] for s in later) / len(later), 1)
    if all("tokens_per_s" in s for s in later):
        res["tokens_per_s"] = round(sum(s["tokens_per_s"] for s in later) / len(later), 1)
    if cuda:
        res["peak_gpu_gib"] = max(s.get("peak_alloc_gib", 0.0) for s in steps)
    del trainer, run
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return work / "trained"


# --- part (b): serve, infer, eval ----------------------------------------------------------


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["COLUMNS"] = "200"  # rich: summary lines unwrapped
    for k in ("NO_PROXY", "no_proxy"):  # our own servers, never through a proxy
        env[k] = ",".join(x for x in (env.get(k), "127.0.0.1", "localhost") if x)
    return env


def run_cli(argv: list[str], log_path: Path, timeout: float) -> dict[str, Any]:
    """`deepvision ARGV` in a subprocess (the real command line), output to `log_path`."""
    cmd = [sys.executable, "-m", "deepvision.cli.main", *argv]
    timeout = max(timeout, 15.0)
    t = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as fh:
        try:
            rc = subprocess.run(
                cmd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=cli_env(),
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            ).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return {
        "rc": rc,
        "seconds": round(time.perf_counter() - t, 1),
        "text": text,
        "tail": "\n".join(text.splitlines()[-25:]),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nvidia_smi_used() -> float | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
        return round(sum(float(x) for x in out.split()) / 1024, 2)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _die_with_parent() -> None:  # runs in the child before exec
    """Linux: the child gets SIGTERM when this script dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def left(args: argparse.Namespace, reserve: float = 0.0) -> float:
    """Seconds of the --budget still left, less `reserve`."""
    return args.budget - (time.perf_counter() - T0) - reserve


def part_serve(
    work: Path,
    model_dir: Path,
    data: dict[str, Path],
    args: argparse.Namespace,
    wl: dict[str, Any],
    res: dict[str, Any],
) -> None:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    model = str(model_dir)
    res["model"] = model
    res["endpoint"] = url
    serve_log = work / "serve.txt"
    cmd = [
        sys.executable,
        "-m",
        "deepvision.cli.main",
        "serve",
        "--model",
        model,
        "--backend",
        "transformers",
        "--port",
        str(port),
        "--log-dir",
        str(work / "serve-logs"),
        "--health-timeout",
        str(args.serve_timeout),
    ]
    if args.device == "cpu":
        cmd += ["--", "--device", "cpu"]
    t = time.perf_counter()
    fh = serve_log.open("w", encoding="utf-8")
    proc = subprocess.Popen(
        cmd,
        stdout=fh,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        deadline = time.monotonic() + min(args.serve_timeout + 30, left(args, 60))
        ready = False
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url + "/models").status_code == 200:
                        ready = True
                        break
                time.sleep(0.5)
        if not ready:
            raise RuntimeError(
                f"server not ready (exit {proc.poll()}):\n{_serve_tail(work)}\n"
                f"{serve_log.read_text(errors='replace')[-3000:]}"
            )
        res["server_ready_s"] = round(time.perf_counter() - t, 1)
        log(f"  transformers serve ready in {res['server_ready_s']} s at {url}")

        out = work / "infer" / "out.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        r = run_cli(
            [
                "infer",
                str(data["infer"]),
                "--endpoint",
                url,
                "--model",
                model,
                "--out",
                str(out),
                "--max-tokens",
                str(wl["max_tokens"]),
                "--concurrency",
                str(wl["concurrency"]),
                "--timeout",
                "300",
            ],
            work / "infer.txt",
            timeout=min(args.part_timeout, left(args, 45)),
        )
        recs = (
            [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
            if (out.exists())
            else []
        )
        comp = sum((rec.get("usage") or {}).get("completion_tokens", 0) for rec in recs)
        m = re.search(r"([\d.]+) requests/s,\s+([\d.]+) tokens/s", r["text"])
        res["infer"] = {
            "rc": r["rc"],
            "seconds": r["seconds"],
            "records": len(recs),
            "asked": wl["infer"],
            "completion_tokens": comp,
            "wall_tokens_per_s": round(comp / r["seconds"], 1) if r["seconds"] else None,
            "requests_per_s": float(m.group(1)) if m else None,
            "tokens_per_s": float(m.group(2)) if m else None,
        }
        log(f"  infer: {res['infer']}")
        if r["rc"] != 0 or len(recs) != wl["infer"] or comp <= 0:
            raise RuntimeError(
                f"deepvision infer failed (rc {r['rc']}, {len(recs)} records, "
                f"{comp} tokens):\n{r['tail']}\n{_serve_tail(work)}"
            )

        ev_dir = work / "eval"
        r = run_cli(
            [
                "eval",
                "run",
                "--benchmarks",
                "synth",
                "--endpoint",
                url,
                "--model",
                model,
                "--out",
                str(ev_dir),
                "--limit",
                str(wl["eval"]),
                "--max-tokens",
                str(wl["max_tokens"]),
                "--concurrency",
                str(wl["concurrency"]),
                "--timeout",
                "300",
            ],
            work / "eval.txt",
            timeout=min(args.part_timeout, left(args, 10)),
        )
        results_file = ev_dir / "results.json"
        b = {}
        if results_file.exists():
            b = json.loads(results_file.read_text())["benchmarks"].get("synth", {})
        res["eval"] = {
            "rc": r["rc"],
            "seconds": r["seconds"],
            **{k: b.get(k) for k in ("items", "accuracy", "mean_tokens", "missing", "unjudged")},
        }
        if b.get("items") is None:
            res["eval"]["summary"] = {k: v for k, v in b.items() if not isinstance(v, (dict, list))}
        log(f"  eval: {res['eval']}")
        if r["rc"] != 0 or not b or b.get("missing"):
            raise RuntimeError(
                f"deepvision eval run failed (rc {r['rc']}):\n{r['tail']}\n{_serve_tail(work)}"
            )
        used = nvidia_smi_used() if args.device == "cuda" else None
        if used is not None:
            res["gpu_used_gib_while_serving"] = used
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # `deepvision serve` stops its servers on TERM
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        fh.close()


def _serve_tail(work: Path) -> str:
    logs = sorted((work / "serve-logs").glob("*.log"))
    if not logs:
        return "(no server log)"
    text = logs[0].read_text(encoding="utf-8", errors="replace")
    return f"server log {logs[0]}:\n" + "\n".join(text.splitlines()[-30:])


# --- main ----------------------------------------------------------------------------------


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in (
        "torch",
        "torchvision",
        "transformers",
        "trl",
        "accelerate",
        "peft",
        "datasets",
        "tokenizers",
        "huggingface-hub",
        "pyarrow",
        "numpy",
        "math-verify",
        "latex2sympy2_extended",
        "antlr4-python3-runtime",
        "fastapi",
        "starlette",
        "uvicorn",
        "pydantic",
        "openai",
        "typing-extensions",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def main() -> int:
    global _LOG_FILE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default=None,
        help="default: cuda when available, else cpu",
    )
    ap.add_argument(
        "--size",
        choices=("small", "tiny"),
        default=None,
        help="default: small on cuda, tiny on cpu",
    )
    ap.add_argument("--family", choices=("qwen2_5_vl", "qwen3_vl"), default="qwen2_5_vl")
    ap.add_argument("--steps", type=int, default=4, help="GSPO steps (default 4)")
    ap.add_argument(
        "--dtype",
        choices=("bf16", "fp32"),
        default=None,
        help="model weights (default: bf16 on cuda, fp32 on cpu)",
    )
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a new temp)")
    ap.add_argument(
        "--budget",
        type=float,
        default=420.0,
        help="seconds for the whole check: later steps get what is left",
    )
    ap.add_argument(
        "--serve-timeout", type=float, default=240.0, help="seconds for the server to come up"
    )
    ap.add_argument(
        "--part-timeout", type=float, default=180.0, help="seconds for each of infer and eval"
    )
    ap.add_argument("--skip-train", action="store_true", help="part (b) only, on the base model")
    ap.add_argument("--skip-serve", action="store_true", help="part (a) only")
    args = ap.parse_args()

    def on_term(signum: int, frame: Any) -> None:  # `timeout` or a kill: clean up, then stop
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)

    # Offline machine: never reach for the hub; caches stay in the work folder.
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    work.mkdir(parents=True, exist_ok=True)
    for k, v in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "WANDB_MODE": "disabled",
        "HF_HOME": str(work / "hf"),
    }.items():
        os.environ.setdefault(k, v)
    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
    _LOG_FILE = work / "gpu_check.log"

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.device = device
    args.size = args.size or ("small" if device == "cuda" else "tiny")
    args.dtype = args.dtype or ("bf16" if device == "cuda" else "fp32")
    wl = WORKLOAD[args.size]
    summary: dict[str, Any] = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "work": str(work),
        "versions": versions(),
        "workload": wl,
    }
    gpu = None
    if device == "cuda":
        if not torch.cuda.is_available():
            log("FAIL setup: --device cuda but torch sees no GPU")
            return 2
        p = torch.cuda.get_device_properties(0)
        gpu = f"{p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}"
    summary["gpu"] = gpu
    log(
        f"gpu_check: device {device} ({gpu or platform.processor() or platform.machine()}), "
        f"size {args.size}, family {args.family}, {args.steps} steps, dtype {args.dtype}, "
        f"work {work}"
    )
    log(f"versions: {summary['versions']}")

    ok = {"train": False, "serve": False}
    try:
        t = time.perf_counter()
        model_dir = work / "model"
        summary["model"] = build_model(model_dir, args.family, args.size, device, args.dtype)
        data = build_data(work, wl["train_problems"], wl["infer"])
        summary["setup_s"] = round(time.perf_counter() - t, 1)
        log(f"model {summary['model']} and data ready in {summary['setup_s']} s")
    except Exception:
        log("FAIL setup: could not build the model or the data\n" + traceback.format_exc())
        _finish(summary, ok, work, out_dir)
        return 1

    served = model_dir
    if not args.skip_train:
        res: dict[str, Any] = {}
        summary["train"] = res
        log(
            f"(a) GSPO with TRL: {args.steps} steps of {wl['batch']} completions "
            f"({wl['batch'] // wl['n']} prompts x n={wl['n']}), up to {wl['response']} tokens"
        )
        try:
            served = part_train(work, model_dir, data, args, wl, res) or model_dir
            ok["train"] = True
            log(
                f"PASS (a) TRL GSPO: {args.steps} steps in {res['train_s']} s, "
                f"{res['mean_step_s']} s/step (after the first), mean reward "
                f"{res['mean_reward']}, {res['gen_tokens_per_s']} generated tok/s, "
                f"{res.get('tokens_per_s', '?')} processed tok/s"
                + (f", peak GPU {res['peak_gpu_gib']} GiB" if "peak_gpu_gib" in res else "")
            )
        except (Exception, KeyboardInterrupt) as exc:
            res["error"] = f"{type(exc).__name__}: {exc}"
            log("FAIL (a) TRL GSPO: " + res["error"] + "\n" + traceback.format_exc())
            served = model_dir
            if isinstance(exc, KeyboardInterrupt):
                args.skip_serve = True
                summary["serve"] = {"error": "skipped: stopped by a signal"}
    if not args.skip_serve and left(args) < 60:
        summary["serve"] = {"error": f"skipped: {left(args):.0f} s of --budget left"}
        log(f"FAIL (b) serve/infer/eval: skipped, only {left(args):.0f} s of --budget left")
    elif not args.skip_serve:
        res = {}
        summary["serve"] = res
        log(
            f"(b) transformers serve on {device} + deepvision infer ({wl['infer']} problems) "
            f"+ eval synth ({wl['eval']} items), max {wl['max_tokens']} tokens"
        )
        try:
            part_serve(work, served, data, args, wl, res)
            ok["serve"] = True
            inf, ev = res["infer"], res["eval"]
            log(
                f"PASS (b) serve/infer/eval: server up in {res['server_ready_s']} s; infer "
                f"{inf['records']} problems in {inf['seconds']} s, {inf['tokens_per_s']} tok/s "
                f"({inf['completion_tokens']} tokens, {inf['wall_tokens_per_s']} tok/s over the "
                f"whole command); eval synth accuracy {(ev['accuracy'] or {}).get('value')} on "
                f"{ev['items']} items in {ev['seconds']} s (about 0 expected: random weights)"
                + (
                    f"; GPU used {res['gpu_used_gib_while_serving']} GiB"
                    if "gpu_used_gib_while_serving" in res
                    else ""
                )
            )
        except (Exception, KeyboardInterrupt) as exc:
            res["error"] = f"{type(exc).__name__}: {exc}"
            log("FAIL (b) serve/infer/eval: " + res["error"] + "\n" + traceback.format_exc())
    _finish(summary, ok, work, out_dir)
    wanted = [k for k, skip in (("train", args.skip_train), ("serve", args.skip_serve)) if not skip]
    return 0 if all(ok[k] for k in wanted) else 1


def _finish(summary: dict[str, Any], ok: dict[str, bool], work: Path, out_dir: Path | None) -> None:
    summary["pass"] = ok
    summary["total_s"] = round(time.perf_counter() - T0, 1)
    text = json.dumps(summary, indent=1, default=str)
    (work / "gpu_check.json").write_text(text, encoding="utf-8")
    log(f"total {summary['total_s']} s; summary {work / 'gpu_check.json'}")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "gpu_check.json").write_text(text, encoding="utf-8")
        logs = sorted((work / "serve-logs").glob("*.log"))
        if logs:
            shutil.copyfile(logs[0], out_dir / "transformers_serve.log")
        if not (out_dir / "gpu_check.log").exists() and (work / "gpu_check.log").exists():
            shutil.copyfile(work / "gpu_check.log", out_dir / "gpu_check.log")
        for name in ("infer.txt", "eval.txt"):
            if (work / name).exists():
                shutil.copyfile(work / name, out_dir / name)


if __name__ == "__main__":
    sys.exit(main())
