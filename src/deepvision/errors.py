"""Exception types of the toolkit; the CLI turns them into one readable line and an exit code."""

from __future__ import annotations


class DeepVisionError(Exception):
    """Base of every error the toolkit raises on purpose (not a bug)."""

    exit_code = 1


class UsageError(DeepVisionError):
    """The caller asked for something that cannot be done (bad option, existing output)."""

    exit_code = 2


class DataError(DeepVisionError):
    """Input data is malformed; the message names the file, the row/line, the column and why."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.row = row
        self.column = column
        super().__init__(self._format())

    def __reduce__(self):  # keep the place across process boundaries (worker pools)
        return (_rebuild_data_error, (self.reason, self.file, self.row, self.column))

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


def _rebuild_data_error(reason: str, file: str | None, row: int | None, column: str | None):
    return DataError(reason, file=file, row=row, column=column)
