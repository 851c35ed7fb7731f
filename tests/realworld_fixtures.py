"""Fixtures in the styles of published implementations, with what each must lose (``tests/submissions/realworld``).

Each is our own code in the style of a published implementation (its docstring names the source and the facts
it reproduces), with names and signatures adapted to the contract.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from autograder.authoring import solution_sections

DIRECTORY = Path(__file__).resolve().parent / "submissions" / "realworld"
SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


@dataclass(frozen=True)
class Fixture:
    file: str
    exercise: str
    lost: frozenset  # exactly the checks that lose points (training is not run here)
    hints: tuple = ()  # substrings the hints must contain
    # The file holds only the parts in the published style: the others are the reference solution's sections
    completed: bool = False

    def source(self) -> str:
        """The submission graded: the file, and where ``completed``, every section of the exercise's solution
        that defines none of the file's own top-level names."""
        own = (DIRECTORY / self.file).read_text()
        if not self.completed:
            return own
        names = {node.name for node in ast.parse(own).body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
        rest = [text for name, text in solution_sections(SOLUTIONS / f"{self.exercise}.py").items()
                if name not in names]
        return own + "\n\n" + "\n\n\n".join(rest) + "\n"


FIXTURES = (
    Fixture("transformer_mingpt.py", "transformer", frozenset({"mha.interface"})),  # fused c_attn, c_proj
    Fixture("transformer_per_head.py", "transformer", frozenset({"mha.interface"})),  # ModuleList of Head
    Fixture("transformer_d2l.py", "transformer", frozenset({"mha.interface", "embed.interface", "embed.values"}),
            ("sinusoidal", "multiplied by sqrt(embed_dim)")),
    Fixture("transformer_annotated.py", "transformer", frozenset({"block.interface", "block.values"}),
            ("pre-norm", "unbiased standard deviation")),
    Fixture("attention_rnn_nlp.py", "attention_rnn", frozenset({"ta.interface"})),  # score layer without bias
    # nn.Linear(bias=False) in a Sequential for SE's 1x1 convolutions; CBAM's MLP as fc.0, fc.2 without biases
    Fixture("cnn_attention_senet_luuuyi.py", "cnn_attention", frozenset({"se.interface", "channel.interface"}),
            completed=True),
    Fixture("vit_lucidrains.py", "vit", frozenset({"block.interface"}), completed=True),  # fused to_qkv, to_out.0
)
