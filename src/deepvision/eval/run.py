"""`deepvision eval run`: inference (resumable) -> verdicts (rules, optional LLM re-judge)
-> metrics -> results.json and reports, for each benchmark of a suite.

Layout of a run folder (names from `records.EvalFiles`; each step writes its own files):

    run.json                          the settings; a re-run must match them (then it resumes)
    <bench>/responses.jsonl           model outputs, one line per item (inference)
    <bench>/responses.errors.jsonl    items inference gave up on, with the reason (inference)
    <bench>/responses.verdicts.jsonl  one verdict per sample (judge)
    <bench>/responses.wrong.jsonl     the rule-negative samples (judge)
    <bench>/responses.judge-errors.jsonl LLM-judge calls that failed (judge; asked again)
    <bench>/responses.summary.json    judge counts (judge)
    results.json, report.md, report.html
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepvision import __version__
from deepvision.data.prompts import DEFAULT_SYSTEM_PROMPT, build_messages
from deepvision.errors import DataError, EvalError
from deepvision.eval.benchmark import Benchmark, LoadReport
from deepvision.eval.metrics import collect_items, compute_metrics, mean_share
from deepvision.eval.registry import BENCHMARK_NAMES, get_benchmark
from deepvision.llm import Endpoint, asker, check_endpoint
from deepvision.llm.client import InferConfig, Request, infer
from deepvision.llm.messages import problem_image_sources
from deepvision.records import EvalFiles, Problem, Share
from deepvision.verify.judge import forget_rule_negatives, judge_outputs

log = logging.getLogger(__name__)

# Settings that change the numbers: a re-run into the same folder must keep them.
_PINNED = ("model", "n", "sampling", "max_tokens", "system_prompt", "limit", "data_dir", "judge")


@dataclass
class JudgeConfig:
    """The LLM re-judge: its model behind its own Endpoint (which also says how many judge
    requests are in flight per URL)."""

    endpoint: Endpoint

    @property
    def model(self) -> str:
        return self.endpoint.model


@dataclass
class EvalConfig:
    benchmarks: list[str]
    out: Path
    endpoint: Endpoint  # the model evaluated, its servers and how to talk to them
    data_dir: Path | None = None
    n: int = 1
    sampling: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    limit: int | None = None  # first items of each benchmark (smoke runs)
    judge: JudgeConfig | None = None
    # Absolute image paths in benchmark records are read only when asked for; relative ones
    # always stay inside `data_dir` (a record naming another is rejected, never read).
    allow_absolute_paths: bool = False
    # Benchmarks the caller chose not to run (`--skip-missing`), with why: in results.json.
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.endpoint.model

    def pinned(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in _PINNED}
        out["data_dir"] = str(self.data_dir) if self.data_dir else None
        out["judge"] = (
            self.judge.model if self.judge else None
        )  # verdicts already written keep theirs
        return out


def item_fields(p: Problem) -> dict[str, Any]:
    """What an output line keeps of its item: enough to judge, score and report it."""
    return {
        "question": p.question,
        "answer": p.answer,
        "equivalent_answers": p.equivalent_answers,
        "options": p.options,
        "categories": p.extra.get("categories", {}),
        "bench": p.extra.get("bench", {}),
        "n_images": len(p.images),
    }


def requests_for(
    problems: Iterator[Problem], system_prompt: str, limit: int | None, loaded: list[dict]
) -> Iterator[Request]:
    """Requests built just before dispatch; `loaded` collects what each item is (id,
    categories, bench fields), so metrics cover every item, answered or not."""
    for i, p in enumerate(problems):
        if limit is not None and i >= limit:
            return
        fields = item_fields(p)
        loaded.append({"id": p.id, "categories": fields["categories"], "bench": fields["bench"]})
        msgs = build_messages(p, system_prompt)
        yield Request(p.id, fields, msgs, problem_image_sources(p))


def check_run_folder(cfg: EvalConfig, overwrite: bool = False) -> bool:
    """Create the run folder, or check that a re-run uses the settings it was made with.
    A new LLM judge is the one change allowed: returns True, and the rule-negative verdicts
    are then decided again (rules, then the new judge)."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        start_over(cfg.out)
    meta = EvalFiles(cfg.out).settings
    mine = json.loads(json.dumps(cfg.pinned()))
    before: list[str] = []
    rejudge = False
    if meta.exists() and not overwrite:
        previous = json.loads(meta.read_text(encoding="utf-8"))
        theirs, before = previous.get("pinned", {}), previous.get("benchmarks", [])
        diff = [k for k in _PINNED if theirs.get(k) != mine.get(k)]
        rejudge = diff == ["judge"] and mine.get("judge") is not None
        if diff and not rejudge:
            detail = "; ".join(f"{k}: {theirs.get(k)!r} -> {mine.get(k)!r}" for k in diff)
            raise EvalError(
                f"{cfg.out} holds a run with other settings ({detail}); use another --out, "
                "or --overwrite to start over"
            )
    record = {
        "pinned": mine,
        "benchmarks": sorted(set(cfg.benchmarks) | set(before)),
        "endpoints": cfg.endpoint.public()["urls"],
        "data_dir": str(cfg.data_dir) if cfg.data_dir else None,
        "judge": cfg.judge.endpoint.public() if cfg.judge else None,
        "deepvision": __version__,
    }
    meta.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return rejudge


