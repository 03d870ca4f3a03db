"""A made-up clock for the parts of plotboard that take one (schedule, early renders, pages)."""

from __future__ import annotations


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
