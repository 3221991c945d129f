"""`deepvision serve` / ServerGroup with a fake `vllm` (and `nvidia-smi`) on PATH: the command
lines, GPUs and flags each instance gets, everything refused before a server starts (a port in
use, a model that is nowhere, too few GPUs), the progress lines while servers load, clean
shutdown."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import free_ports
from deepvision.llm.fake_server import FakeServer
from deepvision.llm.serve import (
    MAX_MODEL_LEN,
    ServeConfig,
    ServeError,
    ServerGroup,
    parse_gpus,
    plan,
)

FAKE = """#!{python}
import json, os, sys, time
with open(os.environ["FAKE_VLLM_LOG"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
                        "pid": os.getpid()}}) + "\\n")
port = sys.argv[sys.argv.index("--port") + 1]
if os.environ.get("FAKE_VLLM_DIE_PORT") == port:
    print("CUDA out of memory: tried to allocate 20 GiB", flush=True)
    sys.exit(3)
print("Loading safetensors checkpoint shards: 1/4", flush=True)
time.sleep(float(os.environ.get("FAKE_VLLM_DELAY", "0")))
from deepvision.cli.fake_server import main
main(sys.argv[1:])
"""


@pytest.fixture(autouse=True)
def eight_gpus(monkeypatch):
    """A pretend 8-GPU machine (as a scheduler's CUDA_VISIBLE_DEVICES says), whatever this one
    has; tests of other machines change it."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7")


