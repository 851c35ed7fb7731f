"""Checks and their results, as data.

A ``Check`` names a function that receives a ``Context`` and either returns (pass) or raises ``CheckFailure``
with a message and, when the submission matches a known mistake, a named hint. Each check earns its own
points: the score is partial by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"  # the submission ran out of this check's time budget
    ERROR = "error"  # the submission raised or crashed during the check
    SKIPPED = "skipped"  # not run (for example --skip-training); earns nothing, and says so


class CheckFailure(Exception):
    """A check found a problem; ``message`` says what and where, ``hint`` names a known mistake."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Check:
    name: str  # "mha.values"
    part: str  # the exercise's name being checked: "MultiHeadAttention"
    points: float
    description: str
    run: Callable  # run(ctx) -> None, raises CheckFailure
    hidden: bool = False
    timeout: float = 60.0
    training: bool = False


@dataclass
class CheckResult:
    name: str
    part: str
    description: str
    points: float
    max_points: float
    status: Status
    message: str = ""
    hint: str | None = None
    hidden: bool = False
    seconds: float = 0.0


@dataclass
class Report:
    exercise: str
    submission: str
    results: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the submission as a whole (syntax errors, ...)
    artifacts: dict = field(default_factory=dict)  # e.g. the training curve, for plotting
    grader_errors: list[str] = field(default_factory=list)  # the grader's own failures (exit status 2)

    @property
    def score(self) -> float:
        return round(sum(r.points for r in self.results), 6)

    @property
    def max_score(self) -> float:
        return round(sum(r.max_points for r in self.results), 6)

    def part_score(self, part: str) -> tuple[float, float]:
        rs = [r for r in self.results if r.part == part]
        return sum(r.points for r in rs), sum(r.max_points for r in rs)
