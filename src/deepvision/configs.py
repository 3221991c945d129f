"""Configuration files, checked one way: typed dataclasses, and one strict loader.

A config is a dataclass. Its type hints say what each key holds; `bounded` fields carry a
numeric range; `__post_init__` checks the values (ranges, rules across fields), so a config
built in Python is checked the same as one read from a file (the manner of TRL's configs).
`from_dict` / `load_yaml` build one from a mapping: unknown keys, missing keys, wrong types
and out-of-range values raise `ConfigError` naming the dotted key path (`algorithm.lr`,
`stages[2].n`) and the file.

A `__post_init__` names the key at fault relative to its own dataclass (`ConfigError(...,
key="lr")`, or `UsageError(..., param="lr")`); the loader prefixes the path it was read at.
A type may define `from_config(raw, loader, key)` (a classmethod) to read its own YAML form.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from deepvision.errors import ConfigError, UsageError

__all__ = [
    "INTERNAL",
    "Config",
    "ConfigLoader",
    "bounded",
    "check_ranges",
    "from_dict",
    "join_key",
    "load_yaml",
    "options_of",
    "read_yaml",
    "type_name",
]

T = TypeVar("T")
_RANGE = "range"
# Fields with this metadata are set by code, never read from a file (e.g. the file's path).
INTERNAL = {"internal": True}


def bounded(
    default: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field holding a number in a range (checked by `check_ranges`; None passes)."""
    return dataclasses.field(default=default, metadata={_RANGE: (ge, gt, le, lt)})


def _range_text(ge, gt, le, lt) -> str:
    left = f"({gt}" if gt is not None else (f"[{ge}" if ge is not None else "(-inf")
    right = f"{lt})" if lt is not None else (f"{le}]" if le is not None else "inf)")
    return f"{left}, {right}"


def check_ranges(obj: Any) -> None:
    """ConfigError (key: the field) for the first `bounded` field of `obj` out of its range."""
    for f in dataclasses.fields(obj):
        bounds = f.metadata.get(_RANGE)
        v = getattr(obj, f.name)
        if bounds is None or v is None or isinstance(v, bool):
            continue
        ge, gt, le, lt = bounds
        if (
            (ge is not None and v < ge)
            or (gt is not None and v <= gt)
            or (le is not None and v > le)
            or (lt is not None and v >= lt)
        ):
            raise ConfigError(f"{v!r} is out of range {_range_text(*bounds)}", key=f.name)


@dataclasses.dataclass
class Config:
    """Base of config dataclasses: `__post_init__` checks the `bounded` ranges. Subclasses with
    their own checks call `super().__post_init__()` first."""

    def __post_init__(self) -> None:
        check_ranges(self)


def join_key(prefix: str, key: str | None) -> str:
    """`algorithm` + `lr` -> `algorithm.lr`; `stages` + `[2]` -> `stages[2]`."""
    if not key:
        return prefix
    if not prefix or key.startswith("["):
        return prefix + key
    return f"{prefix}.{key}"


