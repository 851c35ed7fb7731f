"""Fixtures in the styles of published implementations, with what each must lose (``tests/submissions/realworld``).

Each is our own code in the style of a published implementation (its docstring names the source and the facts
it reproduces), with names and signatures adapted to the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent / "submissions" / "realworld"


@dataclass(frozen=True)
class Fixture:
    file: str
    exercise: str
    lost: frozenset  # exactly the checks that lose points (training is not run here)
    hints: tuple = ()  # substrings the hints must contain


FIXTURES = (
    Fixture("transformer_mingpt.py", "transformer", frozenset({"mha.interface"})),  # fused c_attn, c_proj
    Fixture("transformer_per_head.py", "transformer", frozenset({"mha.interface"})),  # ModuleList of Head
    Fixture("transformer_d2l.py", "transformer", frozenset({"mha.interface", "embed.interface", "embed.values"}),
            ("sinusoidal", "multiplied by sqrt(embed_dim)")),
    Fixture("transformer_annotated.py", "transformer", frozenset({"block.interface", "block.values"}),
            ("pre-norm", "unbiased standard deviation")),
    Fixture("attention_rnn_nlp.py", "attention_rnn", frozenset({"ta.interface"})),  # score layer without bias
)
