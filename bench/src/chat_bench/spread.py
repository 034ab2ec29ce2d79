"""A figure measured once per round: its median, its spread, and whether a verdict is inside that spread.

On a shared machine one round's ratio moves a lot (0.66-0.96 on an unchanged server), so
every comparison the report makes is a ratio per interleaved round, summarised by the
median and the range (min-max) of the rounds. A verdict whose target lies inside that
range is *inside the noise*: the rounds disagree, and another run may turn it. The same
holds for two figures: a difference whose range of ratios spans 1.0 is not a difference.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

MIN_ROUNDS = 3  # fewer rounds than this give no spread worth the name


@dataclass(frozen=True)
class Spread:
    """One figure per round (at least one)."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        """The spread of ``values``; ValueError when there are none."""
        found = tuple(values)
        if not found:
            raise ValueError("a spread needs at least one value")
        return cls(found)

    @property
    def median(self) -> float:
        """The median of the rounds: the figure the report states."""
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        """The lowest round."""
        return min(self.values)

    @property
    def high(self) -> float:
        """The highest round."""
        return max(self.values)

    def spans(self, target: float) -> bool:
        """Whether ``target`` lies within the rounds' range: the rounds do not agree which side it is."""
        return self.low <= target <= self.high

    def text(self, digits: int = 2, scale: float = 1.0) -> str:
        """``1.19 (1.05-1.30)``: the median, then the range of the rounds."""
        median, low, high = (value * scale for value in (self.median, self.low, self.high))
        return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def ratios(mine: Iterable[float], theirs: Iterable[float]) -> Spread:
    """In-round ratios ``mine / theirs`` (both one value per round, in the same order)."""
    return Spread.of(a / b for a, b in zip(mine, theirs, strict=True))


def verdict(spread: Spread, target: float, *, at_most: bool = True) -> str:
    """pass or FAIL on the median, marked *inside the noise* when the rounds' range spans ``target``."""
    ok = spread.median <= target if at_most else spread.median >= target
    word = "**pass**" if ok else "**FAIL**"
    if len(spread.values) > 1 and spread.spans(target):
        return f"{word} (inside the noise)"
    return word


def difference(spread: Spread) -> str:
    """How a ratio of two figures reads: ``inside the noise`` when its range spans 1.0 (one round
    exactly at 1.0 included: it is neither lower nor higher)."""
    if spread.spans(1.0):
        return "inside the noise"
    return "lower" if spread.median < 1.0 else "higher"