def type_name(tp: Any) -> str:
    """A type hint as a config's reader would say it (`list of str`, `'a' | 'b'`)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"list of {type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    if tp is Path:
        return "path"
    if tp is Any:
        return "any value"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ConfigLoader:
    """Builds typed values from parsed YAML, naming `file` in every error; relative `Path`
    values resolve inside `base` when it is given (the config file's folder)."""

    def __init__(self, file: str | Path | None = None, base: Path | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.base = base

    def error(self, reason: str, key: str) -> ConfigError:
        return ConfigError(reason, key=key or None, file=self.file)

    def build(self, tp: Any, value: Any, key: str) -> Any:
        """`value` as type `tp` (a type hint); ConfigError naming `key` otherwise."""
        origin = typing.get_origin(tp)
        if tp is Any:
            return value
        if origin in (types.UnionType, typing.Union):
            args = typing.get_args(tp)
            if value is None and type(None) in args:
                return None
            if Path in args and isinstance(value, str):  # a value that may be a path is one
                return self.build(Path, value, key)
            for a in args:
                if a is type(None):
                    continue
                try:
                    return self.build(a, value, key)
                except ConfigError as exc:
                    if exc.key != (key or None):  # a deeper key is at fault: say that one
                        raise
            raise self.error(f"expected {type_name(tp)}, got {_short(value)}", key)
        if origin is Literal:
            if value in typing.get_args(tp) and type(value) is not bool:
                return value
            raise self.error(f"expected one of {type_name(tp)}, got {_short(value)}", key)
        if origin in (list, tuple):
            if isinstance(value, str | Path):  # a single path or name stands for a list of one
                value = [value]
            if not isinstance(value, list | tuple):
                raise self.error(f"expected {type_name(tp)}, got {_short(value)}", key)
            item = typing.get_args(tp)[0]
            items = [self.build(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
            return items if origin is list else tuple(items)
        if origin is dict:
            if not isinstance(value, dict):
                raise self.error(f"expected a mapping, got {_short(value)}", key)
            args = typing.get_args(tp)
            if not args or args[1] is Any:
                return dict(value)
            return {k: self.build(args[1], v, join_key(key, str(k))) for k, v in value.items()}
        if isinstance(tp, type) and hasattr(tp, "from_config"):
            return tp.from_config(value, self, key)
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, value, key)
        if tp is bool and isinstance(value, bool):
            return value
        if tp is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if tp is float and isinstance(value, str):  # YAML 1.1 reads `1e-6` (no dot) as a str
            try:
                return float(value)
            except ValueError:
                pass
        if tp is str and isinstance(value, str):
            return value
        if tp is Path and isinstance(value, str | Path) and str(value):
            path = Path(value)
            if self.base is not None and not path.is_absolute():
                path = self.base / path
            return path
        raise self.error(f"expected {type_name(tp)}, got {_short(value)}", key)

    def dataclass(self, cls: type[T], raw: Any, key: str = "") -> T:
        """An instance of dataclass `cls` from a mapping: every key known, every required key
        given, every value of its type; then `cls.__post_init__` checks the values."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise self.error(f"expected a mapping, got {_short(raw)}", key)
        hints = typing.get_type_hints(cls)
        fields = {
            f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("internal")
        }
        for name in raw:
            if name not in fields:
                known = ", ".join(sorted(fields))
                raise self.error(f"unknown key (known here: {known})", join_key(key, str(name)))
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and name not in raw:
                raise self.error("required key is missing", join_key(key, name))
        kwargs = {name: self.build(hints[name], v, join_key(key, name)) for name, v in raw.items()}
        return self.construct(cls, kwargs, key)

    def construct(self, cls: Callable[..., T], kwargs: dict[str, Any], key: str = "") -> T:
        """`cls(**kwargs)`, its own checks' errors placed at `key`."""
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(
                exc.reason, key=join_key(key, exc.key) or None, file=exc.file or self.file
            ) from None
        except UsageError as exc:
            raise self.error(exc.reason, join_key(key, exc.param)) from None


def from_dict(
    cls: type[T],
    raw: Any,
    *,
    file: str | Path | None = None,
    base: Path | None = None,
    key: str = "",
) -> T:
    """Config dataclass `cls` from a parsed mapping (see `ConfigLoader.dataclass`)."""
    return ConfigLoader(file, base).dataclass(cls, raw, key)


def read_yaml(path: str | Path) -> Any:
    """The parsed content of a YAML file; ConfigError naming the file if it cannot be read."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(path)) from None


def load_yaml(cls: type[T], path: str | Path, *, relative_paths: bool = False) -> T:
    """Config dataclass `cls` from a YAML file (an empty file gives the defaults). With
    `relative_paths`, relative `Path` values resolve inside the file's folder."""
    path = Path(path)
    return from_dict(cls, read_yaml(path), file=path, base=path.parent if relative_paths else None)


def options_of(name: str, *functions: Callable[..., Any], skip: tuple[str, ...] = ()) -> type:
    """A dataclass type (named `name`) of the keyword parameters of `functions` (their type
    hints and defaults), less `skip`: the settings a config file may give a callable."""
    specs: dict[str, tuple[Any, Any]] = {}
    for fn in functions:
        hints = inspect.get_annotations(fn, eval_str=True)
        for p in inspect.signature(fn).parameters.values():
            if p.name in skip or p.name in ("self", "cls") or p.name in specs:
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            hint = hints.get(p.name, Any)
            default = p.default
            if default is inspect.Parameter.empty:
                f = dataclasses.field()
            elif isinstance(default, list | dict | set):
                f = dataclasses.field(default_factory=lambda d=default: type(d)(d))
            else:
                f = dataclasses.field(default=default)
            specs[p.name] = (hint, f)

    def is_required(f: dataclasses.Field) -> bool:
        return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING

    ordered = sorted(specs.items(), key=lambda item: not is_required(item[1][1]))
    return dataclasses.make_dataclass(name, [(n, tp, f) for n, (tp, f) in ordered])