def start_over(out: Path) -> None:
    """`--overwrite`: remove every file an earlier run wrote in the folder (settings,
    results, reports, each benchmark's inference and judge files), so that nothing of it is
    resumed or reported under the new settings. Files the run did not write are left."""
    files = EvalFiles(out)
    owned = [files.settings, files.results, files.report_md, files.report_html]
    for name in BENCHMARK_NAMES:
        infer_files, judge_files = files.infer(name), files.judge(name)
        owned += [infer_files.out, infer_files.errors, *judge_files.all().values()]
    for path in owned:
        path.unlink(missing_ok=True)
    for name in BENCHMARK_NAMES:
        with contextlib.suppress(OSError):  # kept when it holds files of someone else
            files.bench_dir(name).rmdir()


def run_benchmark(
    cfg: EvalConfig,
    bench: Benchmark,
    progress: Callable[[str, int], None] | None = None,
    rejudge: bool = False,
) -> dict[str, Any]:
    """Inference, judging and metrics of one benchmark; every step resumes. With `rejudge`,
    the rule-negative verdicts of an earlier run are decided again by the (new) judge."""
    files = EvalFiles(cfg.out)
    judge_files, infer_files = files.judge(bench.name), files.infer(bench.name)
    if rejudge:
        n = forget_rule_negatives(judge_files)
        log.info("%s: %d rule-negative verdict(s) go to the new judge", bench.name, n)
    files.bench_dir(bench.name).mkdir(parents=True, exist_ok=True)
    responses = infer_files.out
    report = LoadReport()
    loaded: list[dict[str, Any]] = []
    infer_cfg = InferConfig(cfg.endpoint, n=cfg.n, sampling=cfg.sampling, max_tokens=cfg.max_tokens)
    problems = bench.load(cfg.data_dir, report, allow_absolute=cfg.allow_absolute_paths)
    reqs = requests_for(problems, cfg.system_prompt, cfg.limit, loaded)
    t0 = time.monotonic()
    tick = (lambda k: progress(f"{bench.name}: infer", k)) if progress else None
    inf = asyncio.run(
        infer(reqs, responses, infer_cfg, errors=infer_files.errors, progress=tick, check=False)
    )
    t_infer = time.monotonic() - t0
    log_load_report(bench, report, len(loaded))
    if not loaded:
        raise EvalError(
            f"{bench.name}: no usable item in {report.path or cfg.data_dir}" + _why_none(report)
        )
    official = len(loaded) + report.skipped + len(report.excluded)
    if cfg.limit is None and official != bench.size and bench.name != "synth":
        log.warning(
            "%s: %d records, the reference evaluation has %d: is this the right split?",
            bench.name,
            official,
            bench.size,
        )
    ask = None
    if cfg.judge:
        j = cfg.judge
        ask = asker(j.endpoint)
    tick = (lambda k: progress(f"{bench.name}: judge", k)) if progress else None
    js = judge_outputs(
        responses,
        out_prefix=judge_files.prefix,
        ask=ask,
        concurrency=cfg.judge.endpoint.concurrency * len(cfg.judge.endpoint.urls)
        if cfg.judge
        else 16,
        progress=tick,
        extract=bench.extract,
    )
    items = collect_items(responses, judge_files.verdicts)
    metrics = compute_metrics(bench, items, cfg.n, loaded=loaded, skipped=report.skipped)
    metrics["load"] = asdict(report)
    metrics["inference"] = {
        "done": inf.done,
        "skipped_already_done": inf.skipped,
        "failed": inf.failed,
        "duplicate_ids": inf.duplicates,
        "wall_s": round(t_infer, 2),
    }
    metrics["judge"] = {
        "judged_by_llm": js.judged,
        "judge_errors": js.errors,
        "undecided_checks": js.undecided_checks,
        "bad_lines": js.bad_lines,
    }
    return metrics


def log_load_report(bench: Benchmark, report: LoadReport, loaded: int) -> None:
    """What the loader did, in the log: the layout and fields, then every record it could
    not use (skipped: undecided until the data folder is fixed; excluded: out of the set)
    and every gold or option string it changed."""
    used = ", ".join(f"{k}={v}" for k, v in report.fields.items())
    log.info(
        "%s: %d items from the %s layout (%s)",
        bench.name,
        loaded,
        report.layout,
        used or report.path,
    )
    for example in report.skipped_examples:
        log.warning("%s: skipped (undecided until the data is fixed) %s", bench.name, example)
    for record in report.excluded:
        log.warning("%s: excluded (unusable as shipped) %s", bench.name, record)
    for g in report.golds_normalized:
        log.info("%s: gold of %s normalized: %r -> %r", bench.name, g["id"], g["stored"], g["used"])
    if report.options_unparsed:
        log.warning(
            "%s: options sent as shipped (could not be split), scored apart: %s",
            bench.name,
            ", ".join(report.options_unparsed),
        )
    if report.options_relettered:
        log.info(
            "%s: options that skipped a letter lettered again (gold too): %s",
            bench.name,
            ", ".join(report.options_relettered),
        )


