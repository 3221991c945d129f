"""The curation stages are listed once: the registry, the package's exports, the CLI commands
and the pipeline's stage names all agree."""

from __future__ import annotations

import dataclasses

import pytest
import typer

import deepvision.curate as curate
from deepvision.cli.curate import app
from deepvision.errors import UsageError


def test_all_six_stages_are_exported_and_registered_in_pipeline_order():
    from deepvision.curate import (
        AnnotateStage,
        CorrectnessStage,
        DecontamStage,
        DedupStage,
        DifficultyStage,
        ValidityStage,
    )

    classes = [
        ValidityStage,
        DifficultyStage,
        CorrectnessStage,
        DedupStage,
        DecontamStage,
        AnnotateStage,
    ]
    assert list(curate.STAGES.values()) == classes
    assert tuple(c.name for c in classes) == curate.STAGE_NAMES
    assert all(c.__name__ in curate.__all__ and issubclass(c, curate.Stage) for c in classes)
    assert curate.get_stage("dedup") is DedupStage
    with pytest.raises(UsageError, match="unknown stage 'dedupe'; known: validity, "):
        curate.get_stage("dedupe")


def test_stage_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        curate.Stage()


def test_every_registered_stage_has_a_command():
    commands = typer.main.get_command(app).commands
    assert set(curate.STAGE_NAMES) <= set(commands)
    assert set(commands) - set(curate.STAGE_NAMES) == {"run", "ingest"}
    assert ", ".join(curate.STAGE_NAMES) in commands["run"].help


def test_stage_options_are_their_keyword_arguments():
    fields = {f.name for f in dataclasses.fields(curate.DecontamStage.options())}
    assert fields == {"benchmarks", "data_dir", "ngram", "text_threshold", "image_distance"}
