"""The import rules of ARCHITECTURE.md, pinned: which layer may import which, cross-package
imports only of public names, every exception class in errors.py, and one place for each of
the decisions the house plan names (PNG signature, Retry-After parsing, `<image k>` markers)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "deepvision"

# What each top-level unit of the package may import (besides itself). `cli` may import all.
FOUNDATION = {"errors", "progress", "records", "configs", "workers", "__init__"}
ALLOWED = {
    "errors": set(),
    "configs": {"errors"},
    "progress": set(),
    "workers": set(),
    "records": {"errors"},
    "data": {"errors", "progress", "records", "workers"},
    "llm": {"errors", "progress", "records", "workers"},
    "verify": {"errors", "progress", "records", "workers"},
    "eval": FOUNDATION | {"data", "llm", "verify"},
    "curate": FOUNDATION | {"data", "llm", "verify"},
    "train": FOUNDATION | {"data", "llm", "verify"},
    "quickstart": FOUNDATION | {"data", "llm", "verify", "eval", "train"},
}


def _unit(module: str) -> str:
    """`deepvision.data.reader` -> `data`; `deepvision` -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) of every deepvision import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "deepvision" or node.module.startswith("deepvision."):
                found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("deepvision"):
                    found.append((a.name, [], node.lineno))
    return found


def _unit_of_name(name: str) -> str:
    """The unit `from deepvision import name` reaches: a subpackage/module, else the root."""
    exists = (SRC / name).is_dir() or (SRC / f"{name}.py").exists()
    return name if exists else "__init__"


def _violations() -> tuple[list[str], list[str]]:
    arrows, private = [], []
    for module, path in _modules():
        src = _unit(module)
        for target, names, line in _imports(path):
            dst = _unit(target)
            where = f"{path.relative_to(SRC.parent)}:{line}"
            # `from deepvision import X` reaches X's own unit when X is a subpackage
            root_names = dst == "__init__" and names
            dst_units = {_unit_of_name(n) for n in names} if root_names else {dst}
            for d in dst_units:
                if src in ("cli", "__init__") or d == src:
                    continue
                if d not in ALLOWED.get(src, set()):
                    arrows.append(f"{where}: {src} imports {target}")
            if dst != src and src != "cli":
                bad = [n for n in names if n.startswith("_") and n != "__version__"]
                if bad:
                    private.append(f"{where}: {src} takes private {bad} from {target}")
    return arrows, private


def test_every_import_points_the_planned_way():
    arrows, _ = _violations()
    assert arrows == [], "\n".join(arrows)


def test_packages_take_only_public_names_from_each_other():
    _, private = _violations()
    assert private == [], "\n".join(private)


def test_the_rule_test_sees_a_forbidden_arrow(tmp_path):
    # The checker itself: a data -> llm import in a scratch file is reported.
    bad = tmp_path / "x.py"
    bad.write_text("from deepvision.llm.client import infer\nfrom deepvision.verify import _x\n")
    expected = [("deepvision.llm.client", ["infer"], 1), ("deepvision.verify", ["_x"], 2)]
    assert _imports(bad) == expected
    assert "llm" not in ALLOWED["data"]


def test_every_exception_class_lives_in_errors_py():
    elsewhere = []
    for module, path in _modules():
        if module == "deepvision.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b) for b in node.bases}
                if any(b.endswith(("Error", "Exception")) for b in bases):
                    elsewhere.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name}")
    assert elsewhere == [], "\n".join(elsewhere)


def test_errors_tree_has_one_root():
    import deepvision.errors as errors

    classes = [getattr(errors, n) for n in errors.__all__]
    assert all(issubclass(c, errors.DeepVisionError) for c in classes)
    for c in classes:  # the tree in the module docstring lists every class
        assert c.__name__ in errors.__doc__


def _mentions(path: Path, rx: re.Pattern) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines()
    return any(rx.search(line) and not line.lstrip().startswith("#") for line in lines)


@pytest.mark.parametrize(
    "pattern",
    [
        r"\\x89PNG",  # the PNG signature
        r"\.get\(\s*[\"']retry-after",  # Retry-After parsing
        r"<image\\s",  # the `<image k>` marker pattern
    ],
)
def test_each_decision_is_written_in_one_file(pattern):
    rx = re.compile(pattern, re.IGNORECASE)
    files = sorted(str(p.relative_to(SRC)) for _, p in _modules() if _mentions(p, rx))
    assert len(files) <= 1, f"{pattern!r} in {files}"


def test_public_api_of_the_root_package():
    import deepvision

    assert deepvision.Problem.__name__ == "Problem"
    assert deepvision.check("\\boxed{7}", "7").correct
    for name in deepvision.__all__:
        assert getattr(deepvision, name) is not None


@pytest.mark.parametrize(
    "package",
    ["records", "errors", "data", "llm", "verify", "eval", "curate", "train", "configs"],
)
def test_every_package_lists_its_public_api(package):
    import importlib

    mod = importlib.import_module(f"deepvision.{package}")
    assert mod.__all__, package
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"deepvision.{package}.{name}"


def test_jsonl_work_starts_without_pyarrow():
    """`infer` on JSONL (its command and its sender processes) and `judge` never read parquet:
    they start without pyarrow (0.2 s and ~40 MB per process), which loads with the first use
    of the Problem record."""
    code = (
        "import sys, deepvision, deepvision.cli.infer, deepvision.cli.verify, "
        "deepvision.llm.senders\n"
        "assert 'pyarrow' not in sys.modules, 'pyarrow imported'\n"
        "from deepvision.records import Problem\n"
        "assert 'pyarrow' in sys.modules and Problem.__name__ == 'Problem'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
