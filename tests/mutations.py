"""Known mistakes, written as edits of the reference solution, with the checks and hint each must trip.

Each edit is (old, new); a test asserts ``old`` occurs in ``solutions/transformer.py`` so that a change of the
reference cannot silently turn a bug into a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    edits: tuple  # ((old, new), ...)
    failing: tuple  # checks that must lose their points
    hint: str = ""  # a substring of a hint that must be named ("" = no named hint required)


TRANSFORMER = (
    Mutation("no_scaling", (("scores = query @ key.transpose(-2, -1) / math.sqrt(d)", "scores = query @ key.transpose(-2, -1)"),),
             ("sdpa.values", "sdpa.mask", "mha.values"), "no 1/sqrt(d) scaling"),
    Mutation("scale_by_value_dim", (("d = query.size(-1)", "d = value.size(-1)"),),
             ("sdpa.values",), "wrong dimension"),
    Mutation("scale_by_embed_dim", (("q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)  # (B, nh, Tq, hs)",
                                      "q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2) * math.sqrt(hs / E)"),),
             ("mha.values", "block.values"), "1/sqrt(embed_dim)"),
    Mutation("softmax_wrong_axis", (("weights = torch.softmax(scores, dim=-1)", "weights = torch.softmax(scores, dim=-2)"),),
             ("sdpa.weights_sum", "sdpa.values", "mha.values"), "softmax over the wrong axis"),
    Mutation("mask_inverted", (("scores.masked_fill(~mask,", "scores.masked_fill(mask,"),),
             ("sdpa.mask", "mha.mask", "block.padding"), "mask inverted"),
    Mutation("mask_ignored", (("if mask is not None:\n        scores", "if False:\n        scores"),),
             ("sdpa.mask", "mha.mask", "block.padding", "clf.padding"), "mask ignored"),
    Mutation("heads_without_transpose", (
        ("q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)", "q = self.q_proj(query).view(B, nh, Tq, hs)"),
        ("k = self.k_proj(key).view(B, Tk, nh, hs).transpose(1, 2)", "k = self.k_proj(key).view(B, nh, Tk, hs)"),
        ("v = self.v_proj(value).view(B, Tk, nh, hs).transpose(1, 2)", "v = self.v_proj(value).view(B, nh, Tk, hs)"),
        ("y = y.transpose(1, 2).reshape(B, Tq, nh * hs)", "y = y.reshape(B, Tq, nh * hs)"),
    ), ("mha.values", "block.values"), "without the transpose"),
    Mutation("no_residual", (
        ("x = self.norm1(x + self.dropout1(attn_out))", "x = self.norm1(self.dropout1(attn_out))"),
        ("x = self.norm2(x + self.dropout2(self.ffn(x)))", "x = self.norm2(self.dropout2(self.ffn(x)))"),
    ), ("block.values",), "no residual"),
    Mutation("pre_norm", (
        ("attn_out, _ = self.attn(x, x, x, mask)  # (B, T, E)\n        x = self.norm1(x + self.dropout1(attn_out))\n"
         "        x = self.norm2(x + self.dropout2(self.ffn(x)))",
         "h = self.norm1(x)\n        x = x + self.dropout1(self.attn(h, h, h, mask)[0])\n"
         "        x = x + self.dropout2(self.ffn(self.norm2(x)))"),
    ), ("block.values",), "pre-norm"),
    Mutation("no_position_embedding", (("return self.token_emb(tokens) + self.pos_emb(positions)", "return self.token_emb(tokens)"),),
             ("embed.values", "clf.values"), "no position embedding"),
    Mutation("padding_in_mean", (("pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)", "pooled = x.mean(1)"),),
             ("clf.values", "clf.padding"), "padding included in the mean"),
)

# One bug for each check that the mistakes above do not already catch: every check has a submission that
# fails it.
CHECK_BUGS = (
    Mutation("sdpa_without_mask_argument", (("def scaled_dot_product_attention(query, key, value, mask=None):",
                                              "def scaled_dot_product_attention(query, key, value):"),
                                             ("if mask is not None:\n        scores", "if False:\n        scores"),
                                             ("y, weights = scaled_dot_product_attention(q, k, v, mask)",
                                              "y, weights = scaled_dot_product_attention(q, k, v)")),
             ("sdpa.interface",)),
    Mutation("sdpa_outputs_swapped", (("    output = weights @ value  # (..., Tq, dv)\n    return output, weights",
                                       "    output = weights @ value  # (..., Tq, dv)\n    return weights, output"),),
             ("sdpa.shapes",)),
    Mutation("sdpa_detached_query", (("scores = query @ key", "scores = query.detach() @ key"),),
             ("sdpa.gradients",)),
    Mutation("mha_fused_projection", (("self.q_proj = nn.Linear(embed_dim, inner)", "self.qkv = nn.Linear(embed_dim, inner)"),
                                      ("q = self.q_proj(query)", "q = self.qkv(query)")),
             ("mha.interface",)),
    Mutation("mha_weights_averaged", (("return self.out_proj(y), weights", "return self.out_proj(y), weights.mean(1)"),),
             ("mha.shapes",)),
    Mutation("mha_no_out_proj", (("return self.out_proj(y), weights", "return y, weights"),),
             ("mha.gradients", "mha.values")),
    Mutation("block_default_eps", (("self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)", "self.norm1 = nn.LayerNorm(embed_dim)"),),
             ("block.interface",)),
    Mutation("block_returns_tuple", (("x = self.norm2(x + self.dropout2(self.ffn(x)))\n        return x",
                                      "x = self.norm2(x + self.dropout2(self.ffn(x)))\n        return x, None"),),
             ("block.shapes",)),
    Mutation("block_mask_not_passed", (("attn_out, _ = self.attn(x, x, x, mask)", "attn_out, _ = self.attn(x, x, x)"),),
             ("block.padding", "block.values"), "mask ignored"),
    Mutation("block_no_dropout", (("self.dropout1(attn_out)", "attn_out"), ("self.dropout2(self.ffn(x))", "self.ffn(x)")),
             ("block.dropout",)),
    Mutation("block_dropout_in_eval", (("self.dropout1(attn_out)", "F.dropout(attn_out, 0.1, training=True)"),),
             ("block.dropout", "block.values")),
    Mutation("block_attention_without_grad", (("attn_out, _ = self.attn(x, x, x, mask)  # (B, T, E)",
                                               "with torch.no_grad():\n            attn_out, _ = self.attn(x, x, x, mask)"),),
             ("block.gradients",)),
    Mutation("embed_position_parameter", (("self.pos_emb = nn.Embedding(max_len, embed_dim)",
                                           "self.pos_emb = nn.Parameter(torch.zeros(max_len, embed_dim))"),
                                          ("self.pos_emb(positions)", "self.pos_emb[positions]")),
             ("embed.interface",)),
    Mutation("embed_position_detached", (("self.pos_emb(positions)  # (B, T, E)", "self.pos_emb(positions).detach()  # (B, T, E)"),),
             ("embed.gradients",)),
    Mutation("clf_wide_head", (("nn.Linear(embed_dim, 20), nn.ReLU(), nn.Linear(20, num_classes)",
                                "nn.Linear(embed_dim, 32), nn.ReLU(), nn.Linear(32, num_classes)"),),
             ("clf.interface",)),
    Mutation("clf_one_logit", (("return self.head(pooled)  # (B, num_classes)", "return self.head(pooled)[:, 1]"),),
             ("clf.shapes",)),
    Mutation("clf_detached_pool", (("return self.head(pooled)  # (B, num_classes)", "return self.head(pooled.detach())"),),
             ("clf.gradients",)),
)

# Fails the training check only: an encoder that never learns (its parameters are frozen), so a head
# trained on random features cannot reach the calibrated accuracy.
FROZEN_ENCODER = Mutation(
    "clf_frozen_encoder",
    (("return self.head(pooled)  # (B, num_classes)", "return self.head(pooled.detach())"),),
    ("clf.training", "clf.gradients"),
)


def mutated_source(mutation: Mutation, path: Path = ROOT / "solutions" / "transformer.py") -> str:
    text = path.read_text()
    for old, new in mutation.edits:
        if old not in text:
            raise AssertionError(f"mutation {mutation.name}: {old!r} no longer occurs in {path.name}")
        text = text.replace(old, new)
    return text


# ---------------------------------------------------------------------------------------------------------
# The attention-over-LSTM exercise (edits of solutions/attention_rnn.py)

ATTENTION_RNN_SOLUTION = ROOT / "solutions" / "attention_rnn.py"

ATTENTION_RNN = (
    Mutation("softmax_over_features", (
        ('                scores = scores.masked_fill(~mask, float("-inf"))', "                pass"),
        ("weights = torch.softmax(scores, dim=1)", "weights = torch.softmax(scores.unsqueeze(-1), dim=-1).squeeze(-1)"),
    ), ("ta.normalised", "ta.softmax_values", "ac.values"), "softmax over the feature axis"),
    Mutation("no_tanh", (("scores = torch.tanh(scores)", "scores = scores"),),
             ("ta.softmax_values", "ac.attention"), "no tanh"),
    Mutation("padding_attended", (("if mask is not None:\n                scores", "if False:\n                scores"),),
             ("ta.normalised", "ta.softmax_values", "ac.attention", "ac.padding"), "padding given attention"),
    Mutation("reads_padded_step", (("final = out[torch.arange(out.size(0), device=out.device), last]", "final = out[:, -1]"),),
             ("ac.values", "ac.padding"), "reads a padded step"),
    Mutation("sigmoid_softmax_swapped", (('if self.normalise == "softmax":', 'if self.normalise == "sigmoid":'),),
             ("ta.softmax_values", "ta.sigmoid_values", "ac.values"), "sigmoid and softmax swapped"),
    Mutation("weights_not_applied", (("weighted = h * weights.unsqueeze(-1)  # (B, T, H)", "weighted = h  # (B, T, H)"),),
             ("ta.softmax_values", "ta.sigmoid_values", "ac.values"), "not applied"),
)

ATTENTION_RNN_CHECK_BUGS = (
    Mutation("score_renamed", (("self.score = nn.Linear(hidden_dim, 1)", "self.attn_score = nn.Linear(hidden_dim, 1)"),
                               ("scores = self.score(h)", "scores = self.attn_score(h)")),
             ("ta.interface",)),
    Mutation("weights_with_feature_axis", (("        return weighted, weights\n", "        return weighted, weights.unsqueeze(-1)\n"),),
             ("ta.shapes",)),
    Mutation("weights_detached", (("weighted = h * weights.unsqueeze(-1)", "weighted = h * weights.unsqueeze(-1).detach()"),),
             ("ta.gradients",)),
    Mutation("embedding_without_padding_idx", (("nn.Embedding(vocab_size, embed_dim, padding_idx=0)", "nn.Embedding(vocab_size, embed_dim)"),),
             ("ac.interface",)),
    Mutation("return_attention_ignored", (("return (logits, weights) if return_attention else logits", "return logits"),),
             ("ac.shapes",)),
    Mutation("second_lstm_bypassed", (("out, _ = self.lstm2(weighted)", "out = weighted"),),
             ("ac.gradients", "ac.values")),
)

ATTENTION_RNN_FROZEN = Mutation(
    "frozen_encoder", (("logits = self.classifier(final)", "logits = self.classifier(final.detach())"),),
    ("ac.training", "ac.gradients"),
)
