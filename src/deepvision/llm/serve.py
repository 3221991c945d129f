"""Start OpenAI-compatible model servers: vLLM (tensor x data parallel) or `transformers serve`.

Everything that can be checked before a server loads is checked first, in seconds: the model
is a folder holding a model or a hub id, every port is free (a server already on a port must
never be taken for ours), and vLLM instances get GPUs of their own (`0..tp*dp-1` of the GPUs
visible here unless `--gpus` names them; refused when the machine has fewer). Each
data-parallel instance gets its own GPUs (CUDA_VISIBLE_DEVICES), port and log file, binds
127.0.0.1 unless told otherwise, and runs in its own process group so that stopping the group
stops everything it spawned. `ServerGroup` waits for `/v1/models` on every instance, logging
which one is up, the time spent and the log to read while they load, and fails with the log
tail of any instance that dies; `watch()` keeps them under watch while they serve."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deepvision.errors import ServeError
from deepvision.progress import enabled as progress_shown

log = logging.getLogger(__name__)

BACKENDS = ("vllm", "transformers")
_INSTALL_HINT = {
    "vllm": "install vLLM (pip install vllm) on the GPU machine",
    "transformers": "install it with pip install 'transformers[serving]'",
}
# A Hugging Face hub id: exactly one slash, names of letters, digits, `.`, `_` and `-`.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# vLLM flags we pass unless the extra arguments set them (docs/inference.md says why): room
# for the reference evaluation's 32,768-token answers plus the prompt, capped at the model's
# own context; images only, at most 10 a prompt, as the release's launcher sets them.
MAX_MODEL_LEN = 40960
MM_LIMITS = {"image": 10, "video": 0}


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
    twice = sorted({g for g in out if out.count(g) > 1}, key=int)
    if twice:
        raise ServeError(f"--gpus names GPU {', '.join(twice)} more than once")
    return out


def visible_gpus(env: dict[str, str]) -> tuple[list[str] | None, str]:
    """The GPUs servers started from here may use, and where that was read: the entries of
    CUDA_VISIBLE_DEVICES when it is set (a scheduler's allocation), else the indices
    `nvidia-smi` lists. (None, why) when neither can tell."""
    if "CUDA_VISIBLE_DEVICES" in env:
        value = env["CUDA_VISIBLE_DEVICES"]
        ids = [x.strip() for x in value.split(",") if x.strip()]
        if ids and ids[0].startswith("-"):  # "-1": CUDA's way of saying none
            ids = []
        return ids, f"CUDA_VISIBLE_DEVICES={value}"
    try:
        res = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi: {exc}"
    if res.returncode != 0:
        if "no devices" in (res.stdout + res.stderr).lower():
            return [], "nvidia-smi finds no GPU"
        return None, f"nvidia-smi failed: {(res.stderr or res.stdout).strip()[:200]}"
    return [x.strip() for x in res.stdout.splitlines() if x.strip()], "nvidia-smi"


def _gpu_sets(cfg: ServeConfig, env: dict[str, str]) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES of each instance, or None to leave the environment as it is.

    `--gpus` counts within the GPUs visible here (as CUDA numbers them, so under a scheduler's
    CUDA_VISIBLE_DEVICES=4,5 `--gpus 0` is GPU 4). vLLM without `--gpus` takes the first
    tp x dp visible GPUs: instances must never share one. `transformers` without `--gpus`
    runs where the environment says (CPU-only machines included)."""
    need = cfg.tp * cfg.dp
    wanted = parse_gpus(cfg.gpus)
    if not wanted and cfg.backend != "vllm":
        return None
    if wanted and len(wanted) < need:
        raise ServeError(
            f"--tp {cfg.tp} x --dp {cfg.dp} needs {need} GPUs, --gpus gives {len(wanted)}"
        )
    visible, source = visible_gpus(env)
    if visible is None:  # nothing to check against: --gpus as given, else the first ones
        ids = wanted or [str(i) for i in range(need)]
        log.info("cannot count this machine's GPUs (%s): using GPUs %s", source, ",".join(ids))
    elif wanted:
        beyond = [g for g in wanted if int(g) >= len(visible)]
        if beyond:
            raise ServeError(
                f"--gpus {cfg.gpus}: no GPU {', '.join(beyond)} here; this machine has "
                f"{len(visible)} ({source}), numbered from 0"
            )
        ids = [visible[int(g)] for g in wanted]
    elif len(visible) < need:
        raise ServeError(
            f"--tp {cfg.tp} x --dp {cfg.dp} needs {need} GPUs; this machine has "
            f"{len(visible)} ({source})"
        )
    else:
        ids = visible[:need]
    return [",".join(ids[k * cfg.tp : (k + 1) * cfg.tp]) for k in range(cfg.dp)]


def check_model(model: str) -> None:
    """A model is a folder holding a model (its config.json), a model file, or a hub id
    (`org/name`); anything else is a ServeError now rather than a server dying minutes later."""
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file() or (path / "params.json").is_file():
            return
        inside = sorted(str(p.parent) for p in path.glob("*/config.json"))[:3]
        hint = f" (the model may be in {' or '.join(inside)})" if inside else ""
        raise ServeError(f"--model {model}: no config.json in that folder{hint}")
    if path.exists():
        return
    if not _HUB_ID.fullmatch(model):
        raise ServeError(f"--model {model}: no such file or folder, and not a hub id (org/name)")
    org = model.split("/", 1)[0]
    if Path(org).is_dir():
        raise ServeError(
            f"--model {model}: no such folder ({org}/ is a folder here, so this is a path, "
            "not a hub id)"
        )


def _hub_snapshot(model: str, env: dict[str, str]) -> Path | None:
    """The local snapshot folder of a hub id already in the Hugging Face cache (never a
    download), or None."""
    hf_home = env.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    repo = Path(env.get("HF_HUB_CACHE") or os.path.join(hf_home, "hub"))
    repo /= "models--" + model.replace("/", "--")
    try:
        commit = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return repo / "snapshots" / commit


def model_config(model: str, env: dict[str, str]) -> dict | None:
    """The model's config.json, from its folder or the hub cache; None when it is not on this
    machine (yet) or not readable."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        folder = _hub_snapshot(model, env) if _HUB_ID.fullmatch(model) else None
    if folder is None:
        return None
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cfg if isinstance(cfg, dict) else None


def _sets_flag(args: list[str], flag: str) -> bool:
    """Whether vLLM arguments set `flag` (as `--flag v`, `--flag=v`, `--flag.key v`; vLLM
    takes `_` for `-`)."""
    for arg in args:
        name = arg.split("=", 1)[0].replace("_", "-")
        if name == flag or name.startswith(flag + "."):
            return True
    return False


def vllm_defaults(model: str, extra_args: list[str], env: dict[str, str]) -> list[str]:
    """Our vLLM flags for this model, each only where the extra arguments leave it unset:
    `--max-model-len` min(MAX_MODEL_LEN, the model's context) and, for a vision-language model,
    `--limit-mm-per-prompt` MM_LIMITS. Nothing when the model's config is not here to read
    (a hub id not downloaded yet): vLLM's own defaults then."""
    cfg = model_config(model, env)
    if cfg is None:
        log.info("%s: config not on this machine yet; vLLM's own defaults apply", model)
        return []
    out: list[str] = []
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    context = text.get("max_position_embeddings") or cfg.get("max_position_embeddings")
    if not _sets_flag(extra_args, "--max-model-len"):
        length = min(MAX_MODEL_LEN, context) if isinstance(context, int) else MAX_MODEL_LEN
        out += ["--max-model-len", str(length)]
    if "vision_config" in cfg and not _sets_flag(extra_args, "--limit-mm-per-prompt"):
        out += ["--limit-mm-per-prompt", json.dumps(MM_LIMITS)]
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

    @property
    def gpus(self) -> str:
        return self.env.get("CUDA_VISIBLE_DEVICES") or "(as the environment says)"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def last_log_line(self) -> str:
        """The last non-empty line of the log (read from its end; a loading server's log
        can be long), cut to 160 characters."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
                tail = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        lines = [x.strip() for x in tail.splitlines() if x.strip()]
        return lines[-1][:160] if lines else ""


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


def _server_cmd(cfg: ServeConfig, exe: str, port: int, defaults: list[str]) -> list[str]:
    """The command line of one instance."""
    parallel = ["--tensor-parallel-size", str(cfg.tp)] if cfg.backend == "vllm" else []
    where = ["--host", cfg.host, "--port", str(port)]
    return [exe, "serve", cfg.model, *parallel, *where, *defaults, *cfg.extra_args]


def _ensure_hub_cache(env: dict[str, str]) -> None:
    """transformers serve < 5.11 (the range verl 0.9 pins) answers /v1/models by scanning
    the hub cache and fails with 500 while that folder does not exist."""
    hf_home = env.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    os.makedirs(env.get("HF_HUB_CACHE") or os.path.join(hf_home, "hub"), exist_ok=True)


def plan(cfg: ServeConfig) -> list[Instance]:
    """The instances to start, checked: backend, sizes, ports, the model and the GPUs (a
    ServeError before anything runs)."""
    if cfg.backend not in BACKENDS:
        raise ServeError(f"unknown backend {cfg.backend!r}; use one of {', '.join(BACKENDS)}")
    if cfg.tp < 1 or cfg.dp < 1:
        raise ServeError("--tp and --dp must be at least 1")
    if not 1 <= cfg.port <= 65536 - cfg.dp:
        raise ServeError(f"--port {cfg.port}: {cfg.dp} port(s) from there do not fit in 1-65535")
    check_model(cfg.model)
    base_env = dict(os.environ)
    gpu_sets = _gpu_sets(cfg, base_env)
    exe = cfg.executable or _executable(cfg.backend)
    if cfg.backend == "vllm":
        defaults = vllm_defaults(cfg.model, cfg.extra_args, base_env)
    else:
        defaults = []
        _ensure_hub_cache(base_env)
    out = []
    for k in range(cfg.dp):
        port = cfg.port + k
        env = dict(base_env)
        if gpu_sets is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu_sets[k]
        log_path = cfg.log_dir / f"{cfg.backend}-{k}-port{port}.log"
        cmd = _server_cmd(cfg, exe, port, defaults)
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


def _served_models(url: str) -> str:
    """What a server already on a port says it serves (for the message refusing that port)."""
    try:
        with _DIRECT.open(url + "/models", timeout=2.0) as resp:
            data = json.loads(resp.read(1 << 20)).get("data") or []
        names = [str(m.get("id")) for m in data if isinstance(m, dict)]
    except (urllib.error.URLError, OSError, ValueError, AttributeError):
        return ""
    return f"; a server there serves {', '.join(names)}" if names else ""


def port_in_use(host: str, port: int) -> str | None:
    """Why `port` on `host` cannot be bound (something holds it), or None when it is free.
    Binding, not connecting, so a socket bound but not yet listening counts too."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        return f"cannot resolve {host}: {exc}"
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        sock.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        sock.close()
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the server gets SIGTERM when the process that started it dies, even by kill -9."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _status_every() -> float:
    """Seconds between "still loading" lines: 15 on a terminal, 60 in a piped log."""
    return 15.0 if progress_shown() else 60.0


class ServerGroup:
    """`with ServerGroup(cfg) as group: group.urls` — every instance up, stopped on exit.

    The configuration is checked when the group is made (`plan`), the ports when it starts,
    before any process runs. While the servers load, a line says which instance is up and
    after how long, and every `status_every` seconds which are still loading, with the last
    line of each one's log."""

    def __init__(
        self, cfg: ServeConfig, health_timeout: float = 900.0, status_every: float | None = None
    ) -> None:
        self.cfg = cfg
        self.instances = plan(cfg)
        self.health_timeout = health_timeout
        self.status_every = _status_every() if status_every is None else status_every

    @property
    def urls(self) -> list[str]:
        return [i.url for i in self.instances]

    def check_ports(self) -> None:
        """ServeError naming every port of the group that something already holds."""
        taken = []
        for inst in self.instances:
            why = port_in_use(inst.host, inst.port)
            if why is not None:
                taken.append(f"{inst.port} ({why}{_served_models(inst.url)})")
        if taken:
            raise ServeError(
                f"port {', '.join(taken)} on {self.cfg.host} already in use: another server "
                "would answer in place of this model; stop it or choose another --port"
            )

    def start(self) -> ServerGroup:
        self.check_ports()
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for inst in self.instances:
                self._launch(inst)
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, inst: Instance) -> None:
        log.info(
            "%s: starting on GPUs %s, port %d; log %s",
            inst.name,
            inst.gpus,
            inst.port,
            inst.log_path,
        )
        with inst.log_path.open("ab") as out:
            try:
                inst.proc = subprocess.Popen(
                    inst.cmd,
                    env=inst.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except FileNotFoundError:
                hint = _INSTALL_HINT[self.cfg.backend]
                raise ServeError(f"{inst.cmd[0]!r} not found on PATH; {hint}") from None

    def wait_healthy(self) -> None:
        """Until every instance answers `/v1/models`: a ServeError with the log tail of one
        that exits first, or of the first still loading after `health_timeout`."""
        started = time.monotonic()
        next_status = started + self.status_every
        pending = list(self.instances)
        while pending:
            for inst in list(pending):
                self._fail_if_exited(inst, started)
                # ready only if it still runs after answering: never a server of another
                if _answers(inst.url + "/models") and inst.proc and inst.proc.poll() is None:
                    pending.remove(inst)
                    self._log_ready(inst, time.monotonic() - started, len(pending))
            now = time.monotonic()
            if pending and now - started > self.health_timeout:
                names = ", ".join(i.name for i in pending)
                raise ServeError(
                    f"{names} not ready after {self.health_timeout:g} s; log "
                    f"{pending[0].log_path}:\n{pending[0].log_tail()}"
                )
            if pending and now >= next_status:
                self._log_loading(pending, now - started)
                next_status = now + self.status_every
            if pending:
                time.sleep(0.2)

    def _fail_if_exited(self, inst: Instance, started: float) -> None:
        """ServeError with the log tail when the instance's process has ended."""
        code = inst.proc.poll() if inst.proc else None
        if code is not None:
            raise ServeError(
                f"{inst.name} (port {inst.port}) exited with code {code} before it was ready "
                f"({time.monotonic() - started:.0f} s); log {inst.log_path}:\n{inst.log_tail()}"
            )

    def _log_ready(self, inst: Instance, elapsed: float, left: int) -> None:
        up, total = len(self.instances) - left, len(self.instances)
        log.info("%s ready at %s after %.0f s (%d/%d up)", inst.name, inst.url, elapsed, up, total)

    def _log_loading(self, pending: list[Instance], elapsed: float) -> None:
        """One line per instance still loading: time spent, its log and that log's last line
        (which shard vLLM loads, the CUDA graph it captures, ...)."""
        up = len(self.instances) - len(pending)
        for inst in pending:
            log.info(
                "%s loading, %.0f s of %g s (%d/%d up); log %s: %s",
                inst.name,
                elapsed,
                self.health_timeout,
                up,
                len(self.instances),
                inst.log_path,
                inst.last_log_line() or "(empty)",
            )

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
