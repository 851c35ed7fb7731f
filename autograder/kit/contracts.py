"""Contract pieces that several exercises share: the attention module their blocks are built on, under the
names of the attention exercise's ``MultiHeadAttention`` (four projections) or as PyTorch's
``nn.MultiheadAttention`` (packed projections, mapped by ``param_map``)."""

from __future__ import annotations

from ..contract import Deviations, linear_params


def attention_params(prefix: str, dim: int) -> dict:
    """The attention's projections under the transformer exercise's names; ``nn.MultiheadAttention``'s packed
    ``in_proj_weight`` (3D, D) maps onto q_proj, k_proj, v_proj in that order (``param_map``)."""
    shapes = {}
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        shapes.update(linear_params(f"{prefix}{name}", dim, dim))
    return shapes


ATTENTION_TEXT = ("nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True), or the transformer "
                  "exercise's MultiHeadAttention(embed_dim, num_heads)")


def attention_deviations(reply, what: Deviations, dim: int, heads: int, path: str = "attn",
                         text: str = ATTENTION_TEXT) -> None:
    """``path``: nn.MultiheadAttention(dim, heads, batch_first=True), or a MultiHeadAttention with the
    transformer exercise's four projections (dim -> dim)."""
    attn = reply.modules.get(path)
    kind = attn.get("type") if isinstance(attn, dict) else None
    if kind == "MultiheadAttention":
        what.module(reply, path, "MultiheadAttention", embed_dim=dim, num_heads=heads, batch_first=True)
        what.params(reply, {f"{path}.in_proj_weight": (3 * dim, dim), f"{path}.in_proj_bias": (3 * dim,),
                            f"{path}.out_proj.weight": (dim, dim), f"{path}.out_proj.bias": (dim,)})
    elif kind is None:
        what.check(False, f"no sub-module {path!r} (expected {text})")
    else:
        what.params(reply, attention_params(f"{path}.", dim))
