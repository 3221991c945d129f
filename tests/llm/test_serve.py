"""`deepvision serve` / ServerGroup with a fake `vllm` executable on PATH."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from conftest import free_ports
from deepvision.llm.serve import ServeConfig, ServeError, ServerGroup, parse_gpus, plan

FAKE = """#!{python}
import json, os, sys, time
with open(os.environ["FAKE_VLLM_LOG"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
                        "pid": os.getpid()}}) + "\\n")
port = sys.argv[sys.argv.index("--port") + 1]
if os.environ.get("FAKE_VLLM_DIE_PORT") == port:
    print("CUDA out of memory: tried to allocate 20 GiB", flush=True)
    sys.exit(3)
time.sleep(float(os.environ.get("FAKE_VLLM_DELAY", "0")))
from deepvision.cli.fake_server import main
main(sys.argv[1:])
"""


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "vllm"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "vllm-calls.jsonl"
    monkeypatch.setenv("FAKE_VLLM_LOG", str(log))
    return log


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_gpu_specs_and_instance_plan(tmp_path):
    assert parse_gpus("0-3,6") == ["0", "1", "2", "3", "6"]
    with pytest.raises(ServeError, match="bad GPU range"):
        parse_gpus("3-1")
    insts = plan(ServeConfig("m", tp=2, dp=2, gpus="0-3", port=9000, log_dir=tmp_path))
    assert [i.env["CUDA_VISIBLE_DEVICES"] for i in insts] == ["0,1", "2,3"]
    assert [i.port for i in insts] == [9000, 9001]
    assert Path(insts[0].cmd[0]).name == "vllm" and insts[0].cmd[1:3] == ["serve", "m"]
    assert "--tensor-parallel-size" in insts[0].cmd
    assert insts[0].cmd[insts[0].cmd.index("--host") + 1] == "127.0.0.1"
    with pytest.raises(ServeError, match="needs 8 GPUs"):
        plan(ServeConfig("m", tp=4, dp=2, gpus="0-3"))


def test_group_starts_waits_logs_and_stops_without_orphans(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_DELAY", "0.5")
    port = free_ports(2)
    cfg = ServeConfig(
        "tiny-model",
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
            calls[0]["argv"][:2] == ["serve", "tiny-model"]
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
    cfg = ServeConfig("m", dp=2, port=port, log_dir=tmp_path / "logs")
    group = ServerGroup(cfg, health_timeout=30)
    with pytest.raises(ServeError, match=r"vllm#1 .* exited with code 3") as err:
        group.start()
    assert "CUDA out of memory" in str(err.value)
    survivor = json.loads(fake_vllm.read_text().splitlines()[0])["pid"]
    time.sleep(0.2)
    assert not _alive(survivor)  # the healthy one was stopped too


def test_watch_returns_the_log_tail_of_an_instance_that_dies(fake_vllm, tmp_path):
    import signal

    cfg = ServeConfig("m", dp=2, port=free_ports(2), log_dir=tmp_path / "logs")
    with ServerGroup(cfg, health_timeout=30) as group:
        group.instances[1].proc.send_signal(signal.SIGKILL)
        with pytest.raises(ServeError, match=r"vllm#1 exited \(-9\); log .*vllm-1-port"):
            group.watch(poll_s=0.05)


def test_missing_executable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServeError, match="not found on PATH"):
        ServerGroup(ServeConfig("m", log_dir=tmp_path / "logs")).start()


PARENT = """
import sys, time
from pathlib import Path
from deepvision.llm.serve import ServeConfig, ServerGroup
cfg = ServeConfig("m", port=int(sys.argv[1]), log_dir=Path(sys.argv[2]))
g = ServerGroup(cfg, health_timeout=30)
g.start()
print("up", flush=True)
time.sleep(60)
"""


def test_servers_die_with_a_killed_parent(fake_vllm, tmp_path):
    import signal
    import subprocess

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
