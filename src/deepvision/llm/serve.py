"""Start OpenAI-compatible model servers: vLLM (tensor x data parallel) or `transformers serve`.

Each data-parallel instance gets its own GPUs (CUDA_VISIBLE_DEVICES), port and log file, binds
127.0.0.1 unless told otherwise, and runs in its own process group so that stopping the group
stops everything it spawned. `ServerGroup` waits for `/v1/models` on every instance and fails
with the log tail of any instance that dies; `watch()` keeps them under watch while they serve."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deepvision.errors import ServeError

BACKENDS = ("vllm", "transformers")
_INSTALL_HINT = {
    "vllm": "install vLLM (pip install vllm) on the GPU machine",
    "transformers": "install it with pip install 'transformers[serving]'",
}


def parse_gpus(spec: str | None) -> list[str]:
    """ "0-3,6" -> ["0", "1", "2", "3", "6"]; None or "" -> []."""
    out: list[str] = []
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            if not (lo.isdigit() and hi.isdigit()) or int(lo) > int(hi):
                raise ServeError(f"bad GPU range {part!r} (use for example 0-7)")
            out += [str(i) for i in range(int(lo), int(hi) + 1)]
        elif part.isdigit():
            out.append(part)
        else:
            raise ServeError(f"bad GPU id {part!r}")
    return out


@dataclass
class Instance:
    name: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    host: str
    log_path: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}/v1"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ServeConfig:
    model: str
    backend: str = "vllm"
    tp: int = 1
    dp: int = 1
    gpus: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    log_dir: Path = Path("runs/serve")
    extra_args: list[str] = field(default_factory=list)
    executable: str | None = None  # default: `vllm` or `transformers` on PATH


def _executable(name: str) -> str:
    """`name` from this interpreter's environment when it is there (a venv that is not
    activated), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def plan(cfg: ServeConfig) -> list[Instance]:
    if cfg.backend not in BACKENDS:
        raise ServeError(f"unknown backend {cfg.backend!r}; use one of {', '.join(BACKENDS)}")
    if cfg.tp < 1 or cfg.dp < 1:
        raise ServeError("--tp and --dp must be at least 1")
    gpus = parse_gpus(cfg.gpus)
    if gpus and len(gpus) < cfg.tp * cfg.dp:
        raise ServeError(
            f"--tp {cfg.tp} x --dp {cfg.dp} needs {cfg.tp * cfg.dp} GPUs, --gpus gives {len(gpus)}"
        )
    exe = cfg.executable or _executable(cfg.backend)
    out = []
    for k in range(cfg.dp):
        port = cfg.port + k
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[k * cfg.tp : (k + 1) * cfg.tp])
        if cfg.backend == "vllm":
            cmd = [
                exe,
                "serve",
                cfg.model,
                "--tensor-parallel-size",
                str(cfg.tp),
                "--host",
                cfg.host,
                "--port",
                str(port),
                *cfg.extra_args,
            ]
        else:
            # transformers serve < 5.11 (the range verl 0.9 pins) answers /v1/models by scanning
            # the hub cache and fails with 500 while that folder does not exist.
            hf_home = env.get("HF_HOME") or os.path.join(
                os.path.expanduser("~"), ".cache", "huggingface"
            )
            os.makedirs(env.get("HF_HUB_CACHE") or os.path.join(hf_home, "hub"), exist_ok=True)
            cmd = [
                exe,
                "serve",
                cfg.model,
                "--host",
                cfg.host,
                "--port",
                str(port),
                *cfg.extra_args,
            ]
        log_path = cfg.log_dir / f"{cfg.backend}-{k}-port{port}.log"
        out.append(Instance(f"{cfg.backend}#{k}", cmd, env, port, cfg.host, log_path))
    return out


# Servers we start are ours, on this machine or its network: no proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str, timeout: float = 2.0) -> bool:
    """Whether GET `url` answers 200 (a health poll; never raises)."""
    try:
        with _DIRECT.open(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the server gets SIGTERM when the process that started it dies, even by kill -9."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ServerGroup:
    """`with ServerGroup(cfg) as group: group.urls` — every instance up, stopped on exit."""

    def __init__(self, cfg: ServeConfig, health_timeout: float = 900.0) -> None:
        self.cfg = cfg
        self.instances = plan(cfg)
        self.health_timeout = health_timeout

    @property
    def urls(self) -> list[str]:
        return [i.url for i in self.instances]

    def start(self) -> ServerGroup:
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for inst in self.instances:
                log = inst.log_path.open("ab")
                try:
                    inst.proc = subprocess.Popen(
                        inst.cmd,
                        env=inst.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                        preexec_fn=_die_with_parent,
                    )
                except FileNotFoundError:
                    hint = _INSTALL_HINT[self.cfg.backend]
                    raise ServeError(f"{inst.cmd[0]!r} not found on PATH; {hint}") from None
                finally:
                    log.close()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.health_timeout
        pending = list(self.instances)
        while pending:
            for inst in list(pending):
                code = inst.proc.poll() if inst.proc else None
                if code is not None:
                    raise ServeError(
                        f"{inst.name} (port {inst.port}) exited with code {code} before it "
                        f"was ready; log {inst.log_path}:\n{inst.log_tail()}"
                    )
                if _answers(inst.url + "/models"):
                    pending.remove(inst)
            if pending and time.monotonic() > deadline:
                names = ", ".join(i.name for i in pending)
                raise ServeError(
                    f"{names} not ready after {self.health_timeout:g} s; log "
                    f"tail of {pending[0].name}:\n{pending[0].log_tail()}"
                )
            if pending:
                time.sleep(0.2)

    def dead(self) -> list[Instance]:
        return [i for i in self.instances if i.proc is not None and i.proc.poll() is not None]

    def watch(self, poll_s: float = 1.0) -> None:
        """Block while every instance runs; ServeError with the log tail of the first that
        exits. (Stop with Ctrl-C; the caller stops the group.)"""
        while True:
            dead = self.dead()
            if dead:
                inst = dead[0]
                raise ServeError(
                    f"{inst.name} exited ({inst.proc.returncode}); log "  # type: ignore[union-attr]
                    f"{inst.log_path}:\n{inst.log_tail()}"
                )
            time.sleep(poll_s)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every instance's process group, then SIGKILL what is left after `grace`."""
        live = [i for i in self.instances if i.proc is not None and i.proc.poll() is None]
        for inst in live:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(inst.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + grace
        for inst in live:
            try:
                inst.proc.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(inst.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                inst.proc.wait()  # type: ignore[union-attr]

    def __enter__(self) -> ServerGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
