"""Prove on this machine, before a cluster is asked, that verl can start the run a recipe makes.

`check_verl_start` takes every start-up step of `python3 -m verl.trainer.main_ppo` that needs no
GPU: it imports the entry module and the trainer it picks (the V1 trainer imports
`transfer_queue`, which plain `verl==0.9.1` does not bring), composes verl's own Hydra config
with our overrides, runs verl's `validate_config`, builds the V1 trainer object (its replay
buffer checks the dynamic-sampling settings), loads our reward function and the reward manager
the way verl's reward loop does, and checks the data files and logger backends. A failure is a
`TrainError` (the engine is missing) or a `ConfigError` naming the recipe key.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import io
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepvision.errors import ConfigError, TrainError
from deepvision.train.recipe import Recipe
from deepvision.train.verl import VERL_ENTRY_MODULE, verl_overrides

INSTALL_HINT = "install the engine with: pip install 'deepvision[verl]'"
# What verl's Tracking imports for each logger backend we accept.
LOGGER_MODULES = {"wandb": "wandb", "swanlab": "swanlab", "tensorboard": "tensorboard"}


@dataclass(frozen=True)
class VerlStart:
    """What verl will run, as read back from verl itself."""

    verl_version: str
    trainer: str  # the trainer class main_ppo picks
    reward_manager: str  # the reward loop's manager class around our reward function
    dynamic_sampling_metric: str | None
    max_inflight_prompts: int | None  # prompts generating at once under dynamic sampling

    def text(self) -> str:
        sampling = (
            f"dynamic sampling on {self.dynamic_sampling_metric}, at most "
            f"{self.max_inflight_prompts} prompts in flight"
            if self.dynamic_sampling_metric
            else "no dynamic sampling"
        )
        return (
            f"verl {self.verl_version} can start here: {VERL_ENTRY_MODULE} -> {self.trainer}, "
            f"config composed and validated by verl, reward in {self.reward_manager}; {sampling}"
        )


def check_verl_start(recipe: Recipe) -> VerlStart:
    """Every GPU-free start-up step of the run `recipe` makes (see the module docstring)."""
    overrides = verl_overrides(recipe)
    check_train_files(recipe)
    check_logger_backends(recipe)
    with _quiet_verl():
        entry = _import(VERL_ENTRY_MODULE)
        cfg = compose_verl_config(overrides, recipe)
        _verl_says(
            recipe,
            lambda: entry.validate_config(
                config=cfg,
                use_reference_policy=entry.need_reference_policy(cfg),
                use_critic=entry.need_critic(cfg),
            ),
        )
        trainer = _build_trainer(recipe, cfg)
        manager = _reward_manager(recipe, cfg)
    buffer = trainer.replay_buffer
    metric = buffer.filter_groups_metric
    inflight = buffer.max_inflight_gen_batches * buffer.train_batch_size if metric else None
    return VerlStart(
        verl_version=importlib.import_module("verl").__version__,
        trainer=type(trainer).__name__,
        reward_manager=manager,
        dynamic_sampling_metric=metric,
        max_inflight_prompts=inflight,
    )


def check_train_files(recipe: Recipe) -> None:
    """ConfigError naming `data.train_files` or `data.val_files` for a file not on this machine."""
    data = recipe.data
    for key, files in (("data.train_files", data.train_files), ("data.val_files", data.val_files)):
        missing = [p for p in files if "://" not in p and not Path(p).expanduser().exists()]
        if missing:
            raise ConfigError(
                f"file {missing[0]} not found; write it with `deepvision data export --to verl`",
                key=key,
                file=_source(recipe),
            )


def check_logger_backends(recipe: Recipe) -> None:
    """ConfigError naming `logger[i]` for a backend verl would fail to import at start."""
    for i, name in enumerate(recipe.logger):
        module = LOGGER_MODULES.get(name)
        if module and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"{name} is not installed here (verl imports it when the trainer starts): "
                f"pip install {module}",
                key=f"logger[{i}]",
                file=_source(recipe),
            )


def compose_verl_config(overrides: list[str], recipe: Recipe | None = None) -> Any:
    """verl's own `ppo_trainer` config with `overrides`, composed as `main_ppo` composes it
    (struct mode: a key verl does not know fails, named by Hydra)."""
    import verl
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    try:
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            return compose("ppo_trainer", overrides=overrides)
    except ConfigCompositionException as exc:
        cause = f" ({str(exc.__cause__).splitlines()[0]})" if exc.__cause__ else ""
        raise ConfigError(
            f"verl's config refuses an override: {str(exc).splitlines()[0]}{cause}",
            key="verl_overrides",
            file=_source(recipe) if recipe else None,
        ) from None


def _build_trainer(recipe: Recipe, cfg: Any) -> Any:
    """The V1 trainer object `main_ppo` builds first (no workers, no GPU); it checks its replay
    buffer's (dynamic sampling) settings."""
    from omegaconf import OmegaConf

    if not cfg.trainer.use_v1:
        raise ConfigError(
            "trainer.use_v1=false selects verl's deprecated legacy trainer, which has no dynamic "
            "sampling; remove it (recipes run the V1 trainer)",
            key="verl_overrides",
            file=_source(recipe),
        )
    _import("transfer_queue")
    v1 = _import("verl.trainer.ppo.v1")
    trainer_cls = _verl_says(recipe, lambda: v1.get_trainer_cls(cfg.trainer.v1.trainer_mode))
    run_cfg = copy.deepcopy(cfg)  # as TaskRunnerV1.run prepares it
    run_cfg.transfer_queue.enable = True
    OmegaConf.resolve(run_cfg)
    return _verl_says(recipe, lambda: trainer_cls(config=run_cfg))


def _reward_manager(recipe: Recipe, cfg: Any) -> str:
    """Load our reward function and its manager class as verl's reward loop workers do."""
    reward = _import("verl.trainer.ppo.reward")
    try:
        reward.get_custom_reward_fn(cfg)
    except (ImportError, AttributeError, AssertionError) as exc:
        raise ConfigError(
            f"verl cannot load the reward function: {exc}",
            key="reward.function",
            file=_source(recipe),
        ) from None
    try:
        return reward.resolve_reward_manager_cls(cfg).__name__
    except ValueError as exc:
        raise ConfigError(str(exc), key="reward.manager", file=_source(recipe)) from None


def _verl_says(recipe: Recipe, check: Any) -> Any:
    """Run one of verl's own checks; its refusal becomes a ConfigError naming the recipe."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return check()
    except (AssertionError, ValueError, OmegaConfBaseException) as exc:
        raise ConfigError(f"verl refuses the configuration: {exc}", file=_source(recipe)) from None


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TrainError(
            f"verl cannot start on this machine: importing {module} failed ({exc}); " + INSTALL_HINT
        ) from None


@contextlib.contextmanager
def _quiet_verl() -> Iterator[None]:
    """verl prints and warns while it imports and validates (engines a CPU machine lacks, checks
    that passed): keep that off the caller's stdout, which carries the command."""
    previous = logging.root.manager.disable
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def _source(recipe: Recipe) -> str | None:
    return str(recipe.source) if recipe.source else None
