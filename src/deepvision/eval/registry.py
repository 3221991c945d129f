"""The benchmark registry: name -> benchmark, and loading a benchmark's items."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from deepvision.errors import UsageError
from deepvision.eval.benchmark import Benchmark, LoadReport
from deepvision.eval.benchmarks.logicvista import LogicVista
from deepvision.eval.benchmarks.m3cot import M3CoT
from deepvision.eval.benchmarks.mathverse import MathVerseVision
from deepvision.eval.benchmarks.mathvision import MathVision
from deepvision.eval.benchmarks.mmmu import MMMU
from deepvision.eval.benchmarks.mmmu_pro import MMMUPro, MMMUProVision
from deepvision.eval.benchmarks.synth import Synth
from deepvision.eval.benchmarks.wemath import WeMath
from deepvision.records import Problem

_ALL: list[Benchmark] = [
    WeMath(), MathVision(), MathVerseVision(), LogicVista(), MMMU(), MMMUPro(), M3CoT(),
    MMMUProVision(), Synth(),
]  # fmt: skip
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in _ALL}
BENCHMARK_NAMES: tuple[str, ...] = tuple(BENCHMARKS)
# The seven benchmarks of the reference results table, in its order.
REFERENCE_SUITE = ("wemath", "mathvision", "mathverse_vision", "logic_vista", "mmmu",
                   "mmmu_pro", "m3cot")  # fmt: skip
_ALIASES = {"mathverse": "mathverse_vision", "logicvista": "logic_vista", "mmmu-pro": "mmmu_pro"}


def get_benchmark(name: str) -> Benchmark:
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARK_NAMES)}")
    return BENCHMARKS[key]


def parse_benchmarks(spec: str | list[str]) -> list[Benchmark]:
    """`wemath,mathvision` (or repeated values; `all` = the seven of the reference table)."""
    names = spec if isinstance(spec, list) else [spec]
    out: list[Benchmark] = []
    for chunk in names:
        for name in chunk.split(","):
            if not name.strip():
                continue
            group = REFERENCE_SUITE if name.strip() == "all" else (name,)
            for n in group:
                b = get_benchmark(n)
                if b not in out:
                    out.append(b)
    if not out:
        raise UsageError("no benchmark named")
    return out


def missing_data(benches: list[Benchmark], data_dir: Path | None) -> dict[str, str]:
    """The benchmarks of `benches` with no data to read, each with why (no data folder, or
    what was looked for in it): found before any request is sent, all named at once."""
    missing: dict[str, str] = {}
    for b in benches:
        if isinstance(b, Synth):  # its items are embedded: never missing
            continue
        if data_dir is None:
            missing[b.name] = "no --data-dir given"
        elif b.locate(Path(data_dir)) is None:
            looked = ", ".join([f"{b.name}.jsonl", *[f"{a}/" for a in b.folder_names()]])
            missing[b.name] = f"not in {data_dir} (looked for {looked})"
    return missing


def load_problems(
    name: str,
    data_dir: str | Path | None,
    report: LoadReport | None = None,
    *,
    allow_absolute: bool = False,
) -> Iterator[Problem]:
    """The items of benchmark `name` found in `data_dir` (None for the embedded `synth`);
    image paths are read inside `data_dir` only (absolute ones too with `allow_absolute`)."""
    folder = Path(data_dir) if data_dir else None
    return get_benchmark(name).load(folder, report, allow_absolute=allow_absolute)
