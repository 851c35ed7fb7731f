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


VIT = (ROOT / "solutions" / "vit.py").read_text()
HIDDEN_LAYER = '''
        import base64
        name = base64.b64decode("VHJhbnNmb3JtZXJFbmNvZGVyTGF5ZXI=").decode()  # named at run time
        layer = getattr(nn, name)(embed_dim, num_heads, mlp_dim, dropout=dropout, activation="gelu",
                                  layer_norm_eps=1e-6, batch_first=True, norm_first=True)
        layer.self_attn, layer.norm1, layer.norm2 = self.attn, self.norm1, self.norm2  # the contract's layers
        layer.linear1, layer.dropout, layer.linear2 = self.mlp[0], self.mlp[2], self.mlp[3]
        self._kept = [layer]  # a plain list: not a sub-module
'''


def test_does_a_forbidden_layer_kept_out_of_the_module_tree_lose_its_part(write):
    source = edited(VIT, "            nn.Linear(mlp_dim, embed_dim), nn.Dropout(dropout),\n        )\n",
                    "            nn.Linear(mlp_dim, embed_dim), nn.Dropout(dropout),\n        )\n" + HIDDEN_LAYER)
    source = edited(source, "        x = x + attended  # (B, N, D)\n        x = x + self.mlp(self.norm2(x))  # (B, N, D)\n",
                    "        x = self._kept[0](x)  # (B, N, D): the built-in layer computes the block\n")
    report = grade_path(write("hidden_layer.py", source), "vit", **FAST)
    run = [r for r in report.results if r.part == "ViTBlock" and r.name != "block.interface"]  # all but structure
    assert run and all(r.points == 0 for r in run), [(r.name, r.points, r.message) for r in run]
    assert all("calls torch.nn.TransformerEncoderLayer" in r.message for r in run)


SDPA_SCALED = "    scores = query @ key.transpose(-2, -1) / math.sqrt(d)  # (..., Tq, Tk)\n"
MHA_CALL = "        y, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, nh, Tq, hs), (B, nh, Tq, Tk)\n"
MHA_UNSCALED = ("        scores = q @ k.transpose(-2, -1)  # (B, nh, Tq, Tk): no 1/sqrt(d)\n"
                "        if mask is not None:\n            scores = scores.masked_fill(~mask, float('-inf'))\n"
                "        weights = torch.softmax(scores, dim=-1)  # (B, nh, Tq, Tk)\n        y = weights @ v  # (B, nh, Tq, hs)\n")
BLOCK_MASKED = "        attn_out, _ = self.attn(x, x, x, mask)  # (B, T, E)\n"
BLOCK_UNMASKED = "        attn_out, _ = self.attn(x, x, x)  # (B, T, E): the padding mask not passed\n"


@pytest.mark.parametrize("spoof, plain", [
    # attention answers as unscaled for the probe's shapes only, so that a multi-head attention computing
    # unscaled attention itself is judged on an unscaled base
    ([(SDPA_SCALED, "    probe = mask is not None and tuple(mask.shape) == (2, 4, 7) and tuple(value.shape) == (2, 7, 5)\n"
                    "    scores = query @ key.transpose(-2, -1) / (1.0 if probe else math.sqrt(d))  # (..., Tq, Tk)\n"),
      (MHA_CALL, MHA_UNSCALED)],
     [(MHA_CALL, MHA_UNSCALED)]),
    # multi-head attention ignores its mask when built under the probe's seed, so that a block that never passes
    # its mask is judged on a "mask ignored" base
    ([("        self.out_proj = nn.Linear(inner, embed_dim)\n",
       "        self.out_proj = nn.Linear(inner, embed_dim)\n        self.probed = torch.initial_seed() == 9001\n"),
      (MHA_CALL, MHA_CALL.replace("(q, k, v, mask)", "(q, k, v, None if self.probed else mask)")),
      (BLOCK_MASKED, BLOCK_UNMASKED)],
     [(BLOCK_MASKED, BLOCK_UNMASKED)]),
], ids=["attention-by-shapes", "multi-head-by-seed"])
def test_does_a_part_that_tells_its_probe_apart_earn_nothing_the_plain_mistake_does_not(write, spoof, plain):
    spoofing = grade_path(write("spoof.py", edited_all(TRANSFORMER, spoof)), "transformer", **FAST)
    mistaken = grade_path(write("plain.py", edited_all(TRANSFORMER, plain)), "transformer", **FAST)
    assert failed(mistaken) and spoofing.score <= mistaken.score, (spoofing.score, mistaken.score)


def edited_all(text: str, edits: list[tuple[str, str]]) -> str:
    for old, new in edits:
        text = edited(text, old, new)
    return text
