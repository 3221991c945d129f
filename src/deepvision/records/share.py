"""The rule for a figure over a set some of whose items were not decided.

A proportion (accuracy, pass rate) is a result only when every item of the set was decided. When
some were not (a judge call failed, an inference item errored, a check could not run in time),
the figure over the decided items alone is not the result: `Share` then reports the bounds that
are true whatever the undecided items turn out to be, and the over-decided figure only with its
label. Every summary that prints or writes a proportion goes through `Share`.

    >>> s = Share(hits=267, decided=366, total=600)
    >>> s.partial, s.value, s.bounds
    (True, None, (0.445, 0.835))
    >>> s.text()
    'partial: 44.50%-83.50% (234 of 600 undecided; 72.95% of the 366 decided)'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Share"]


@dataclass(frozen=True)
class Share:
    """`hits` of the `decided` items, in a set of `total` items (decided <= total)."""

    hits: int
    decided: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.hits <= self.decided <= self.total:
            raise ValueError(
                f"need 0 <= hits <= decided <= total, got {self.hits}, {self.decided}, {self.total}"
            )

    @property
    def undecided(self) -> int:
        return self.total - self.decided

    @property
    def partial(self) -> bool:
        return self.decided < self.total

    @property
    def value(self) -> float | None:
        """The proportion over the whole set; None while any item is undecided (or the set is
        empty)."""
        if self.partial or not self.total:
            return None
        return self.hits / self.total

    @property
    def bounds(self) -> tuple[float, float] | None:
        """What the whole-set figure is at least and at most (every undecided item wrong /
        right); equal to (value, value) when nothing is undecided. None for an empty set."""
        if not self.total:
            return None
        return (self.hits / self.total, (self.hits + self.undecided) / self.total)

    @property
    def over_decided(self) -> float | None:
        return self.hits / self.decided if self.decided else None

    def text(self, digits: int = 2) -> str:
        """`44.50% (600 of 600)` when whole; a `partial: lo%-hi% (...)` line otherwise."""

        def pct(x: float) -> str:
            return f"{100 * x:.{digits}f}%"

        if not self.total:
            return "n/a (empty set)"
        if not self.partial:
            return f"{pct(self.hits / self.total)} ({self.total} of {self.total})"
        lo, hi = self.bounds or (0.0, 0.0)
        tail = f"; {pct(self.over_decided)} of the {self.decided} decided" if self.decided else ""
        return f"partial: {pct(lo)}-{pct(hi)} ({self.undecided} of {self.total} undecided{tail})"

    def to_json(self) -> dict[str, Any]:
        """For summary files: `value` is null while partial, so no reader takes a partial figure
        for the result; the bounds and the over-decided figure are there, labelled."""
        bounds = self.bounds
        return {
            "value": self.value,
            "partial": self.partial,
            "hits": self.hits,
            "decided": self.decided,
            "total": self.total,
            "lower_bound": bounds[0] if bounds else None,
            "upper_bound": bounds[1] if bounds else None,
            "over_decided": self.over_decided,
        }