@pytest.fixture
def bindir(tmp_path, monkeypatch):
    """A folder first on PATH for fake executables."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", f"{path}{os.pathsep}{os.environ['PATH']}")
    return path


@pytest.fixture
def fake_vllm(bindir, tmp_path, monkeypatch):
    exe = bindir / "vllm"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "vllm-calls.jsonl"
    monkeypatch.setenv("FAKE_VLLM_LOG", str(log))
    return log


def _fake_nvidia_smi(bindir: Path, gpus: int) -> None:
    exe = bindir / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + "".join(f"echo {i}\n" for i in range(gpus)))
    exe.chmod(0o755)


def _model_dir(path: Path, **config) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


VLM = {
    "architectures": ["Qwen3VLForConditionalGeneration"],
    "text_config": {"max_position_embeddings": 262144},
    "vision_config": {"depth": 27},
}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _flag(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def test_gpu_specs_and_instance_plan(tmp_path):
    assert parse_gpus("0-3,6") == ["0", "1", "2", "3", "6"]
    with pytest.raises(ServeError, match="bad GPU range"):
        parse_gpus("3-1")
    with pytest.raises(ServeError, match="GPU 1 more than once"):
        parse_gpus("0-1,1")
    insts = plan(ServeConfig("org/m", tp=2, dp=2, gpus="0-3", port=9000, log_dir=tmp_path))
    assert [i.env["CUDA_VISIBLE_DEVICES"] for i in insts] == ["0,1", "2,3"]
    assert [i.port for i in insts] == [9000, 9001]
    assert Path(insts[0].cmd[0]).name == "vllm" and insts[0].cmd[1:3] == ["serve", "org/m"]
    assert _flag(insts[0].cmd, "--tensor-parallel-size") == "2"
    assert _flag(insts[0].cmd, "--host") == "127.0.0.1"
    with pytest.raises(ServeError, match="needs 8 GPUs"):
        plan(ServeConfig("org/m", tp=4, dp=2, gpus="0-3"))


def test_dp_without_gpus_gives_every_instance_gpus_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")  # a scheduler's allocation
    insts = plan(ServeConfig("org/m", tp=2, dp=2, log_dir=tmp_path))
    assert [i.env["CUDA_VISIBLE_DEVICES"] for i in insts] == ["4,5", "6,7"]
    insts = plan(ServeConfig("org/m", tp=1, dp=3, log_dir=tmp_path))
    assert [i.env["CUDA_VISIBLE_DEVICES"] for i in insts] == ["4", "5", "6"]
    # --gpus counts within what is visible: never a GPU outside the allocation
    insts = plan(ServeConfig("org/m", dp=2, gpus="1-2", log_dir=tmp_path))
    assert [i.env["CUDA_VISIBLE_DEVICES"] for i in insts] == ["5", "6"]
    with pytest.raises(ServeError, match=r"no GPU 4, 5 here; this machine has 4"):
        plan(ServeConfig("org/m", dp=6, gpus="0-5", log_dir=tmp_path))


def test_too_few_gpus_is_refused_naming_how_many_there_are(tmp_path, monkeypatch, bindir):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(ServeError, match=r"--dp 2 needs 2 GPUs; this machine has 1 \(CUDA_VIS"):
        plan(ServeConfig("org/m", dp=2, log_dir=tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    _fake_nvidia_smi(bindir, 2)
    with pytest.raises(ServeError, match=r"needs 4 GPUs; this machine has 2 \(nvidia-smi\)"):
        plan(ServeConfig("org/m", tp=2, dp=2, log_dir=tmp_path))
    insts = plan(ServeConfig("org/m", dp=2, log_dir=tmp_path))
    assert [i.env["CUDA_VISIBLE_DEVICES"] for i in insts] == ["0", "1"]


def test_transformers_on_cpu_keeps_the_environment_as_it_is(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: a CPU-only machine
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    model = _model_dir(tmp_path / "tiny", architectures=["Qwen2_5_VLForConditionalGeneration"])
    cfg = ServeConfig(str(model), backend="transformers", dp=2, log_dir=tmp_path / "l")
    insts = plan(cfg)
    assert all("CUDA_VISIBLE_DEVICES" not in i.env for i in insts)
    assert all("--limit-mm-per-prompt" not in i.cmd for i in insts)  # vLLM flags only


def test_vllm_gets_the_release_flags_unless_told_otherwise(tmp_path, monkeypatch):
    vlm = _model_dir(tmp_path / "vlm", **VLM)
    cmd = plan(ServeConfig(str(vlm), log_dir=tmp_path))[0].cmd
    assert _flag(cmd, "--max-model-len") == str(MAX_MODEL_LEN) == "40960"
    assert json.loads(_flag(cmd, "--limit-mm-per-prompt")) == {"image": 10, "video": 0}
    # never beyond the model's own context; no image limit for a text-only model
    short = _model_dir(tmp_path / "short", max_position_embeddings=8192)
    cmd = plan(ServeConfig(str(short), log_dir=tmp_path))[0].cmd
    assert _flag(cmd, "--max-model-len") == "8192" and "--limit-mm-per-prompt" not in cmd
    # the user's own flags win, whatever their spelling, and appear once
    extra = ["--max_model_len=16384", "--limit-mm-per-prompt.image", "4"]
    cmd = plan(ServeConfig(str(vlm), log_dir=tmp_path, extra_args=extra))[0].cmd
    assert "--max-model-len" not in cmd and "--limit-mm-per-prompt" not in cmd
    assert cmd[-3:] == extra
    # a hub id: from the hub cache when it is there, vLLM's own defaults when not
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cmd = plan(ServeConfig("Qwen/Qwen3-VL-8B-Instruct", log_dir=tmp_path))[0].cmd
    assert "--max-model-len" not in cmd and "--limit-mm-per-prompt" not in cmd
    repo = tmp_path / "hub" / "models--Qwen--Qwen3-VL-8B-Instruct"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    _model_dir(repo / "snapshots" / "abc123", **VLM)
    cmd = plan(ServeConfig("Qwen/Qwen3-VL-8B-Instruct", log_dir=tmp_path))[0].cmd
    assert _flag(cmd, "--max-model-len") == "40960" and "--limit-mm-per-prompt" in cmd


def test_a_model_that_is_nowhere_is_refused_at_once(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ServeError, match="no such file or folder, and not a hub id"):
        plan(ServeConfig("./checkpoints/step-200"))
    with pytest.raises(ServeError, match="not a hub id"):
        plan(ServeConfig("Qwen3-VL-8B-Instruct"))  # a folder name with a typo, say
    (tmp_path / "models").mkdir()
    with pytest.raises(ServeError, match="models/ is a folder here, so this is a path"):
        plan(ServeConfig("models/qwen3-vl"))
    _model_dir(tmp_path / "ckpt" / "huggingface", **VLM)
    with pytest.raises(ServeError, match=r"no config.json in that folder \(the model may be in"):
        plan(ServeConfig("ckpt"))
    assert plan(ServeConfig("ckpt/huggingface", log_dir=tmp_path))[0].cmd[2] == "ckpt/huggingface"
    assert plan(ServeConfig("OpenGVLab/InternVL3-8B", log_dir=tmp_path))  # a hub id

    began = time.monotonic()
    res = cli("serve", "--model", "./checkpoints/step-200", "--log-dir", tmp_path / "logs")
    assert res.code == 2 and "--model ./checkpoints/step-200: no such file" in res.err
    assert time.monotonic() - began < 30 and not (tmp_path / "logs").exists()


def test_a_port_in_use_is_refused_before_anything_starts(fake_vllm, tmp_path):
    port = free_ports(2)
    holder = socket.socket()
    holder.bind(("127.0.0.1", port + 1))  # bound, not even listening yet
    try:
        group = ServerGroup(ServeConfig("org/m", dp=2, port=port, log_dir=tmp_path / "logs"))
        with pytest.raises(ServeError, match=rf"port {port + 1} \(.*\) on 127.0.0.1 already in"):
            group.start()
    finally:
        holder.close()
    assert not fake_vllm.exists() and not (tmp_path / "logs").exists()  # nothing started


def test_eval_run_and_infer_never_score_another_models_server(fake_vllm, tmp_path, cli):
    """Issue 15 item 10: a server already on the port is refused, never taken for ours."""
    model = _model_dir(tmp_path / "my-model", **VLM)
    other = FakeServer(port=free_ports(), models=["other/model"]).start()
    try:
        port = str(other.port)
        res = cli("eval", "run", "--model", model, "--port", port, "--out", tmp_path / "run")
        assert res.code == 2, res.err
        assert f"port {port}" in res.err and "serves other/model" in res.err
        assert not (tmp_path / "run" / "results.json").exists()
        out = tmp_path / "out.jsonl"
        res = cli("infer", "--model", model, "--port", port, "--out", out)
        assert res.code == 2 and "already in use" in res.err and not out.exists()
        assert other.stats.requests == 0
    finally:
        other.stop()
    assert not fake_vllm.exists()


def test_loading_servers_report_progress(fake_vllm, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FAKE_VLLM_DELAY", "1.0")
    port = free_ports(2)
    cfg = ServeConfig("org/m", dp=2, port=port, log_dir=tmp_path / "logs")
    caplog.set_level(logging.INFO, logger="deepvision.llm.serve")
    with ServerGroup(cfg, health_timeout=30, status_every=0.3):
        pass
    lines = [r.getMessage() for r in caplog.records]
    log0 = tmp_path / "logs" / f"vllm-0-port{port}.log"
    assert f"vllm#0: starting on GPUs 0, port {port}; log {log0}" in lines
    assert any(x.startswith(f"vllm#1: starting on GPUs 1, port {port + 1}") for x in lines)
    loading = [x for x in lines if " loading, " in x]
    assert loading and f"log {log0}: Loading safetensors checkpoint shards: 1/4" in "\n".join(
        loading
    )
    ready = [x for x in lines if " ready at " in x]
    assert len(ready) == 2 and ready[-1].endswith("(2/2 up)")
    assert all(" after " in x for x in ready)


def test_serve_command_starts_reports_and_stops_on_sigterm(fake_vllm, tmp_path):
    port = free_ports(2)
    logs = tmp_path / "logs"
    cmd = [sys.executable, "-m", "deepvision.cli.main", "serve", "--model", "org/m"]
    cmd += ["--dp", "2", "--port", str(port), "--log-dir", str(logs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = proc.stdout.readline()
        assert ready.startswith("ready: --endpoint http://127.0.0.1:"), proc.stderr.read()
        pids = [json.loads(x)["pid"] for x in fake_vllm.read_text().splitlines()]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "vllm#0: starting on GPUs 0" in err and "vllm#1: starting on GPUs 1" in err
    assert "vllm#1 ready at" in err or "vllm#0 ready at" in err
    assert [c["gpus"] for c in map(json.loads, fake_vllm.read_text().splitlines())] == ["0", "1"]
    time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def test_group_starts_waits_logs_and_stops_without_orphans(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_DELAY", "0.5")
    port = free_ports(2)
    cfg = ServeConfig(
        "org/tiny-model",
        tp=1,
        dp=2,
        gpus="0-1",
        port=port,
        log_dir=tmp_path / "logs",
        extra_args=["--max-model-len", "4096"],
    )
    with ServerGroup(cfg, health_timeout=30) as group:
        import httpx

        for url in group.urls:
            assert httpx.get(url + "/models").status_code == 200
        calls = [json.loads(x) for x in fake_vllm.read_text().splitlines()]
        assert sorted(c["gpus"] for c in calls) == ["0", "1"]
        assert (
            calls[0]["argv"][:2] == ["serve", "org/tiny-model"]
            and "--max-model-len" in calls[0]["argv"]
        )
        pids = [c["pid"] for c in calls]
        assert all(_alive(p) for p in pids)
        assert len(list((tmp_path / "logs").glob("vllm-*.log"))) == 2
    time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def test_a_dying_instance_fails_with_its_log_tail(fake_vllm, tmp_path, monkeypatch):
    port = free_ports(2)
    monkeypatch.setenv("FAKE_VLLM_DIE_PORT", str(port + 1))
    cfg = ServeConfig("org/m", dp=2, port=port, log_dir=tmp_path / "logs")
    group = ServerGroup(cfg, health_timeout=30)
    with pytest.raises(ServeError, match=r"vllm#1 .* exited with code 3") as err:
        group.start()
    assert "CUDA out of memory" in str(err.value)
    survivor = json.loads(fake_vllm.read_text().splitlines()[0])["pid"]
    time.sleep(0.2)
    assert not _alive(survivor)  # the healthy one was stopped too


def test_watch_returns_the_log_tail_of_an_instance_that_dies(fake_vllm, tmp_path):
    cfg = ServeConfig("org/m", dp=2, port=free_ports(2), log_dir=tmp_path / "logs")
    with ServerGroup(cfg, health_timeout=30) as group:
        group.instances[1].proc.send_signal(signal.SIGKILL)
        with pytest.raises(ServeError, match=r"vllm#1 exited \(-9\); log .*vllm-1-port"):
            group.watch(poll_s=0.05)


def test_missing_executable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    cfg = ServeConfig("org/m", port=free_ports(), log_dir=tmp_path / "logs")
    with pytest.raises(ServeError, match="not found on PATH"):
        ServerGroup(cfg).start()


PARENT = """
import sys, time
from pathlib import Path
from deepvision.llm.serve import ServeConfig, ServerGroup
cfg = ServeConfig("org/m", port=int(sys.argv[1]), log_dir=Path(sys.argv[2]))
g = ServerGroup(cfg, health_timeout=30)
g.start()
print("up", flush=True)
time.sleep(60)
"""


def test_servers_die_with_a_killed_parent(fake_vllm, tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(free_ports(2)), str(tmp_path / "l")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout.readline().strip() == "up"
    pid = json.loads(fake_vllm.read_text().splitlines()[0])["pid"]
    assert _alive(pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
