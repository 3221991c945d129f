"""`check_verl_start`: what `train verl --dry-run` proves before a cluster is asked, and what it
refuses (naming the key); and that a fresh install of our `verl` extra brings every package
verl's trainer imports at start-up."""

import importlib.metadata as md
import json
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deepvision.errors import ConfigError, TrainError
from deepvision.train.recipe import dump_recipe, recipe_from_dict
from deepvision.train.verl_check import check_verl_start

ROOT = Path(__file__).resolve().parents[2]
# Imported on verl's start-up path without being any installed package's requirement:
# transformers imports torchvision when it is there (vLLM brings the one matching its torch).
OPTIONAL_IMPORTS = {"torchvision"}


def recipe(verl_parquet, **extra):
    raw = {"data": {"train_files": [str(verl_parquet)], "val_files": [str(verl_parquet)]},
           "hardware": {"gpus": 8}, "logger": ["console"]}  # fmt: skip
    raw.update(extra)
    return recipe_from_dict(raw)


def test_a_good_recipe_reads_back_what_verl_will_run(verl_parquet):
    start = check_verl_start(recipe(verl_parquet))
    assert (start.verl_version, start.trainer) == ("0.9.1", "PPOTrainerSync")
    assert start.reward_manager == "NaiveRewardManager"
    assert (start.dynamic_sampling_metric, start.max_inflight_prompts) == ("acc", 512)
    off = check_verl_start(recipe(verl_parquet, algorithm={"dynamic_sampling": {"enable": False}}))
    assert off.max_inflight_prompts is None and "no dynamic sampling" in off.text()


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ({"verl_overrides": {"trainer.not_a_key": 1}}, "verl_overrides", "trainer.not_a_key"),
        ({"verl_overrides": {"trainer.use_v1": False}}, "verl_overrides", "legacy trainer"),
        ({"logger": ["console", "swanlab"]}, "logger[1]", "pip install swanlab"),
        ({"rollout": {"engine": "hf"}}, "rollout.engine", "TRL's transformers generation"),
    ],
)
def test_what_verl_would_refuse_on_the_cluster_is_refused_here(
    verl_parquet, monkeypatch, extra, key, message
):
    monkeypatch.setitem(sys.modules, "swanlab", None)  # not installed on this machine
    with pytest.raises(ConfigError) as info:
        check_verl_start(recipe(verl_parquet, **extra))
    assert info.value.key == key and message in str(info.value)


def test_a_missing_file_is_named_before_anything_starts(verl_parquet, tmp_path):
    r = recipe(verl_parquet, data={"train_files": [str(verl_parquet)],
                                   "val_files": [str(tmp_path / "val.parquet")]})  # fmt: skip
    with pytest.raises(ConfigError, match=r"^data\.val_files: file .*val\.parquet not found"):
        check_verl_start(r)


def test_a_missing_trainer_dependency_says_how_to_install(verl_parquet, monkeypatch):
    monkeypatch.setitem(sys.modules, "transfer_queue", None)
    with pytest.raises(
        TrainError, match=r"importing transfer_queue failed .* 'deepvision\[verl\]'"
    ):
        check_verl_start(recipe(verl_parquet))


def _requirement_closure(requirements: list[str]) -> set[str]:
    """Distribution names `requirements` pull in, followed through installed metadata."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), tuple(sorted(req.extras)))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        for spec in dist.requires or []:
            sub = Requirement(spec)
            extras = list(req.extras) or [""]
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return {name for name, _ in seen}


def _distributions_of(modules: list[str]) -> set[str]:
    """The installed distributions (in site-packages, not vendored inside another package)
    that provide these top-level modules."""
    sites = {Path(p).resolve() for p in site.getsitepackages()}
    owners = md.packages_distributions()
    found = set()
    for module in modules:
        for name in owners.get(module, []):
            if Path(md.distribution(name).locate_file("")).resolve() in sites:
                found.add(canonicalize_name(name))
    return found


@pytest.mark.slow
def test_a_fresh_process_dry_run_starts_and_our_verl_extra_covers_every_import(
    verl_parquet, tmp_path
):
    """A new user's `deepvision train verl RECIPE --dry-run` in a fresh interpreter: it passes,
    and every package it imported is required by `deepvision[verl]` (the trainer imported
    transfer_queue, cachetools, fastapi, ..., which plain verl==0.9.1 does not bring)."""
    path, modules = tmp_path / "recipe.yaml", tmp_path / "modules.json"
    path.write_text(dump_recipe(recipe(verl_parquet)))
    script = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: open(sys.argv[1], 'w').write(json.dumps(sorted("
        "{m.split('.')[0] for m in sys.modules}))))\n"
        "from deepvision.cli.main import main\n"
        "main(sys.argv[2:])\n"
    )
    argv = [sys.executable, "-c", script, str(modules), "train", "verl", str(path), "--dry-run"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "trainer.use_v1=true" in res.stdout and "can start here" in res.stderr
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = _requirement_closure(
        ["deepvision", *project["dependencies"], *project["optional-dependencies"]["verl"]]
    )
    imported = _distributions_of(json.loads(modules.read_text()))
    assert imported - required - OPTIONAL_IMPORTS == set()
