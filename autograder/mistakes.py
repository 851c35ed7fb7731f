"""Known mistakes, each declared once, in its exercise's ``mistakes.py`` (or, for a part several exercises share,
in ``autograder/kit``): its name, the part it is made in, the hint that names it, and the switch of the exercise's
float64 reference that reproduces it.

Everything else reads the declaration: the checks raise ``mistake.hint``, the hidden checks build their switch
tables with ``switch_table``, the tests' edit that makes the mistake is keyed by ``mistake.name`` (and must earn
that hint), and the README's cascade table is generated from those edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator


@dataclass(frozen=True)
class Mistake:
    """One known mistake. ``switch`` is the reference's keyword argument and the value that reproduces the mistake
    (``("scale", "none")``), or None where no switch does (a mistake named by a behaviour check)."""

    name: str
    part: str
    hint: str
    switch: tuple[str, Any] | None = None

    def __post_init__(self):
        if not self.name.isidentifier() or not self.hint.strip():
            raise ValueError(f"a mistake needs an identifier-like name and a hint: {self.name!r}, {self.hint!r}")
        if self.switch is not None and (len(self.switch) != 2 or not isinstance(self.switch[0], str)):
            raise ValueError(f"mistake {self.name}: switch is (keyword, value), not {self.switch!r}")


class Mistakes:
    """An exercise's declared mistakes, by name (each name and each hint once)."""

    def __init__(self, *mistakes: Mistake):
        self._by_name: dict[str, Mistake] = {}
        hints: dict[str, str] = {}
        for mistake in mistakes:
            if mistake.name in self._by_name:
                raise ValueError(f"mistake {mistake.name} is declared twice")
            if mistake.hint in hints:
                raise ValueError(f"mistakes {hints[mistake.hint]} and {mistake.name} share one hint")
            self._by_name[mistake.name] = mistake
            hints[mistake.hint] = mistake.name

    def __iter__(self) -> Iterator[Mistake]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Mistake:
        return self._by_name[name]

    def __add__(self, other: Mistakes) -> Mistakes:
        return Mistakes(*self, *other)


def switch_table(*mistakes: Mistake) -> dict[str, list[tuple[Any, str]]]:
    """A reference's switch table, from declarations: keyword -> [(value, hint), ...] in the order given (the
    form ``kit.common.Reference`` takes)."""
    table: dict[str, list[tuple[Any, str]]] = {}
    for mistake in mistakes:
        if mistake.switch is None:
            raise ValueError(f"mistake {mistake.name} has no switch of the reference")
        keyword, value = mistake.switch
        table.setdefault(keyword, []).append((value, mistake.hint))
    return table
