"""Checks and their results, as data.

A ``Check`` names a function that receives a ``Context`` and either returns (pass) or raises ``CheckFailure``
with a message and, when the submission matches a known mistake, a named hint. Each check earns its own
points: the score is partial by construction.

Text that can come from a submission (notes, check messages quoting its exceptions, hints, the file's name) is
made one line when it is recorded (``one_line``): newlines and other control characters are shown escaped, and
long text is cut. Every report format then gets it clean, and no note can forge a line of a text report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable

MAX_TEXT = 500  # characters of one note, message or hint
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: object, limit: int = MAX_TEXT) -> str:
    """``text`` as one printable line of at most ``limit`` characters.

    Newlines, tabs and every other character that is not printable (control and format characters, line and
    paragraph separators, lone surrogates, spaces other than " ") are shown escaped as Python would write them
    (``\\n``, ``\\x1b``, ``\\u2028``); longer text ends in "...". Applying it twice changes nothing.
    """
    text = str(text)[: limit + 1]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _NAMED_ESCAPES.get(c) or ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TextLines(list):
    """A list of one-line texts: whatever is added goes through ``one_line``."""

    def __init__(self, items: Iterable[object] = ()):
        super().__init__(one_line(x) for x in items)

    def append(self, item: object) -> None:
        super().append(one_line(item))

    def extend(self, items: Iterable[object]) -> None:
        super().extend(one_line(x) for x in items)

    def insert(self, index, item: object) -> None:
        super().insert(index, one_line(item))

    def __setitem__(self, index, item) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, [one_line(x) for x in item])
        else:
            super().__setitem__(index, one_line(item))

    def __iadd__(self, items: Iterable[object]) -> TextLines:
        self.extend(items)
        return self


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


class Uncomparable(CheckFailure):
    """What a part computes cannot be compared with its reference at all (the reference needs parameters the
    submission lacks under the contract's names), as opposed to compared and matching no known function."""


class Unverifiable(CheckFailure):
    """The submission says two of the contract's layers are one (one module registered under both names): what
    the part computes cannot be verified, and it counts as no recognised function (its behaviour pays nothing)."""


# The order checks run and are reported in, within a part: shape first, then values, then behaviour.
KINDS = ("interface", "shapes", "values", "behaviour", "gradients", "training")


@dataclass(frozen=True)
class Check:
    name: str  # "mha.values"
    part: str  # the exercise's name being checked: "MultiHeadAttention"
    points: float
    description: str
    run: Callable  # run(ctx) -> None, raises CheckFailure
    hidden: bool = False
    timeout: float = 60.0
    kind: str = "values"  # one of KINDS

    @property
    def training(self) -> bool:
        return self.kind == "training"


class CheckSet:
    """An exercise's checks, each declared once beside its code with its points, visibility and kind::

        CHECKS = CheckSet(PARTS)

        @CHECKS.check("sdpa.shapes", SDPA, 2, "output and weights have the right shapes", kind="shapes")
        def sdpa_shapes(ctx): ...

    The order follows from the declarations: by part (in the order of ``parts``), then by kind (``KINDS``),
    then as declared. The hidden checks register into the same set from the exercise's ``hidden`` module.
    """

    def __init__(self, parts: tuple[str, ...]):
        self.parts = tuple(parts)
        self._checks: list[Check] = []

    def check(self, name: str, part: str, points: float, description: str, *, kind: str, hidden: bool = False,
              timeout: float | None = None):
        """Declare a check. ``timeout``: its time budget in seconds (default 60); a training check's is its training
        profile's (``TrainingProfile.timeout``), so it takes none here."""
        if kind == "training" and timeout is not None:
            raise ValueError(f"check {name}: a training check's time limit is its profile's (TrainingProfile.timeout)")
        if timeout is None:  # a training check without a profile (none is ever run so) keeps the profiles' default
            timeout = 300.0 if kind == "training" else 60.0
        if kind not in KINDS:
            raise ValueError(f"check {name}: kind {kind!r} is not one of {KINDS}")
        if part not in self.parts:
            raise ValueError(f"check {name}: part {part!r} is not one of {self.parts}")
        if any(c.name == name for c in self._checks):
            raise ValueError(f"check {name} is declared twice")

        def register(run: Callable) -> Callable:
            self._checks.append(Check(name=name, part=part, points=points, description=description, run=run,
                                      hidden=hidden, timeout=timeout, kind=kind))
            return run

        return register

    def ordered(self) -> tuple[Check, ...]:
        declared = {c.name: i for i, c in enumerate(self._checks)}
        return tuple(sorted(self._checks, key=lambda c: (self.parts.index(c.part), KINDS.index(c.kind),
                                                         declared[c.name])))


@dataclass
class CheckResult:
    """The outcome of one check; ``message`` and ``hint`` are kept one line (``one_line``) however they are set."""

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

    def __setattr__(self, name: str, value) -> None:
        if name == "message" or (name == "hint" and value is not None):
            value = one_line(value)
        super().__setattr__(name, value)


@dataclass
class Report:
    """A submission's results; ``submission``, ``notes`` and ``grader_errors`` hold one-line texts only."""

    exercise: str
    submission: str
    results: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=TextLines)  # about the submission as a whole (syntax errors, ...)
    artifacts: dict = field(default_factory=dict)  # e.g. the training curve, for plotting
    grader_errors: list[str] = field(default_factory=TextLines)  # the grader's own failures (exit status 2)

    def __setattr__(self, name: str, value) -> None:
        if name in ("notes", "grader_errors"):
            value = TextLines(value)
        elif name == "submission":
            value = one_line(value)
        super().__setattr__(name, value)

    @property
    def score(self) -> float:
        return round(sum(r.points for r in self.results), 6)

    @property
    def max_score(self) -> float:
        return round(sum(r.max_points for r in self.results), 6)

    def part_score(self, part: str) -> tuple[float, float]:
        rs = [r for r in self.results if r.part == part]
        return sum(r.points for r in rs), sum(r.max_points for r in rs)