def _why_none(report: LoadReport) -> str:
    """Why a load gave no item, in a few words for the error message."""
    parts = []
    if report.skipped:
        parts.append(f"{report.skipped} record(s) unusable: {report.skipped_examples[0]}")
    if report.excluded:
        parts.append(f"{len(report.excluded)} excluded: {report.excluded[0]}")
    if report.outside:
        parts.append(f"{report.outside} record(s) of other sets or versions")
    return f" ({'; '.join(parts)})" if parts else ""


def run_eval(
    cfg: EvalConfig,
    *,
    overwrite: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate every benchmark of `cfg`, write results.json and the reports; return results."""
    from deepvision.eval.download import sources_read
    from deepvision.eval.report import write_reports

    benches = [get_benchmark(b) for b in cfg.benchmarks]
    # Before the run folder is touched and before hours of inference: the model's servers
    # (and the judge's) answer within seconds and serve the model named; a wrong port or
    # model name is an error now, and leaves no folder behind that a corrected re-run would
    # have to match.
    asyncio.run(check_endpoint(cfg.endpoint))
    if cfg.judge:
        asyncio.run(check_endpoint(cfg.judge.endpoint))
    rejudge = check_run_folder(cfg, overwrite)
    results: dict[str, Any] = {
        "run": {
            "name": cfg.out.name,
            "model": cfg.model,
            "n": cfg.n,
            "sampling": cfg.sampling,
            "max_tokens": cfg.max_tokens,
            "system_prompt": cfg.system_prompt,
            "judge": cfg.judge.model if cfg.judge else None,
            "data_dir": str(cfg.data_dir) if cfg.data_dir else None,
            "deepvision": __version__,
        },
        "benchmarks": {},
    }
    files = EvalFiles(cfg.out)
    earlier = files.results
    if earlier.exists() and not overwrite:  # same settings (checked): keep other benchmarks
        kept = json.loads(earlier.read_text(encoding="utf-8")).get("benchmarks", {})
        results["benchmarks"].update(_kept(kept, cfg.benchmarks))
    failed: dict[str, str] = {}
    for bench in benches:
        log.info("%s: %s", bench.name, bench.reference)
        try:
            results["benchmarks"][bench.name] = run_benchmark(cfg, bench, progress, rejudge)
        except (DataError, EvalError) as exc:  # this benchmark's data: the others go on
            if len(benches) == 1:
                raise
            log.error("%s: %s", bench.name, exc)
            failed[bench.name] = str(exc)
    if not results["benchmarks"]:
        raise EvalError("no benchmark could be evaluated: " + "; ".join(failed.values()))
    results["failed"] = failed
    results["skipped"] = dict(cfg.skipped)
    # the data downloaded by `eval download` that the run read (Hub repository, commit)
    results["sources"] = sources_read(cfg.data_dir, cfg.benchmarks)
    results["average"] = average(results["benchmarks"], list(failed))
    files.results.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    write_reports(cfg.out, results, data_dir=cfg.data_dir, allow_absolute=cfg.allow_absolute_paths)
    return results


def _kept(earlier: dict[str, Any], running: list[str]) -> dict[str, Any]:
    """The earlier benchmarks of the folder that this run does not redo. One whose figures
    predate `Share` (a bare accuracy that counted missing items as wrong) is left out, and
    named: running it again rebuilds it without asking the model again."""
    kept = {}
    for name, metrics in earlier.items():
        if name in running:
            continue
        if isinstance(metrics.get("accuracy"), dict):
            kept[name] = metrics
        else:
            log.warning(
                "%s: results from an older deepvision left out; run it again "
                "(--benchmarks %s) to include it",
                name,
                name,
            )
    return kept


def average(benchmarks: dict[str, dict[str, Any]], failed: Sequence[str] = ()) -> dict[str, Any]:
    """Unweighted mean over the reference benchmarks of the run (as the reference table
    averages); over all of them when the run has none of the seven (e.g. `synth` alone).
    The accuracy is a `Share` (`metrics.mean_share`): partial when any benchmark's is, and
    when a benchmark of the run `failed` (it counts as wholly undecided)."""
    from deepvision.eval.registry import REFERENCE_SUITE

    names = [k for k in benchmarks if k in REFERENCE_SUITE] or list(benchmarks)
    missing = [k for k in failed if k in REFERENCE_SUITE or not names]
    toks = [
        benchmarks[k]["mean_tokens"] for k in names if benchmarks[k].get("mean_tokens") is not None
    ]
    undecided = Share(0, 0, 1).to_json()
    figures = [benchmarks[k]["accuracy"] for k in names] + [undecided for _ in missing]
    return {
        "accuracy": mean_share(figures).to_json(),
        "mean_tokens": sum(toks) / len(toks) if toks else None,
        "over": names + missing,
    }
