"""`deepvision eval download`: each benchmark's official files fetched by name from the Hugging
Face Hub (`huggingface_hub`, the `hf` extra) into the folder its loader reads, `DIR/<name>/`.

Only the files the loader needs are fetched (`HubSource.files`: the evaluation split, never the
training or test splits it does not read). A benchmark's files are downloaded into
`DIR/.download/<name>/` and moved to `DIR/<name>/` only once all of them are there, so a cut
download never leaves a folder a run would take for the benchmark; run again, it resumes from
the files already fetched. The revision asked for (`HubSource.revision`, or `--revision
NAME=REV`) is resolved to its commit first and every file is read at that commit; the commit
is recorded in `DIR/deepvision-downloads.json` (the manifest), so a run can say exactly what
it read, and a re-run skips a benchmark already there at the revision asked for.

The Hub is `HF_ENDPOINT` (default https://huggingface.co), read when a download starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from deepvision.errors import DeepVisionError, EvalError, UsageError
from deepvision.eval.benchmark import Benchmark
from deepvision.eval.registry import get_benchmark, missing_data
from deepvision.progress import enabled as bars_enabled
from deepvision.progress import is_quiet

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
MANIFEST = "deepvision-downloads.json"
STAGING = ".download"
PIPED_EVERY_S = 60.0  # the progress convention: a plain line at most once a minute in a log


@dataclass(frozen=True)
class HubSource:
    """Where a benchmark's official files are: its Hub dataset (None: not on the Hub), the
    files the loader reads there (glob patterns), the revision fetched by default, the
    benchmark's own repository, and what `DIR/<name>/` must hold when placed by hand."""

    repo: str | None
    files: tuple[str, ...]
    home: str
    layout: str
    revision: str = "main"

    def page(self) -> str:
        """The public page of the files (the Hub's, whatever HF_ENDPOINT points at)."""
        return f"{DEFAULT_ENDPOINT}/datasets/{self.repo}" if self.repo else self.home


# The Hub ids of the benchmarks' READMEs. Revisions: `main`, resolved to its commit at download
# time and recorded in the manifest; pass `--revision NAME=COMMIT` to read a recorded one again.
SOURCES: dict[str, HubSource] = {
    "wemath": HubSource(
        "We-Math/We-Math",
        ("data/testmini-*.parquet", "knowledge_structure_nodes.json"),
        "https://github.com/We-Math/We-Math",
        "data/testmini-*.parquet and knowledge_structure_nodes.json",
    ),
    "mathvision": HubSource(
        "MathLLMs/MathVision",
        ("data/test-*.parquet",),
        "https://github.com/mathllm/MATH-V",
        "data/test-*.parquet (or the repository as shipped: data/test.jsonl + images/)",
    ),
    "mathverse_vision": HubSource(
        "AI4Math/MathVerse",
        ("testmini.parquet",),
        "https://github.com/ZrrSkywalker/MathVerse",
        "testmini.parquet (or testmini.json + images/)",
    ),
    "logic_vista": HubSource(
        None,
        (),
        "https://github.com/Yijia-Xiao/LogicVista",
        "the repository as shipped: data/dataset.json + data/images/",
    ),
    "mmmu": HubSource(
        "MMMU/MMMU",
        ("*/validation-*.parquet",),
        "https://github.com/MMMU-Benchmark/MMMU",
        "<Subject>/validation-*.parquet for each of the 30 subjects",
    ),
    "mmmu_pro": HubSource(
        "MMMU/MMMU_Pro",
        ("standard (10 options)/test-*.parquet",),
        "https://github.com/MMMU-Benchmark/MMMU",
        "standard (10 options)/test-*.parquet",
    ),
    "mmmu_pro_vision": HubSource(
        "MMMU/MMMU_Pro",
        ("vision/test-*.parquet",),
        "https://github.com/MMMU-Benchmark/MMMU",
        "vision/test-*.parquet",
    ),
    "m3cot": HubSource(
        "LightChen2333/M3CoT",
        ("data/test-*.parquet",),
        "https://github.com/LightChen233/M3CoT",
        "data/test-*.parquet",
    ),
}


