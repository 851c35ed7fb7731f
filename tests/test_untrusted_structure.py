"""Does the grader take nothing the child says about its own structure on trust?

Each submission runs under the real sandbox and earns only what its own computation earns: the points of the
same mistake made plainly.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT, failed
from edits import FAST

from autograder.grading import grade_path
from autograder.param_map import map_params

pytestmark = pytest.mark.slow

TRANSFORMER = (ROOT / "solutions" / "transformer.py").read_text()
SEQ2SEQ = (ROOT / "solutions" / "seq2seq.py").read_text()


def edited(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_may_two_contract_layers_be_filled_from_one_tensor():
    """One tensor under two names fills one contract entry; a second contract entry it would fill is unmapped."""
    norm = np.ones(4)
    params = {"norm1.weight": norm, "norm2.weight": norm, "fc1.weight": np.ones((4, 4))}
    params["mlp.0.weight"] = params["fc1.weight"]  # the same layer inside a Sequential: honest, an extra name
    mapping = map_params(params, {}, {"norm1.weight": (4,), "norm2.weight": (4,), "fc1.weight": (4, 4)})
    assert set(mapping.values) == {"norm1.weight", "fc1.weight"}
    assert mapping.unmapped == ["norm2.weight"] and mapping.shared == {"norm2.weight": "norm1.weight"}
    apart = map_params({"norm1.weight": np.ones(4), "norm2.weight": np.ones(4)}, {},
                       {"norm1.weight": (4,), "norm2.weight": (4,)})
    assert not apart.unmapped  # equal values in two tensors are two layers


@pytest.mark.parametrize("exercise, source, trick, plain, part", [
    # the block's second norm is its first (registered twice), or its MLP normalises with norm1 again
    ("transformer", TRANSFORMER,
     ("        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)\n", "        self.norm2 = self.norm1\n"),
     ("x = self.norm2(x + self.dropout2(self.ffn(x)))", "x = self.norm1(x + self.dropout2(self.ffn(x)))"),
     "block"),
    # the decoder's cross-attention is done by its self-attention module
    ("seq2seq", SEQ2SEQ,
     ("        self.cross_attn = MultiHeadAttention(embed_dim, num_heads)\n",
      "        self.cross_attn = self.self_attn\n"),
     ("self.cross_attn(x, memory, memory", "self.self_attn(x, memory, memory"),
     "decoder"),
], ids=["transformer-norm", "seq2seq-cross-attention"])
def test_does_a_layer_declared_to_be_another_earn_nothing_the_plain_mistake_does_not(
        write, exercise, source, trick, plain, part):
    aliased = grade_path(write("aliased.py", edited(source, *trick)), exercise, **FAST)
    reused = grade_path(write("reused.py", edited(source, *plain)), exercise, **FAST)
    lost = failed(aliased)
    assert f"{part}.values" in lost, {k: v.message for k, v in lost.items()}
    assert aliased.score <= reused.score, (aliased.score, reused.score)
