"""Every exception the toolkit raises on purpose, in one tree; the CLI turns each into one
readable line and an exit code (a traceback is for bugs only, shown with `--debug`).

    DeepVisionError                 exit 1: the job could not be done as asked
    ├── UsageError                  exit 2: a bad argument or option (`param` names it)
    │   └── ConfigError             a bad recipe / pipeline YAML (`key` is its dotted path)
    ├── DataError                   malformed input: names file, row or line, column, why
    │   ├── ImageFormatError        image bytes that are not a well-formed image
    │   └── UnusableRecordError     a benchmark record that is excluded and named, never fatal
    ├── EndpointError               a model endpoint failed (`retryable`, `retry_after`)
    │   └── ReplyError              a 200 reply that is not a usable completion
    ├── ServeError                  a model server could not be started or kept running
    ├── ReplyParseError             a model's reply to a curation prompt could not be parsed
    ├── EvalError                   an evaluation run cannot go on (its folder, its benchmark)
    ├── TrainError                  a training run cannot start (engine missing, bad layout)
    └── QuickstartError             a step of `deepvision quickstart` failed

Library messages name parameters as the Python API spells them (`chunk_size`); the CLI shows
the matching flag (`--chunk-size`) through `UsageError.param`.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "DeepVisionError",
    "EndpointError",
    "EvalError",
    "ImageFormatError",
    "QuickstartError",
    "ReplyError",
    "ReplyParseError",
    "ServeError",
    "TrainError",
    "UnusableRecordError",
    "UsageError",
]


class DeepVisionError(Exception):
    """Base of every error the toolkit raises on purpose (not a bug)."""

    exit_code = 1


class UsageError(DeepVisionError):
    """The caller asked for something that cannot be done (bad argument, existing output).

    `param` is the Python name of the argument at fault (`chunk_size`); the message does not
    repeat it. `str()` reads `chunk_size: must be >= 1`; the CLI shows `--chunk-size: ...`."""

    exit_code = 2

    def __init__(self, reason: str, *, param: str | None = None) -> None:
        self.reason = reason
        self.param = param
        super().__init__(f"{param}: {reason}" if param else reason)

    def __reduce__(self):
        return (_rebuild, (type(self), self.reason, {"param": self.param}))

    def for_cli(self, flags: dict[str, str] | None = None) -> str:
        """The message with `param` shown as the command-line flag that sets it."""
        if not self.param:
            return self.reason
        flag = (flags or {}).get(self.param) or "--" + self.param.replace("_", "-")
        return f"{flag}: {self.reason}"


class ConfigError(UsageError):
    """A recipe or pipeline configuration is invalid; `key` is the dotted path at fault
    (`algorithm.clip_ratio_low`) and `file` the YAML it came from, when known."""

    def __init__(self, reason: str, *, key: str | None = None, file: str | None = None) -> None:
        self.key = key
        self.file = file
        where = ": ".join(x for x in (file, key) if x)
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason

    def __reduce__(self):
        return (_rebuild, (type(self), self.reason, {"key": self.key, "file": self.file}))

    def for_cli(self, flags: dict[str, str] | None = None) -> str:
        return str(self)


class DataError(DeepVisionError):
    """Input data is malformed; the message names the file, the row/line, the column and why."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.row = row
        self.column = column
        self.line = line
        super().__init__(self._format())

    def __reduce__(self):  # keep the place across process boundaries (worker pools)
        kwargs = {"file": self.file, "row": self.row, "column": self.column, "line": self.line}
        return (_rebuild, (type(self), self.reason, kwargs))

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"{self.file}:{self.line}" if self.line is not None else str(self.file))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class ImageFormatError(DataError):
    """Image bytes that are not a well-formed image of the format they claim."""


class EndpointError(DeepVisionError):
    """A request to a model endpoint failed. `retryable` says whether trying again later may
    help (429, 5xx, timeouts, resets); `retry_after` is the server's own hint, in seconds."""

    def __init__(
        self, reason: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(reason)

    def __reduce__(self):
        kwargs = {"retryable": self.retryable, "retry_after": self.retry_after}
        return (_rebuild, (type(self), self.reason, kwargs))


class ReplyError(EndpointError):
    """An HTTP 200 reply that is not a usable chat completion (bad JSON, no choices, a null
    message or content, a `usage` of the wrong type, a body over the size limit)."""


class ServeError(DeepVisionError):
    """A model server could not be started, or stopped while it was needed."""


class ReplyParseError(DeepVisionError):
    """A model's reply could not be parsed into the structure a curation prompt asked for."""


class EvalError(DeepVisionError):
    """An evaluation cannot go on: a run folder written by another configuration, a benchmark
    that cannot be found, a report that cannot be built."""


class TrainError(DeepVisionError):
    """A training run cannot start: the engine is not installed, a file it needs is missing."""


class QuickstartError(DeepVisionError):
    """A step of `deepvision quickstart` failed; the message names the step and its log."""


class UnusableRecordError(DataError):
    """A benchmark record no data folder can make usable (no question, no gold, a repeated
    id): the loader excludes it from the set and names it; it never stops a run."""


class SenderGone(DeepVisionError):
    """A sender process of `infer` ended before it answered an attempt: that is no answer, and
    the attempt is made again (from the main process when no sender is left)."""


def _rebuild(cls: type[DeepVisionError], reason: str, kwargs: dict) -> DeepVisionError:
    return cls(reason, **kwargs)
