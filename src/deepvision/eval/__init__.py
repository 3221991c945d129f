"""Benchmarks end to end: a registry of the seven reference benchmarks (+ the embedded
`synth`), their loaders and scoring rules, metrics, `eval run` orchestration and reports."""

from deepvision.eval.benchmark import Benchmark, LoadReport
from deepvision.eval.metrics import compute_metrics
from deepvision.eval.registry import (
    BENCHMARK_NAMES,
    BENCHMARKS,
    REFERENCE_SUITE,
    get_benchmark,
    load_problems,
    parse_benchmarks,
)
from deepvision.eval.run import EvalConfig, EvalError, JudgeConfig, run_eval

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_NAMES",
    "REFERENCE_SUITE",
    "Benchmark",
    "EvalConfig",
    "EvalError",
    "JudgeConfig",
    "LoadReport",
    "compute_metrics",
    "get_benchmark",
    "load_problems",
    "parse_benchmarks",
    "run_eval",
]