def files_text(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def hub_endpoint() -> str:
    """The Hub to ask: `HF_ENDPOINT` as set now (huggingface_hub reads it once, at import)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def source_of(name: str) -> HubSource:
    if name not in SOURCES:
        raise UsageError(
            f"{name} has no official files to download (known: {', '.join(SOURCES)})",
            param="benchmarks",
        )
    return SOURCES[name]


def where_to_get(name: str, data_dir: Path) -> str:
    """Where a user gets a benchmark by hand and where to put it: the one hint every
    download failure ends with."""
    src = source_of(name)
    pages = f"{src.page()} (or {src.home})" if src.repo else src.home
    return f"get {name} from {pages} and put {src.layout} in {data_dir / name}/"


def parse_revisions(specs: list[str]) -> dict[str, str]:
    """`NAME=REV` pairs (`mathvision=ac21b30...`) -> {benchmark: revision}."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, rev = spec.partition("=")
        if not sep or not name.strip() or not rev.strip():
            raise UsageError(f"expected NAME=REVISION, got {spec!r}", param="revision")
        source_of(name.strip())
        out[name.strip()] = rev.strip()
    return out


def hub_and_by_hand(names: list[str], data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The benchmarks of `names` to fetch from the Hub, and those that are not on it and not
    in `data_dir` yet, each with where to get it by hand."""
    on_hub = [n for n in names if source_of(n).repo is not None]
    by_hand = [get_benchmark(n) for n in names if n not in on_hub]
    return on_hub, {n: where_to_get(n, data_dir) for n in missing_data(by_hand, data_dir)}


# --------------------------------------------------------------------------- for a run


def benchmarks_with_data(
    benches: list[Benchmark],
    data_dir: Path | None,
    fetch: bool,
    revisions: dict[str, str],
    skip_missing: bool,
) -> tuple[list[Benchmark], dict[str, str]]:
    """The benchmarks to run and those skipped (name -> why), decided before any request:
    with `fetch`, those missing from `data_dir` are downloaded into it first; any still
    missing are all named in one error, or skipped with `skip_missing`."""
    if revisions and not fetch:
        raise UsageError("pins the revision --download fetches; add --download", param="revision")
    missing = missing_data(benches, data_dir)
    failed: dict[str, str] = {}
    if missing and fetch:
        if data_dir is None:
            raise UsageError("needed with --download: the folder to fetch into", param="data_dir")
        for name in [n for n in missing if n in SOURCES and SOURCES[n].repo]:
            try:
                download([name], data_dir, revisions)
            except DeepVisionError as exc:
                if not skip_missing:
                    raise
                failed[name] = f"download failed: {exc}"
        missing = missing_data(benches, data_dir)
    if missing and not skip_missing:
        raise UsageError(_missing_text(list(missing), data_dir), param="data_dir")
    for name in missing:  # what results.json says of each skipped benchmark
        where = data_dir or Path("DATA_DIR")
        missing[name] = failed.get(name) or f"{missing[name]}; {where_to_get(name, where)}"
    ready = [b for b in benches if b.name not in missing]
    if not ready:
        raise UsageError(f"none of {', '.join(missing)} has data to run", param="data_dir")
    return ready, missing


def _missing_text(names: list[str], data_dir: Path | None) -> str:
    """The one error naming every benchmark without data, and how to get each."""
    where = f"in {data_dir}" if data_dir else "(no --data-dir given)"
    text = f"no data {where} for {', '.join(names)}"
    on_hub = [n for n in names if SOURCES[n].repo]
    if on_hub:
        text += (
            f"; fetch {'it' if len(on_hub) == 1 else 'them'} by name with --download, or "
            f"`deepvision eval download {','.join(on_hub)} --to {data_dir or 'DATA_DIR'}`"
        )
    for name in [n for n in names if not SOURCES[n].repo]:
        text += f"; {where_to_get(name, data_dir or Path('DATA_DIR'))}"
    return text + "; or pass --skip-missing to run the others"


# --------------------------------------------------------------------------- the manifest


def read_manifest(data_dir: Path) -> dict[str, Any]:
    """The manifest of `data_dir`: benchmark -> what `eval download` put there ({} if none)."""
    path = data_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise EvalError(f"{path}: not JSON ({exc}); remove it to download again") from None
    if not isinstance(data, dict):
        return {}
    # An entry edited into another shape vouches for nothing: as if the name were not there.
    return {
        k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("commit"), str)
    }


def _write_manifest(data_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest whole (written beside, then renamed: never half a file)."""
    tmp = data_dir / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, data_dir / MANIFEST)


def sources_read(data_dir: Path | None, names: list[str]) -> dict[str, Any]:
    """The manifest entries (Hub repository, commit) of the benchmarks `names` whose data in
    `data_dir` came from `eval download`: what a run records it read."""
    if data_dir is None:
        return {}
    manifest = read_manifest(data_dir)
    return {n: manifest[n] for n in names if n in manifest and (data_dir / n).is_dir()}


# --------------------------------------------------------------------------- downloading


@dataclass
class Fetched:
    """One benchmark's download: where it is, what was read (repo, commit), whether it was
    already there, and the files it holds (path -> bytes)."""

    name: str
    folder: Path
    repo: str
    commit: str
    already_there: bool
    files: dict[str, int]


def download(
    names: list[str], data_dir: Path, revisions: dict[str, str] | None = None
) -> list[Fetched]:
    """Fetch each benchmark of `names` into `data_dir/<name>/` (see the module docstring).
    The first benchmark that cannot be fetched (the Hub unreachable, not on the Hub) stops
    the download with an EvalError naming where to get it by hand and the benchmarks not
    tried yet; those fetched before it stay fetched."""
    revisions = revisions or {}
    for name in names:
        if source_of(name).repo is None:
            raise EvalError(
                f"{name} is not on the Hugging Face Hub: {where_to_get(name, data_dir)}"
            )
    _require_hub_client()
    data_dir.mkdir(parents=True, exist_ok=True)
    fetched: list[Fetched] = []
    for k, name in enumerate(names):
        try:
            fetched.append(
                _download_one(name, data_dir, revisions.get(name, SOURCES[name].revision))
            )
        except EvalError as exc:
            rest = names[k + 1 :]
            if not rest:
                raise
            raise EvalError(f"{exc} (not tried yet: {', '.join(rest)})") from None
    return fetched


def _require_hub_client() -> None:
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise EvalError(
            "downloading benchmarks needs huggingface_hub: pip install 'deepvision[hf]'"
        ) from None


def _download_one(name: str, data_dir: Path, revision: str) -> Fetched:
    src, endpoint = SOURCES[name], hub_endpoint()
    assert src.repo is not None
    folder, manifest = data_dir / name, read_manifest(data_dir)
    entry = manifest.get(name)
    if folder.exists() and entry is None:
        raise UsageError(
            f"{folder} exists and was not written by `eval download`; move it away to "
            "download the official files there, or evaluate it as it is",
            param="to",
        )
    if entry and folder.is_dir() and revision in (entry.get("revision"), entry.get("commit")):
        log.info("%s: already in %s (%s@%s)", name, folder, src.repo, entry["commit"][:12])
        return Fetched(name, folder, src.repo, entry["commit"], True, entry.get("files", {}))
    staging = data_dir / STAGING / name
    with _hub_errors(name, data_dir, endpoint, revision):
        commit = _resolve(src.repo, revision, endpoint)
        wanted = _listing(name, src, commit, endpoint)
        total = sum(wanted.values())
        what = f"{files_text(len(wanted))}, {total / 1e6:.1f} MB"
        log.info("%s: %s from %s@%s", name, what, src.repo, commit[:12])
        _prune(staging, wanted)
        with _piped_progress(name, staging, total):
            _fetch(src, commit, staging, endpoint)
    files = _check_complete(name, wanted, staging)
    shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's resume notes
    manifest[name] = {
        "repo": src.repo,
        "revision": revision,
        "commit": commit,
        "endpoint": endpoint,
        "files": files,
        "fetched": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # The manifest first, then the folder: a kill in between leaves no folder (fetched again
    # from the complete staging copy), never a folder the manifest does not vouch for.
    _write_manifest(data_dir, manifest)
    if folder.exists():
        shutil.rmtree(folder)  # an earlier revision this command wrote
    os.replace(staging, folder)
    _remove_if_empty(data_dir / STAGING)
    size = sum(files.values()) / 1e6
    log.info(
        "%s: %s, %.1f MB in %s (commit %s)", name, files_text(len(files)), size, folder, commit
    )
    return Fetched(name, folder, src.repo, commit, False, files)


def _resolve(repo: str, revision: str, endpoint: str) -> str:
    """The commit a branch, tag or commit names on the Hub (every file is read at it)."""
    from huggingface_hub import HfApi

    info = HfApi(endpoint=endpoint).dataset_info(repo, revision=revision)
    if not info.sha:
        raise EvalError(f"{endpoint} named no commit for {repo}@{revision}")
    return info.sha


def _fetch(src: HubSource, commit: str, staging: Path, endpoint: str) -> None:
    from huggingface_hub import snapshot_download

    with _hub_bars(bars_enabled()):
        snapshot_download(
            src.repo,
            repo_type="dataset",
            revision=commit,
            local_dir=staging,
            allow_patterns=list(src.files),
            endpoint=endpoint,
        )


def _listing(name: str, src: HubSource, commit: str, endpoint: str) -> dict[str, int]:
    """The files to fetch at `commit` (path -> bytes): those matching the source's patterns.
    A pattern matching none means the Hub's layout is not the one the loader reads: an
    error before anything is fetched."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    tree = HfApi(endpoint=endpoint).list_repo_tree(
        src.repo, repo_type="dataset", revision=commit, recursive=True
    )
    files = {f.path: f.size for f in tree if isinstance(f, RepoFile)}
    wanted = {p: n for p, n in files.items() if any(fnmatch(p, pat) for pat in src.files)}
    unmatched = [pat for pat in src.files if not any(fnmatch(p, pat) for p in wanted)]
    if unmatched:
        raise EvalError(
            f"{name}: {src.repo}@{commit[:12]} has no file matching {', '.join(unmatched)}: "
            "its layout is not the one the loader reads; pin an earlier commit with "
            f"--revision {name}=COMMIT"
        )
    return wanted


def _prune(staging: Path, wanted: dict[str, int]) -> None:
    """Remove files of an earlier, cut download of another revision that this one does not
    hold (the files it holds are checked and kept by huggingface_hub)."""
    for path in _fetched(staging):
        if path not in wanted:
            (staging / path).unlink()


def _fetched(staging: Path) -> dict[str, int]:
    """The files in a staging folder (path -> bytes), without huggingface_hub's notes."""
    if not staging.is_dir():
        return {}
    return {
        p.relative_to(staging).as_posix(): p.stat().st_size
        for p in sorted(staging.rglob("*"))
        if p.is_file() and ".cache" not in p.relative_to(staging).parts
    }


def _check_complete(name: str, wanted: dict[str, int], staging: Path) -> dict[str, int]:
    """The files fetched: every one listed, each of its listed size (else an error, and the
    staging folder is kept for a re-run)."""
    files = _fetched(staging)
    short = [p for p, n in wanted.items() if files.get(p) != n]
    if short:
        raise EvalError(
            f"{name}: {len(short)} file(s) did not arrive whole ({', '.join(short[:3])}); "
            "run the same command again to fetch them"
        )
    return files


def _bytes_under(folder: Path) -> int:
    """Bytes of the files under `folder` now (a file renamed or removed meanwhile: skipped)."""
    total = 0
    try:
        paths = list(folder.rglob("*"))
    except OSError:
        return 0
    for path in paths:
        with suppress(OSError):
            total += path.stat().st_size if path.is_file() else 0
    return total


@contextmanager
def _piped_progress(name: str, staging: Path, total: int, every_s: float = 60.0) -> Iterator[None]:
    """When stderr is not a terminal (a log), a line at most once a minute while the files
    arrive: bytes so far (finished and partial files), of the total, and the rate."""
    if bars_enabled() or is_quiet():
        yield
        return
    done = threading.Event()
    start = time.monotonic()

    def report() -> None:
        while not done.wait(PIPED_EVERY_S):
            got = _bytes_under(staging)
            rate = got / max(time.monotonic() - start, 1e-9)
            log.info("%s: %.1f of %.1f MB, %.1f MB/s", name, got / 1e6, total / 1e6, rate / 1e6)

    thread = threading.Thread(target=report, name=f"download-progress-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def _hub_bars(show: bool) -> Iterator[None]:
    """huggingface_hub's own progress bars on a terminal; none when piped or --quiet (the
    log says what is fetched and when it is done)."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    was_off = are_progress_bars_disabled()
    if not show:
        disable_progress_bars()
    try:
        yield
    finally:
        if not show and not was_off:
            enable_progress_bars()


@contextmanager
def _hub_errors(name: str, data_dir: Path, endpoint: str, revision: str) -> Iterator[None]:
    """The Hub's failures as one line each: what went wrong, then where to get the data by
    hand (`where_to_get`). Files fetched so far stay in the staging folder for a re-run."""
    import httpx
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hint = where_to_get(name, data_dir)
    try:
        yield
    except RevisionNotFoundError:
        raise UsageError(
            f"{SOURCES[name].repo} has no revision {revision!r} on {endpoint}", param="revision"
        ) from None
    except RepositoryNotFoundError:
        raise EvalError(f"{endpoint} has no dataset {SOURCES[name].repo}; {hint}") from None
    except OfflineModeIsEnabled:
        raise EvalError(f"HF_HUB_OFFLINE is set, so {name} cannot be downloaded; {hint}") from None
    except (HfHubHTTPError, httpx.HTTPError, OSError) as exc:
        raise EvalError(
            f"cannot download {name} from the Hub at {endpoint} ({_first_line(exc)}); {hint}; "
            "or run again when the Hub is reachable (it resumes)"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _remove_if_empty(folder: Path) -> None:
    with suppress(OSError):  # not empty: another benchmark's download is under way there
        folder.rmdir()
