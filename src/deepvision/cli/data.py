"""`deepvision data ...`: validate, describe, select, export and synthesize Problems."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import typer
from rich.table import Table

from deepvision.cli.common import (
    AllowAbsolutePathsOpt,
    NoSystemPromptOpt,
    SystemPromptFileOpt,
    SystemPromptOpt,
    console,
    info,
    inputs_or_sample,
    split_list,
    system_prompt_from,
)
from deepvision.data import export as export_mod
from deepvision.data import select, stats
from deepvision.data import validate as validate_mod
from deepvision.data.sources import DEFAULT_BATCH_SIZE
from deepvision.data.writer import (
    full_disk_is_an_error,
    prepare_output,
    refuse_inputs_as_outputs,
)
from deepvision.errors import UsageError

app = typer.Typer(
    help=(
        "Read, check, describe, select and export Problems. Inputs: DeepVision-103K parquet, "
        "a folder of parquet shards, a `datasets` save_to_disk folder, or JSONL. With no "
        "input, commands use the embedded sample."
    ),
    no_args_is_help=True,
)

FILES = typer.Argument(None, help="Input files or folders (default: the embedded sample).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace existing outputs.")
REJECTS = typer.Option(None, "--rejects", help="Write unreadable rows and reasons here (JSONL).")
BATCH = typer.Option(DEFAULT_BATCH_SIZE, "--batch-size", help="Rows per batch (bounds memory).")
WORKERS = typer.Option(0, "--workers", help="Processes for parquet inputs (0: all cores).")
FAST_IMAGES = typer.Option(
    False, "--fast-images", help="Check image structure/checksums only, no full decode."
)
_FORMAT_ITEMS = list(export_mod.FORMATS.items())
_TO_HELP = " | ".join(export_mod.FORMATS)
_BY_SUFFIX: dict[str, list[str]] = {}
for _name, _fmt in _FORMAT_ITEMS:
    _BY_SUFFIX.setdefault(_fmt.suffix, []).append(_name)
_OUT_HELP = "Output file: " + "; ".join(f"{k} for {', '.join(v)}" for k, v in _BY_SUFFIX.items())


def _command(name: str) -> Callable[[Callable], Callable]:
    """Register a data command; a full disk while it writes is a one-line error."""

    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with full_disk_is_an_error():
                return fn(*args, **kwargs)

        return app.command(name)(run)

    return register


def _outputs(inputs: list[Path], overwrite: bool, **outputs: Path | None) -> None:
    """Check the outputs (named by their parameter) before any work: none is an input, lies
    in an input folder or holds an input; none exists unless `overwrite`."""
    refuse_inputs_as_outputs(inputs, outputs)
    for p in outputs.values():
        if p is not None:
            prepare_output(p, overwrite)


def _accounting(rows_in: int, parts: list[tuple[str, int]], rejected: int, examples: list[str]):
    detail = " + ".join(f"{n} {name}" for name, n in parts)
    info(f"rows in: {rows_in} = {detail} + {rejected} rejected")
    for line in examples[:10]:
        info(f"  [yellow]rejected[/] {line}")
    if rejected > len(examples[:10]):
        info(f"  ... {rejected - len(examples[:10])} more; use --rejects PATH to keep them all")


@_command("validate")
def validate_cmd(
    files: list[Path] = FILES,
    rejects: Path = REJECTS,
    fast_images: bool = FAST_IMAGES,
    workers: int = typer.Option(0, "--workers", help="Image decoding processes (0: all cores)."),
    max_report: int = typer.Option(50, "--max-report", help="Problems to list on the terminal."),
    batch_size: int = BATCH,
    overwrite: bool = OVERWRITE,
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
) -> None:
    """Check schema, images, placeholders, answers, pass rates, annotations and unique ids.

    Exit code 1 if any row is rejected.

    Example: deepvision data validate math-77k.parquet --rejects bad.jsonl
    """
    paths = inputs_or_sample(files)
    _outputs(paths, overwrite, rejects=rejects)
    report = validate_mod.validate(
        paths,
        rejects_path=rejects,
        decode_images=not fast_images,
        workers=workers or None,
        batch_size=batch_size,
        max_examples=max_report,
        allow_absolute=allow_absolute_paths,
    )
    for line in report.examples:
        console.print(f"[red]✗[/] {line}", highlight=False, soft_wrap=True)
    if report.rejected > len(report.examples):
        console.print(f"... and more: {report.rejected} rejected rows in all")
    if report.issues_by_column:
        t = Table("column", "issues", title="Issues by column")
        for col, n in report.issues_by_column.most_common():
            t.add_row(col, str(n))
        console.print(t)
    verdict = "[green]valid[/]" if report.ok else "[red]INVALID[/]"
    console.print(
        f"{verdict}: rows in {report.rows_in} = {report.valid} valid + {report.rejected} rejected"
        + (f"; rejects written to {rejects}" if rejects else "")
    )
    if not report.ok:
        raise typer.Exit(1)


@_command("stats")
def stats_cmd(
    files: list[Path] = FILES,
    out: Path = typer.Option(..., "--out", help="Folder for stats.json, summary.md and plots."),
    batch_size: int = BATCH,
    workers: int = WORKERS,
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
) -> None:
    """Describe a dataset: topics, knowledge points, visual elements, pass rates, answer kinds.

    Example: deepvision data stats math-77k.parquet --out runs/stats
    """
    paths = inputs_or_sample(files)
    refuse_inputs_as_outputs(paths, {"out": out}, whole=False)  # files are added to it
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; give a folder", param="out")
    result = stats.collect_stats(
        paths,
        batch_size,
        workers or None,
        prepare_plots=True,
        allow_absolute=allow_absolute_paths,
    )
    written = stats.write_stats(result, out, [str(p) for p in paths])
    t = Table("level-1 topic", "problems", title=f"{result.rows} problems")
    for k, v in result.topic_level(1).most_common():
        t.add_row(k, str(v))
    console.print(t)
    console.print(f"wrote {', '.join(str(p) for p in written)}")
    if result.rejected:
        for r in result.rejects[:10]:
            info(f"  [yellow]not counted[/] {r.describe()}")
        info(f"{result.rejected} unreadable rows were not counted; run 'data validate' for all")
        raise typer.Exit(1)


def _selection_summary(
    report: select.SelectionReport,
    dropped_name: str,
    files: dict[str, Path],
    warnings: Sequence[str] = (),
    selected_nothing: bool = False,
) -> None:
    """The accounting line, then each warning; exit 1 if rows were rejected or a filter
    selected nothing from readable rows."""
    parts = [(f"written to {files[k]}", v) for k, v in report.written.items()]
    parts.append((dropped_name, report.dropped))
    _accounting(report.rows_in, parts, report.rejected, report.reject_examples)
    for line in warnings:
        info(f"[yellow]warning[/]: {line}")
    if report.rejected or selected_nothing:
        raise typer.Exit(1)


# Each `select.Filter` criterion (field name) and the flag that sets it.
_FILTER_FLAGS = {
    "pass_rate": "--pass-rate",
    "topics": "--topic",
    "sources": "--source",
    "visual_elements": "--visual-element",
    "answer_kinds": "--answer-kind",
}


def _criterion(flt: select.Filter, name: str) -> str:
    """A criterion as the user gave it: `--topic Geometry,Algebra`."""
    value = getattr(flt, name)
    return f"{_FILTER_FLAGS[name]} {value if isinstance(value, str) else ','.join(value)}"


def _filter_warnings(report: select.SelectionReport, flt: select.Filter) -> list[str]:
    """Why a filter kept nothing, or passed over rows it could never keep."""
    rows, out = report.readable, []
    if flt.pass_rate and rows and report.without_pass_rate == rows:
        out.append(
            f"0 of {rows} rows have a pass rate: {_criterion(flt, 'pass_rate')} selects none of "
            "them (pass rates come from rollouts: 'deepvision curate difficulty' computes them)"
        )
    elif flt.pass_rate and report.without_pass_rate:
        out.append(
            f"{report.without_pass_rate} of {rows} rows have no pass rate: "
            f"{_criterion(flt, 'pass_rate')} never selects them"
        )
    if rows and not report.written["out"]:
        each = "; ".join(f"{_criterion(flt, k)}: {n}" for k, n in report.matched.items())
        out.append(f"nothing selected: no row meets every criterion (rows meeting each: {each})")
    return out


@_command("filter")
def filter_cmd(
    files: list[Path] = FILES,
    out: Path = typer.Option(..., "--out", help="Output parquet (same columns as the input)."),
    pass_rate: str = typer.Option(
        None, "--pass-rate", help="Inclusive range 1/8..7/8, open 4/8.., or one value 3/8."
    ),
    topic: list[str] = typer.Option(
        None, "--topic", help="Topic path prefix, e.g. Geometry/Plane Geometry."
    ),
    source: list[str] = typer.Option(None, "--source", help="data_source values."),
    visual_element: list[str] = typer.Option(
        None, "--visual-element", help="Visual-element category or type, e.g. data_charts, Circle."
    ),
    answer_kind: list[str] = typer.Option(
        None, "--answer-kind", help="integer, fraction, option_letters, text, ..."
    ),
    rejects: Path = REJECTS,
    batch_size: int = BATCH,
    overwrite: bool = OVERWRITE,
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
) -> None:
    """Keep the problems that meet every given criterion (any listed value per criterion).

    Exit code 1 if a row is rejected or no readable row meets every criterion (a warning says why).

    Example: deepvision data filter in.parquet --pass-rate 1/8..7/8 --topic Geometry --out g.parquet
    """
    paths = inputs_or_sample(files)
    _outputs(paths, overwrite, out=out, rejects=rejects)
    flt = select.Filter(
        pass_rate=pass_rate,
        topics=split_list(topic),
        sources=split_list(source),
        visual_elements=split_list(visual_element),
        answer_kinds=split_list(answer_kind),
    )
    report = select.filter_problems(
        paths, out, flt, rejects, batch_size, allow_absolute=allow_absolute_paths
    )
    _selection_summary(
        report,
        "filtered out",
        {"out": out},
        _filter_warnings(report, flt),
        selected_nothing=report.readable > 0 and not report.written["out"],
    )


@_command("sample")
def sample_cmd(
    files: list[Path] = FILES,
    out: Path = typer.Option(..., "--out", help="Output parquet."),
    n: int = typer.Option(..., "--n", help="Number of problems to keep."),
    by: str = typer.Option("topic1", "--by", help=f"Strata: {', '.join(select.STRATA)}."),
    seed: int = typer.Option(0, "--seed"),
    rejects: Path = REJECTS,
    batch_size: int = BATCH,
    overwrite: bool = OVERWRITE,
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
) -> None:
    """Deterministic stratified sample: each stratum keeps its share of n.

    With fewer readable rows than n, all of them are written and a warning says so.

    Example: deepvision data sample math-77k.parquet --n 1000 --by topic2 --out small.parquet
    """
    paths = inputs_or_sample(files)
    _outputs(paths, overwrite, out=out, rejects=rejects)
    report = select.sample_problems(
        paths, out, n, by, seed, rejects, batch_size, allow_absolute=allow_absolute_paths
    )
    short = []
    if report.written["out"] < n:
        wrote = f"all {report.readable} are written" if report.readable else "none is written"
        short.append(f"--n {n}: the input has only {report.readable} readable rows; {wrote}")
    _selection_summary(report, "not sampled", {"out": out}, short)


@_command("split")
def split_cmd(
    files: list[Path] = FILES,
    train: Path = typer.Option(..., "--train", help="Output parquet for the train part."),
    test: Path = typer.Option(..., "--test", help="Output parquet for the test part."),
    test_size: float = typer.Option(0.1, "--test-size", help="Share (<1) or count (>=1)."),
    by: str = typer.Option("topic1", "--by", help=f"Strata: {', '.join(select.STRATA)}."),
    seed: int = typer.Option(0, "--seed"),
    rejects: Path = REJECTS,
    batch_size: int = BATCH,
    overwrite: bool = OVERWRITE,
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
) -> None:
    """Deterministic train/test split, stratified by topic (or another key).

    Example: deepvision data split all.parquet --train tr.parquet --test te.parquet --test-size 0.05
    """
    if train.resolve() == test.resolve():
        raise UsageError("--train and --test must be different files")
    paths = inputs_or_sample(files)
    _outputs(paths, overwrite, train=train, test=test, rejects=rejects)
    report = select.split_problems(
        paths,
        train,
        test,
        test_size,
        by,
        seed,
        rejects,
        batch_size,
        allow_absolute=allow_absolute_paths,
    )
    empty = [p for p in ("train", "test") if report.readable and not report.written[p]]
    _selection_summary(
        report,
        "dropped",
        {"train": train, "test": test},
        [
            f"the {part} part is empty: --test-size {test_size:g} of {report.readable} "
            "readable rows leaves it no row"
            for part in empty
        ],
    )


@_command("dedup")
def dedup_cmd(
    files: list[Path] = FILES,
    out: Path = typer.Option(..., "--out", help="Output parquet, one problem per group."),
    groups: Path = typer.Option(
        None, "--groups", help="Duplicate groups (JSONL); default OUT.groups.jsonl."
    ),
    rejects: Path = REJECTS,
    batch_size: int = BATCH,
    overwrite: bool = OVERWRITE,
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
) -> None:
    """Exact dedup on normalized question text plus image bytes; keeps the first of each group.

    Example: deepvision data dedup math-77k.parquet visual_logic-26k.parquet --out all.parquet
    """
    groups = groups or out.with_name(out.stem + ".groups.jsonl")
    paths = inputs_or_sample(files)
    _outputs(paths, overwrite, out=out, groups=groups, rejects=rejects)
    report, n_groups = select.dedup_problems(
        paths, out, groups, rejects, batch_size, allow_absolute=allow_absolute_paths
    )
    info(f"{n_groups} duplicate groups; written to {groups}")
    _selection_summary(report, "duplicates dropped", {"out": out})


@_command("export")
def export_cmd(
    files: list[Path] = FILES,
    to: str = typer.Option(..., "--to", help=_TO_HELP),
    out: Path = typer.Option(..., "--out", help=_OUT_HELP),
    system_prompt: SystemPromptOpt = None,
    system_prompt_file: SystemPromptFileOpt = None,
    no_system_prompt: NoSystemPromptOpt = False,
    inline_images: bool = typer.Option(
        False, "--inline-images", help="jsonl: images as data URIs instead of a folder."
    ),
    rejects: Path = REJECTS,
    full_images: bool = typer.Option(
        False,
        "--full-images",
        help="Check every image as `data validate` does (every pixel decodes), in worker "
        "processes, instead of its header and end only.",
    ),
    workers: int = typer.Option(
        0, "--workers", help="--full-images: image checking processes (0: all cores)."
    ),
    batch_size: int = BATCH,
    overwrite: bool = OVERWRITE,
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
) -> None:
    """Export to a trainer's format or to inference JSONL. Rows that could never be trained
    on are rejected (exit 1): an image that fails its check, an empty ground truth, an id
    already written. Each row keeps its stored system prompt unless you choose one.

    {image_check}

    {formats}

    Example: deepvision data export math-77k.parquet --to verl --out train.parquet
    """
    prompt, chosen = system_prompt_from(system_prompt, system_prompt_file, no_system_prompt)
    if to not in export_mod.FORMATS:  # checked before any output is prepared
        raise UsageError(f"--to must be one of {', '.join(export_mod.FORMATS)}, not {to!r}")
    paths = inputs_or_sample(files)
    opts = export_mod.ExportOptions(
        system_prompt=prompt, inline_images=inline_images, system_prompt_chosen=chosen
    )
    _outputs(paths, overwrite, out=out, rejects=rejects)
    for side in export_mod.FORMATS[to].side_paths(out, opts):  # the jsonl images folder
        _outputs(paths, overwrite, out=side)
    report = export_mod.export(
        paths,
        out,
        to,
        opts,
        rejects,
        batch_size,
        full_images=full_images,
        workers=workers or None,
        allow_absolute=allow_absolute_paths,
    )
    _accounting(
        report.rows_in,
        [(f"written to {out}", report.written)],
        report.rejected,
        report.reject_examples,
    )
    if report.images_dir is not None:
        info(f"images in {report.images_dir}")
    if report.rejected:
        raise typer.Exit(1)


# One paragraph a line: the help keeps the docstring's line breaks.
_EXPORT_IMAGE_CHECK = (
    "The default check reads each image's header and end only: it rejects bytes that are no "
    "image Pillow knows, a size past Pillow's pixel limit (a pixel bomb), a bad PNG header "
    "(IHDR, its CRC) or JPEG frame header, and PNG or JPEG data cut short (not ending with "
    "IEND or EOI). It does not see damage inside the compressed data of a well-formed file: "
    "run `data validate` (or export with --full-images) for that."
)
export_cmd.__doc__ = export_cmd.__doc__.format(
    image_check=_EXPORT_IMAGE_CHECK,
    formats="\n\n    ".join(f"{n}: {f.description}." for n, f in _FORMAT_ITEMS),
)


@_command("synth")
def synth_cmd(
    out: Path = typer.Option(..., "--out", help="Output parquet (DeepVision layout)."),
    n: int = typer.Option(200, "--n", help="Number of problems."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same bytes."),
    families: list[str] = typer.Option(
        None, "--families", help="Subset of families (default: all)."
    ),
    mc_share: float = typer.Option(0.3, "--mc-share", help="Share of multiple-choice problems."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Generate verifiable visual problems (charts, graphs, geometry, counting, fractions).

    Example: deepvision data synth --n 1000 --seed 7 --out synth.parquet
    """
    from deepvision.data.synth import FAMILIES, generate
    from deepvision.data.writer import ProblemWriter
    from deepvision.progress import progress_bar

    if n < 1:
        raise UsageError(f"--n must be >= 1, got {n}")
    _outputs([], overwrite, out=out)
    chosen = split_list(families) or None
    with ProblemWriter(out) as writer, progress_bar("synth", n) as bar:
        batch = []
        for p in generate(n, seed, chosen, mc_share):
            batch.append(p)
            if len(batch) == 128:
                writer.write(batch)
                bar.advance(len(batch))
                batch = []
        writer.write(batch)
        bar.advance(len(batch))
    info(f"wrote {n} problems to {out} (families: {', '.join(chosen or FAMILIES)})")
