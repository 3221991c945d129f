"""`deepvision infer`: problems (any data-layer input, or inference JSONL) -> model outputs.

Composes the data readers with the llm client; the logic lives in deepvision.llm."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import typer

from deepvision.cli.common import console, info, inputs_or_sample, start_servers
from deepvision.data.prompts import DEFAULT_SYSTEM_PROMPT, build_messages
from deepvision.data.reader import iter_problem_batches, open_sources
from deepvision.errors import DataError, UsageError
from deepvision.llm.client import InferConfig, Request, infer, summary_dict
from deepvision.llm.messages import problem_image_sources, sniff_mime
from deepvision.llm.presets import PRESETS, sampling_params
from deepvision.llm.serve import BACKENDS, ServeConfig, ServeError, ServerGroup
from deepvision.progress import progress_bar


def _file_source(path: Path):
    def load():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read image {path}: {exc.strerror}") from None
        return data, sniff_mime(data)

    return load


def _uri_source(uri: str):
    def load():
        head, _, b64 = uri.partition(",")
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("image data URI is not valid base64") from None
        return data, head[5:].split(";")[0] or sniff_mime(data)

    return load


def _problem_requests(paths: list[Path], system_prompt: str | None) -> Iterator[Request]:
    keep = ("question", "answer", "equivalent_answers", "options", "data_source", "topic")
    for batch in iter_problem_batches(open_sources(paths)):
        for rej in batch.rejects:
            info(f"  [yellow]skipped unreadable row[/] {rej.describe()}")
        for p in batch.problems:
            fields = {k: getattr(p, k) for k in keep}
            msgs = build_messages(p, system_prompt)
            yield Request(p.id, fields, msgs, problem_image_sources(p))


def _jsonl_requests(path: Path, system_prompt: str | None) -> Iterator[Request]:
    with path.open("rb") as fh:
        for no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise DataError("line is not JSON", file=str(path), row=no) from None
            if not isinstance(obj, dict) or "messages" not in obj or "id" not in obj:
                raise DataError("line needs 'id' and 'messages'", file=str(path), row=no)
            sources = []
            for ref in obj.get("images") or []:
                if isinstance(ref, str) and ref.startswith("data:"):
                    sources.append(_uri_source(ref))
                else:
                    sources.append(_file_source(path.parent / str(ref)))
            msgs = list(obj["messages"])
            if system_prompt is not None and not any(m.get("role") == "system" for m in msgs):
                msgs.insert(0, {"role": "system", "content": system_prompt})
            fields = {k: v for k, v in obj.items() if k not in ("messages", "images")}
            if not any(
                isinstance(r, str) and r.startswith("data:") for r in obj.get("images") or []
            ):
                fields["images"] = obj.get("images")
            yield Request(str(obj["id"]), fields, msgs, sources)


def infer_cmd(
    files: list[Path] = typer.Argument(
        None, help="Problems (parquet, folder, JSONL) or inference JSONL."
    ),
    out: Path = typer.Option(..., "--out", help="Output JSONL (appended; re-run to resume)."),
    endpoint: list[str] = typer.Option(
        None, "--endpoint", help="OpenAI-compatible base URL (…/v1); repeatable."
    ),
    model: str = typer.Option(..., "--model", help="Model name the servers serve."),
    preset: str = typer.Option(
        "greedy", "--preset", help=f"Sampling preset: {', '.join(PRESETS)}."
    ),
    temperature: float = typer.Option(None, "--temperature"),
    top_p: float = typer.Option(None, "--top-p"),
    top_k: int = typer.Option(None, "--top-k"),
    presence_penalty: float = typer.Option(None, "--presence-penalty"),
    max_tokens: int = typer.Option(None, "--max-tokens"),
    n: int = typer.Option(1, "--n", help="Samples per problem."),
    concurrency: int = typer.Option(32, "--concurrency", help="Requests in flight per endpoint."),
    max_attempts: int = typer.Option(4, "--max-attempts", help="Tries per request."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds per request."),
    system_prompt: str = typer.Option(None, "--system-prompt", help="System prompt text."),
    system_prompt_file: Path = typer.Option(None, "--system-prompt-file"),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env"),
    backend: str = typer.Option(
        "vllm",
        "--backend",
        help="Without --endpoint: start vllm or transformers servers for --model.",
    ),
    tp: int = typer.Option(1, "--tp", help="Without --endpoint: tensor-parallel GPUs per server."),
    dp: int = typer.Option(1, "--dp", help="Without --endpoint: number of servers."),
    gpus: str = typer.Option(None, "--gpus", help="Without --endpoint: GPUs to use, e.g. 0-7."),
    port: int = typer.Option(8000, "--port", help="Without --endpoint: first server port."),
) -> None:
    """Generate model responses for problems, resumably (exactly one line per problem).

    Example: deepvision infer math-77k.parquet --endpoint http://127.0.0.1:8000/v1
    --model Qwen3-VL-8B-Instruct --preset qwen-instruct --max-tokens 16384 --out runs/out.jsonl
    """
    if n < 1:
        raise UsageError("--n must be at least 1")
    try:
        params = sampling_params(
            preset,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            presence_penalty=presence_penalty,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    prompt = DEFAULT_SYSTEM_PROMPT
    if system_prompt is not None:
        prompt = system_prompt
    elif system_prompt_file is not None:
        prompt = system_prompt_file.read_text(encoding="utf-8").strip()
    paths = inputs_or_sample(files)
    if len(paths) == 1 and paths[0].suffix == ".jsonl" and _is_inference_jsonl(paths[0]):
        requests = _jsonl_requests(
            paths[0], prompt if system_prompt or system_prompt_file else None
        )
    else:
        requests = _problem_requests(paths, prompt)
    cfg = InferConfig(
        endpoints=list(endpoint or []),
        model=model,
        concurrency=concurrency,
        n=n,
        sampling=params,
        max_tokens=max_tokens,
        timeout=timeout,
        max_attempts=max_attempts,
        api_key=os.environ.get(api_key_env),
    )
    group = None
    if not endpoint:
        group = start_servers(model, backend, tp, dp, gpus, port, out.parent / "serve-logs")
        cfg.endpoints = group.urls
    try:
        with progress_bar("infer", None) as bar:
            s = asyncio.run(infer(requests, out, cfg, progress=bar.advance))
    finally:
        if group is not None:
            group.stop()
    d = summary_dict(s)
    console.print(
        f"done {s.done}, failed {s.failed}, skipped (already done) {s.skipped}, duplicate ids "
        f"{s.duplicates}; {d['requests_per_s']} requests/s, {d['tokens_per_s']} tokens/s, "
        f"{s.wall_s:.1f} s"
        + (f"; first request after {s.first_request_s:.2f} s" if s.first_request_s else "")
    )
    if s.duplicates:
        info(f"  [yellow]duplicate ids sent once[/]: {', '.join(s.duplicate_examples)}")
    if s.failed:
        errors = out.with_name(out.stem + ".errors.jsonl")
        info(f"  [yellow]{s.failed} failed[/]: reasons in {errors}")
        raise typer.Exit(1)


def _is_inference_jsonl(path: Path) -> bool:
    with path.open("rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    obj = json.loads(raw)
                except ValueError:
                    return False
                return isinstance(obj, dict) and "messages" in obj
    return False


def serve_cmd(
    model: str = typer.Option(..., "--model", help="Model folder or hub id (served as its name)."),
    backend: str = typer.Option("vllm", "--backend", help=f"{' | '.join(BACKENDS)}"),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel GPUs per instance."),
    dp: int = typer.Option(1, "--dp", help="Data-parallel instances (one port each)."),
    gpus: str = typer.Option(None, "--gpus", help="GPUs to spread over, e.g. 0-7."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (0.0.0.0 to expose)."),
    port: int = typer.Option(8000, "--port", help="First port; instance k listens on port + k."),
    log_dir: Path = typer.Option(
        Path("runs/serve"), "--log-dir", help="One log file per instance."
    ),
    health_timeout: float = typer.Option(
        900.0, "--health-timeout", help="Seconds to wait for /v1/models."
    ),
    extra: list[str] = typer.Argument(None, help="Extra server arguments, after --."),
) -> None:
    """Start model servers and keep them up until Ctrl-C; all are stopped on exit.

    Example: deepvision serve --model Qwen/Qwen3-VL-8B-Instruct --tp 2 --dp 4 --gpus 0-7
    -- --max-model-len 40960
    """
    cfg = ServeConfig(model, backend, tp, dp, gpus, host, port, log_dir, list(extra or []))

    def on_term(signum, frame):  # `kill` stops the servers like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        group = ServerGroup(cfg, health_timeout=health_timeout).start()
    except ServeError as exc:
        raise UsageError(str(exc)) from None
    try:
        console.print("ready: " + " ".join(f"--endpoint {u}" for u in group.urls))
        while True:
            dead = group.dead()
            if dead:
                inst = dead[0]
                raise DataError(
                    f"{inst.name} exited ({inst.proc.returncode}); log "
                    f"{inst.log_path}:\n{inst.log_tail()}"
                )
            time.sleep(1.0)
    except KeyboardInterrupt:
        info("stopping servers")
    finally:
        group.stop()
