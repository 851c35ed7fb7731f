"""Legitimate PyTorch styles, written as edits of the reference solution (one source of truth): each must
score full marks on every check it can be graded by. See ``tests/test_styles.py``."""

from __future__ import annotations

from dataclasses import dataclass

from mistake_edits import ROOT, Mutation, mutated_source

SOLUTION = ROOT / "solutions" / "transformer.py"


@dataclass(frozen=True)
class Style:
    name: str
    description: str
    edits: tuple  # ((old, new), ...) applied to solutions/transformer.py


STYLES = (
    Style("lazy_linear", "the attention's projections are nn.LazyLinear, whose weights get their shapes on the first call", (
        ("        self.q_proj = nn.Linear(embed_dim, inner)\n        self.k_proj = nn.Linear(embed_dim, inner)\n"
         "        self.v_proj = nn.Linear(embed_dim, inner)\n        self.out_proj = nn.Linear(inner, embed_dim)\n",
         "        self.q_proj = nn.LazyLinear(inner)  # in_features (embed_dim) is found on the first call\n"
         "        self.k_proj = nn.LazyLinear(inner)\n        self.v_proj = nn.LazyLinear(inner)\n"
         "        self.out_proj = nn.LazyLinear(embed_dim)\n"),
    )),
    Style("torchscript", "TorchScript helpers: a scripted function and a scripted static method", (
        ("import math\n", "import math\nfrom typing import Optional\n"),
        ("import torch.nn.functional as F\n",
         "import torch.nn.functional as F\n\n\n@torch.jit.script\n"
         "def masked_softmax(scores: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:\n"
         "    if mask is not None:\n        scores = scores.masked_fill(~mask, float(\"-inf\"))\n"
         "    return torch.softmax(scores, dim=-1)\n"),
        ("    if mask is not None:\n        scores = scores.masked_fill(~mask, float(\"-inf\"))\n"
         "    weights = torch.softmax(scores, dim=-1)  # (..., Tq, Tk), normalised over the keys\n",
         "    weights = masked_softmax(scores, mask)  # (..., Tq, Tk), normalised over the keys\n"),
        ("    def forward(self, query, key, value, mask=None):\n",
         "    @staticmethod\n    @torch.jit.script\n"
         "    def split_heads(x: torch.Tensor, num_heads: int, key_dim: int) -> torch.Tensor:\n"
         "        B, T = x.shape[0], x.shape[1]\n"
         "        return x.view(B, T, num_heads, key_dim).transpose(1, 2)  # (B, nh, T, hs)\n\n"
         "    def forward(self, query, key, value, mask=None):\n"),
        ("q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)", "q = self.split_heads(self.q_proj(query), nh, hs)"),
        ("k = self.k_proj(key).view(B, Tk, nh, hs).transpose(1, 2)", "k = self.split_heads(self.k_proj(key), nh, hs)"),
        ("v = self.v_proj(value).view(B, Tk, nh, hs).transpose(1, 2)", "v = self.split_heads(self.v_proj(value), nh, hs)"),
    )),
    Style("layouts", "outputs in other memory layouts: non-contiguous views, channels-last weights, requires_grad set", (
        ("    output = weights @ value  # (..., Tq, dv)\n",
         "    output = (value.transpose(-2, -1) @ weights.transpose(-2, -1)).transpose(-2, -1)  # (..., Tq, dv), a view\n"),
        ("        return self.out_proj(y), weights\n",
         "        return self.out_proj(y), weights.contiguous(memory_format=torch.channels_last)  # NHWC strides\n"),
        ("        x = self.norm2(x + self.dropout2(self.ffn(x)))\n        return x\n",
         "        x = self.norm2(x + self.dropout2(self.ffn(x)))\n"
         "        return x.transpose(0, 1).contiguous().transpose(0, 1)  # (B, T, E), non-contiguous\n"),
        ("        return self.token_emb(tokens) + self.pos_emb(positions)  # (B, T, E)\n",
         "        return (self.token_emb(tokens) + self.pos_emb(positions)).requires_grad_()  # (B, T, E)\n"),
        ("        return self.head(pooled)  # (B, num_classes)\n",
         "        return self.head(pooled).t().contiguous().t()  # (B, num_classes), non-contiguous\n"),
    )),
    Style("subclass", "outputs of a torch.Tensor subclass of the submission's own", (
        ("import torch.nn.functional as F\n",
         "import torch.nn.functional as F\n\n\nclass Tagged(torch.Tensor):\n    \"\"\"A tensor type of its own.\"\"\"\n"),
        ("    output = weights @ value  # (..., Tq, dv)\n    return output, weights\n",
         "    output = weights @ value  # (..., Tq, dv)\n    return output.as_subclass(Tagged), weights.as_subclass(Tagged)\n"),
        ("        return self.out_proj(y), weights\n", "        return self.out_proj(y).as_subclass(Tagged), weights\n"),
        ("        return self.token_emb(tokens) + self.pos_emb(positions)  # (B, T, E)\n",
         "        return (self.token_emb(tokens) + self.pos_emb(positions)).as_subclass(Tagged)  # (B, T, E)\n"),
        ("        return self.head(pooled)  # (B, num_classes)\n",
         "        return self.head(pooled).as_subclass(Tagged)  # (B, num_classes)\n"),
    )),
    Style("padding_idx_zero", "the token embedding declares the padding id 0 as its padding_idx", (
        ("self.token_emb = nn.Embedding(vocab_size, embed_dim)",
         "self.token_emb = nn.Embedding(vocab_size, embed_dim, padding_idx=0)"),
    )),
    Style("reversed_order", "sub-modules registered in reverse order: every state_dict lists its entries differently", (
        ("        self.q_proj = nn.Linear(embed_dim, inner)\n        self.k_proj = nn.Linear(embed_dim, inner)\n"
         "        self.v_proj = nn.Linear(embed_dim, inner)\n        self.out_proj = nn.Linear(inner, embed_dim)\n",
         "        self.out_proj = nn.Linear(inner, embed_dim)\n        self.v_proj = nn.Linear(embed_dim, inner)\n"
         "        self.k_proj = nn.Linear(embed_dim, inner)\n        self.q_proj = nn.Linear(embed_dim, inner)\n"),
        ("        self.token_emb = nn.Embedding(vocab_size, embed_dim)\n        self.pos_emb = nn.Embedding(max_len, embed_dim)\n",
         "        self.pos_emb = nn.Embedding(max_len, embed_dim)\n        self.token_emb = nn.Embedding(vocab_size, embed_dim)\n"),
    )),
    Style("named_tuple", "attention returns a NamedTuple (output, weights), as some libraries do", (
        ("import math\n", "import math\nfrom typing import NamedTuple\n"),
        ("import torch.nn.functional as F\n",
         "import torch.nn.functional as F\n\n\nclass Attended(NamedTuple):\n"
         "    output: torch.Tensor\n    weights: torch.Tensor\n"),
        ("    return output, weights\n", "    return Attended(output, weights)\n"),
        ("        return self.out_proj(y), weights\n", "        return Attended(self.out_proj(y), weights)\n"),
    )),
)


def styled_source(style: Style) -> str:
    return mutated_source(Mutation(style.name, style.edits, ()), SOLUTION)


def style(name: str) -> Style:
    return next(s for s in STYLES if s.name == name)
