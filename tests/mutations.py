"""Known mistakes, written as edits of the reference solution, with the checks and hint each must trip.

Each edit is (old, new); a test asserts ``old`` occurs in ``solutions/transformer.py`` so that a change of the
reference cannot silently turn a bug into a no-op.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    edits: tuple  # ((old, new), ...)
    failing: tuple  # checks that must lose their points
    hint: str = ""  # a substring of a hint that must be named ("" = no named hint required)
    # The parts allowed to lose points (default: those of ``failing``). More only where the mistake makes the
    # submission's own composite unusable (it crashes, or is random in eval mode): ``cascade`` says why.
    parts: tuple = ()
    cascade: str = ""


TRANSFORMER = (
    Mutation("no_scaling", (("scores = query @ key.transpose(-2, -1) / math.sqrt(d)", "scores = query @ key.transpose(-2, -1)"),),
             ("sdpa.values", "sdpa.mask"), "no 1/sqrt(d) scaling"),
    Mutation("scale_by_value_dim", (("d = query.size(-1)", "d = value.size(-1)"),),
             ("sdpa.values",), "wrong dimension"),
    Mutation("scale_by_embed_dim", (("q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)  # (B, nh, Tq, hs)",
                                      "q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2) * math.sqrt(hs / E)"),),
             ("mha.values", "mha.mask"), "1/sqrt(embed_dim)"),
    Mutation("softmax_wrong_axis", (("weights = torch.softmax(scores, dim=-1)", "weights = torch.softmax(scores, dim=-2)"),),
             ("sdpa.weights_sum", "sdpa.values", "sdpa.mask"), "softmax over the wrong axis"),
    Mutation("mask_inverted", (("scores.masked_fill(~mask,", "scores.masked_fill(mask,"),),
             ("sdpa.mask",), "mask inverted"),
    Mutation("mask_ignored", (("if mask is not None:\n        scores", "if False:\n        scores"),),
             ("sdpa.mask",), "mask ignored"),
    Mutation("heads_without_transpose", (
        ("q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)", "q = self.q_proj(query).view(B, nh, Tq, hs)"),
        ("k = self.k_proj(key).view(B, Tk, nh, hs).transpose(1, 2)", "k = self.k_proj(key).view(B, nh, Tk, hs)"),
        ("v = self.v_proj(value).view(B, Tk, nh, hs).transpose(1, 2)", "v = self.v_proj(value).view(B, nh, Tk, hs)"),
        ("y = y.transpose(1, 2).reshape(B, Tq, nh * hs)", "y = y.reshape(B, Tq, nh * hs)"),
    ), ("mha.values", "mha.mask"), "without the transpose"),
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
             ("embed.values",), "no position embedding"),
    Mutation("padding_in_mean", (("pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)", "pooled = x.mean(1)"),),
             ("clf.values", "clf.padding"), "padding included in the mean"),
)

# Deviations seen in published code, alone and combined: each costs points in its own part only, and its hint
# is derived from what matched.
REAL_WORLD = (
    Mutation("ffn_gelu", (("nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear", "nn.Linear(embed_dim, ff_dim), nn.GELU(), nn.Linear"),),
             ("block.interface", "block.values"), "GELU"),
    Mutation("pre_norm_with_gelu", TRANSFORMER[8].edits + (("nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear",
                                                            "nn.Linear(embed_dim, ff_dim), nn.GELU(), nn.Linear"),),
             ("block.interface", "block.values"), "pre-norm: this block is post-norm, x = norm1(x + attn(x)), then x = norm2(x + ffn(x)); and GELU"),
    Mutation("sinusoidal_positions", (
        ("self.pos_emb = nn.Embedding(max_len, embed_dim)",
         "position = torch.arange(max_len).unsqueeze(1)\n"
         "        div = torch.exp(torch.arange(0, embed_dim, 2) * (-math.log(10000.0) / embed_dim))\n"
         "        table = torch.zeros(max_len, embed_dim)\n"
         "        table[:, 0::2] = torch.sin(position * div)\n"
         "        table[:, 1::2] = torch.cos(position * div)\n"
         "        self.register_buffer(\"pos_table\", table)"),
        ("self.pos_emb(positions)  # (B, T, E)", "self.pos_table[positions]  # (B, T, E)"),
    ), ("embed.interface", "embed.values"), "sinusoidal"),
    Mutation("scaled_token_embedding", (("return self.token_emb(tokens) + self.pos_emb(positions)",
                                         "return self.token_emb(tokens) * math.sqrt(self.token_emb.embedding_dim) + self.pos_emb(positions)"),),
             ("embed.values",), "sqrt(embed_dim)"),
    Mutation("oov_padding_idx", (("self.token_emb = nn.Embedding(vocab_size, embed_dim)",
                                  "self.token_emb = nn.Embedding(vocab_size, embed_dim, padding_idx=1)"),),
             ("embed.interface", "embed.gradients")),
    Mutation("dropout_after_norm", (("x = self.norm1(x + self.dropout1(attn_out))", "x = self.dropout1(self.norm1(x + attn_out))"),
                                    ("x = self.norm2(x + self.dropout2(self.ffn(x)))", "x = self.dropout2(self.norm2(x + self.ffn(x)))")),
             ("block.dropout",), "dropout after the LayerNorm"),
    Mutation("no_scaling_and_pre_norm", TRANSFORMER[0].edits + TRANSFORMER[8].edits,
             ("sdpa.values", "block.values"), "pre-norm"),
)

# One bug for each check that the mistakes above do not already catch: every check has a submission that
# fails it.
CHECK_BUGS = (
    Mutation("sdpa_without_mask_argument", (("def scaled_dot_product_attention(query, key, value, mask=None):",
                                              "def scaled_dot_product_attention(query, key, value):"),
                                             ("if mask is not None:\n        scores", "if False:\n        scores"),
                                             ("y, weights = scaled_dot_product_attention(q, k, v, mask)",
                                              "y, weights = scaled_dot_product_attention(q, k, v)")),
             ("sdpa.interface", "mha.mask"), parts=("scaled_dot_product_attention", "MultiHeadAttention"),
             cascade="the edit removes the mask from the multi-head attention's call too"),
    Mutation("sdpa_outputs_swapped", (("    output = weights @ value  # (..., Tq, dv)\n    return output, weights",
                                       "    output = weights @ value  # (..., Tq, dv)\n    return weights, output"),),
             ("sdpa.shapes",), parts=("scaled_dot_product_attention", "MultiHeadAttention", "TransformerBlock",
                                      "TransformerClassifier"),
             cascade="the submission's own multi-head attention crashes on the swapped outputs"),
    Mutation("sdpa_detached_query", (("scores = query @ key", "scores = query.detach() @ key"),),
             ("sdpa.gradients",)),
    Mutation("mha_fused_projection", (("self.q_proj = nn.Linear(embed_dim, inner)", "self.qkv = nn.Linear(embed_dim, inner)"),
                                      ("q = self.q_proj(query)", "q = self.qkv(query)")),
             ("mha.interface",)),
    Mutation("mha_weights_averaged", (("return self.out_proj(y), weights", "return self.out_proj(y), weights.mean(1)"),),
             ("mha.shapes",)),
    Mutation("mha_no_out_proj", (("return self.out_proj(y), weights", "return y, weights"),),
             ("mha.values", "mha.shapes"), "without out_proj"),
    Mutation("mha_detached_value", (("v = self.v_proj(value).view(B, Tk, nh, hs)", "v = self.v_proj(value).detach().view(B, Tk, nh, hs)"),),
             ("mha.gradients",)),
    Mutation("block_default_eps", (("self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)", "self.norm1 = nn.LayerNorm(embed_dim)"),),
             ("block.interface",)),
    Mutation("block_returns_tuple", (("x = self.norm2(x + self.dropout2(self.ffn(x)))\n        return x",
                                      "x = self.norm2(x + self.dropout2(self.ffn(x)))\n        return x, None"),),
             ("block.shapes",), parts=("TransformerBlock", "TransformerClassifier"),
             cascade="the submission's own classifier crashes on the tuple"),
    Mutation("block_mask_not_passed", (("attn_out, _ = self.attn(x, x, x, mask)", "attn_out, _ = self.attn(x, x, x)"),),
             ("block.padding", "block.values"), "mask ignored"),
    Mutation("block_no_dropout", (("self.dropout1(attn_out)", "attn_out"), ("self.dropout2(self.ffn(x))", "self.ffn(x)")),
             ("block.dropout",)),
    Mutation("block_dropout_in_eval", (("self.dropout1(attn_out)", "F.dropout(attn_out, 0.1, training=True)"),),
             ("block.dropout", "block.values"), parts=("TransformerBlock", "TransformerClassifier"),
             cascade="dropout in eval mode makes the classifier's outputs random"),
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


def edit_problems(mutations, path: Path, checks) -> list[str]:
    """What is wrong with ``mutations`` as edits of ``path``: an edit whose text is not there exactly once (before
    and after the mutation's earlier edits), or a failing check the exercise does not have (``checks``: names)."""
    text, problems = path.read_text(), []
    for mutation in mutations:
        edited = text
        for old, new in mutation.edits:
            if text.count(old) != 1 or edited.count(old) != 1:
                problems.append(f"{mutation.name}: {old!r}")
            edited = edited.replace(old, new)
        problems += [f"{mutation.name}: no check {name}" for name in mutation.failing if name not in set(checks)]
    return problems


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
    ), ("ta.normalised", "ta.softmax_values"), "softmax over the feature axis"),
    Mutation("no_tanh", (("scores = torch.tanh(scores)", "scores = scores"),),
             ("ta.softmax_values",), "no tanh"),
    Mutation("padding_attended", (("if mask is not None:\n                scores", "if False:\n                scores"),),
             ("ta.normalised", "ta.softmax_values"), "padding given attention"),
    Mutation("reads_padded_step", (("final = out[torch.arange(out.size(0), device=out.device), last]", "final = out[:, -1]"),),
             ("ac.values", "ac.padding"), "reads a padded step"),
    Mutation("sigmoid_softmax_swapped", (('if self.normalise == "softmax":', 'if self.normalise == "sigmoid":'),),
             ("ta.softmax_values", "ta.sigmoid_values"), "sigmoid and softmax swapped"),
    Mutation("weights_not_applied", (("weighted = h * weights.unsqueeze(-1)  # (B, T, H)", "weighted = h  # (B, T, H)"),),
             ("ta.softmax_values", "ta.sigmoid_values"), "not applied"),
)

ATTENTION_RNN_CHECK_BUGS = (
    Mutation("score_renamed", (("self.score = nn.Linear(hidden_dim, 1)", "self.attn_score = nn.Linear(hidden_dim, 1)"),
                               ("scores = self.score(h)", "scores = self.attn_score(h)")),
             ("ta.interface",)),
    Mutation("weights_with_feature_axis", (("        return weighted, weights\n", "        return weighted, weights.unsqueeze(-1)\n"),),
             ("ta.shapes",), parts=("TemporalAttention", "AttentionLSTMClassifier"),
             cascade="the classifier returns its attention's weights, whose shape is wrong"),
    Mutation("weights_detached", (("weighted = h * weights.unsqueeze(-1)", "weighted = h * weights.unsqueeze(-1).detach()"),),
             ("ta.gradients",)),
    Mutation("embedding_without_padding_idx", (("nn.Embedding(vocab_size, embed_dim, padding_idx=0)", "nn.Embedding(vocab_size, embed_dim)"),),
             ("ac.interface",)),
    Mutation("return_attention_ignored", (("return (logits, weights) if return_attention else logits", "return logits"),),
             ("ac.shapes",)),
    Mutation("score_without_bias", (("self.score = nn.Linear(hidden_dim, 1)", "self.score = nn.Linear(hidden_dim, 1, bias=False)"),),
             ("ta.interface",)),
    Mutation("uniform_weights_returned", (("return (logits, weights) if return_attention else logits",
                                           "return (logits, mask / mask.sum(1, keepdim=True)) if return_attention else logits"),),
             ("ac.attention",)),
    Mutation("second_lstm_bypassed", (("out, _ = self.lstm2(weighted)", "out = weighted"),),
             ("ac.gradients", "ac.values")),
)

ATTENTION_RNN_FROZEN = Mutation(
    "frozen_encoder", (("logits = self.classifier(final)", "logits = self.classifier(final.detach())"),),
    ("ac.training", "ac.gradients"),
)


# ---------------------------------------------------------------------------------------------------------
# The attention-in-CNNs exercise (edits of solutions/cnn_attention.py); each named mistake with the switches of
# autograder/exercises/cnn_attention/reference.py that reproduce it (None where none does: CNN_ATTENTION_NO_SWITCH)

CNN_ATTENTION_SOLUTION = ROOT / "solutions" / "cnn_attention.py"

CNN_ATTENTION_DRAFT = (  # (name, edits, failing, hint, reference switches or None)
    # SqueezeExcitation
    ("se_max_pool",
     (("squeezed = x.mean((2, 3), keepdim=True)", "squeezed = x.amax((2, 3), keepdim=True)"),),
     ("se.values",), "max pooling instead of the mean", {"pool": "max"}),
    ("se_no_sigmoid",
     (("weights = torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))", "weights = self.fc2(F.relu(self.fc1(squeezed)))"),),
     ("se.values", "se.range"), "no sigmoid", {"gate": "none"}),
    ("se_weights_not_applied",
     (("out = x * weights  # (B, C, H, W): each channel rescaled by its gate", "out = x  # (B, C, H, W)"),),
     ("se.values",), "not applied", {"applied": False}),
    # ChannelAttention
    ("channel_no_max_branch",
     (("weights = torch.sigmoid(avg_out + max_out)", "weights = torch.sigmoid(avg_out)"),),
     ("channel.values",), "max branch missing", {"branches": "mean"}),
    ("channel_sigmoid_each",
     (("weights = torch.sigmoid(avg_out + max_out)", "weights = torch.sigmoid(avg_out) + torch.sigmoid(max_out)"),),
     ("channel.values", "channel.range"), "sigmoid on each branch", {"sigmoid": "each"}),
    ("channel_two_mlps",
     (("self.fc2 = nn.Conv2d(hidden, channels, 1)  # one MLP, shared by both descriptors",
       "self.fc2 = nn.Conv2d(hidden, channels, 1)\n"
       "        self.fc1_max = nn.Conv2d(channels, hidden, 1)\n        self.fc2_max = nn.Conv2d(hidden, channels, 1)"),
      ("max_out = self.fc2(F.relu(self.fc1(max_desc)))", "max_out = self.fc2_max(F.relu(self.fc1_max(max_desc)))")),
     ("channel.interface", "channel.values"), "one MLP shared", None),
    # SpatialAttention
    ("spatial_max_mean_swapped",
     (("[x.mean(1, keepdim=True), x.amax(1, keepdim=True)]", "[x.amax(1, keepdim=True), x.mean(1, keepdim=True)]"),),
     ("spatial.values",), "max and mean swapped", {"order": "max_mean"}),
    ("spatial_pool_over_space",
     (("[x.mean(1, keepdim=True), x.amax(1, keepdim=True)]", "[x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)]"),),
     ("spatial.shapes", "spatial.values"), "over the channels", None),
    ("spatial_no_sigmoid",
     (("weights = torch.sigmoid(self.conv(pooled))", "weights = self.conv(pooled)"),),
     ("spatial.values", "spatial.range"), "no sigmoid", {"gate": "none"}),
    # CBAM
    ("cbam_spatial_first",
     (("refined, _ = self.channel(x)  # (B, C, H, W): channel attention first\n"
       "        out, weights = self.spatial(refined)  # (B, C, H, W), (B, 1, H, W): then spatial, on its output",
       "refined, weights = self.spatial(x)  # (B, C, H, W), (B, 1, H, W)\n"
       "        out, _ = self.channel(refined)  # (B, C, H, W)"),),
     ("cbam.values",), "spatial attention before channel", {"arrangement": "spatial_first"}),
    ("cbam_parallel",
     (("refined, _ = self.channel(x)  # (B, C, H, W): channel attention first\n"
       "        out, weights = self.spatial(refined)  # (B, C, H, W), (B, 1, H, W): then spatial, on its output",
       "_, channel_weights = self.channel(x)  # (B, C, 1, 1)\n"
       "        _, weights = self.spatial(x)  # (B, 1, H, W)\n"
       "        out = x * channel_weights * weights  # (B, C, H, W)"),),
     ("cbam.values",), "in parallel", {"arrangement": "parallel"}),
    # AttentionCNN
    ("cnn_pool_before_attention",
     (("x = F.relu(conv(x))  # (B, width, H_i, W_i)", "x = F.max_pool2d(F.relu(conv(x)), 2)  # (B, width, H_i // 2, W_i // 2)"),
      ("            x = F.max_pool2d(x, 2)  # (B, width, H_i // 2, W_i // 2)\n", "")),
     ("cnn.values", "cnn.attention"), "pooling before the attention", {"pool_first": True}),
    ("cnn_max_before_head",
     (("pooled = x.mean((2, 3))", "pooled = x.amax((2, 3))"),),
     ("cnn.values",), "max instead of the mean", {"head_pool": "max"}),
    ("cnn_attention_discarded",
     (("x, weights = self.attentions[i](x)", "_, weights = self.attentions[i](x)"),),
     ("cnn.values",), "output discarded", {"discard": True}),
    # SelfAttention2d
    ("self_softmax_over_queries",
     (("weights = torch.softmax(scores, dim=-1)", "weights = torch.softmax(scores, dim=1)"),),
     ("self.weights_sum", "self.values"), "softmax over the queries", {"softmax_dim": "queries"}),
    ("self_gamma_ignored",
     (("out = x + self.gamma * attended", "out = x + attended"),),
     ("self.values", "self.identity_at_init"), "gamma ignored", {"gamma": False}),
    ("self_query_key_swapped",
     (("q = self.query(x).view(B, -1, N)", "q = self.key(x).view(B, -1, N)"),
      ("k = self.key(x).view(B, -1, N)", "k = self.query(x).view(B, -1, N)")),
     ("self.values", "self.weights"), "query and key swapped", {"swapped": True}),
    ("self_positions_column_major",
     (("q = self.query(x).view(B, -1, N)", "q = self.query(x).transpose(2, 3).reshape(B, -1, N)"),
      ("k = self.key(x).view(B, -1, N)", "k = self.key(x).transpose(2, 3).reshape(B, -1, N)"),
      ("v = self.value(x).view(B, C, N)", "v = self.value(x).transpose(2, 3).reshape(B, C, N)"),
      ("attended = torch.bmm(v, weights.transpose(1, 2)).view(B, C, H, W)",
       "attended = torch.bmm(v, weights.transpose(1, 2)).view(B, C, W, H).transpose(2, 3)")),
     ("self.weights",), "column-major", {"positions": "column"}),
    ("self_scaled",
     (("scores = torch.bmm(q, k)", "scores = torch.bmm(q, k) / q.size(-1) ** 0.5"),),
     ("self.values", "self.weights"), "scaled by 1/sqrt", {"scale": "sqrt_d"}),
)

# What the mistakes without a reference switch do (checked by tests/test_cnn_attention_reference.py).
CNN_ATTENTION_NO_SWITCH = {
    "channel_two_mlps": "adds parameters fc1_max, fc2_max; equals the reference when they are copies of fc1, "
                        "fc2, differs from it otherwise",
    "spatial_pool_over_space": "the conv gets 2C channels of size 1 x 1: RuntimeError whenever C > 1 (with C == 1 "
                               "it runs and returns weights of shape (B, 1, 1, 1))",
}

_CNN_DRAFT = {entry[0]: entry for entry in CNN_ATTENTION_DRAFT}


def named(name: str, failing: tuple, parts: tuple = (), cascade: str = "") -> Mutation:
    """A known mistake of ``CNN_ATTENTION_DRAFT``: its edits and hint, with the checks it fails."""
    _, edits, _, hint, _ = _CNN_DRAFT[name]
    return Mutation(name, edits, failing, hint, parts, cascade)


# The named mistakes of the issue, each with the checks it must fail.
CNN_ATTENTION = (
    named("se_max_pool", ("se.values",)),
    named("se_no_sigmoid", ("se.values", "se.range")),
    named("se_weights_not_applied", ("se.values", "se.range")),
    named("channel_no_max_branch", ("channel.values",)),
    named("channel_sigmoid_each", ("channel.values", "channel.range")),
    named("channel_two_mlps", ("channel.interface", "channel.values")),
    named("spatial_max_mean_swapped", ("spatial.values",)),
    named("spatial_pool_over_space", ("spatial.shapes", "spatial.values", "spatial.range", "spatial.gradients"),
          parts=("SpatialAttention", "CBAM", "AttentionCNN"),
          cascade="the spatial attention crashes for C > 1, and so do the submission's own CBAM and CNN, which call it"),
    named("spatial_no_sigmoid", ("spatial.values", "spatial.range")),
    named("cbam_spatial_first", ("cbam.values",)),
    named("cbam_parallel", ("cbam.values",)),
    named("cnn_pool_before_attention", ("cnn.values", "cnn.attention")),
    named("cnn_max_before_head", ("cnn.values",)),
    named("cnn_attention_discarded", ("cnn.values",)),
    named("self_softmax_over_queries", ("self.weights_sum", "self.values", "self.weights")),
    named("self_gamma_ignored", ("self.values", "self.identity")),
    named("self_query_key_swapped", ("self.values", "self.weights")),
    named("self_positions_column_major", ("self.weights",)),
    named("self_scaled", ("self.values", "self.weights")),
)

# The bottleneck MLP without its ReLU (the grader's weights give its hidden units both signs): the part's values
# check names it, and the composites built on it are judged on the function it computes.
CNN_ATTENTION_NO_RELU = (
    Mutation("se_no_relu", (("weights = torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))",
                             "weights = torch.sigmoid(self.fc2(self.fc1(squeezed)))"),), ("se.values",), "no ReLU"),
    Mutation("channel_no_relu", (("avg_out = self.fc2(F.relu(self.fc1(avg_desc)))", "avg_out = self.fc2(self.fc1(avg_desc))"),
                                 ("max_out = self.fc2(F.relu(self.fc1(max_desc)))", "max_out = self.fc2(self.fc1(max_desc))")),
             ("channel.values",), "no ReLU"),
)

# One bug for each check that the named mistakes do not already catch: every check has a submission failing it.
CNN_ATTENTION_CHECK_BUGS = (
    Mutation("se_fc2_without_bias", (("self.fc2 = nn.Conv2d(hidden, channels, 1)\n",
                                      "self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)\n"),), ("se.interface",)),
    Mutation("se_weights_flat", (("out = x * weights  # (B, C, H, W): each channel rescaled by its gate\n        return out, weights",
                                  "out = x * weights  # (B, C, H, W): each channel rescaled by its gate\n"
                                  "        return out, weights.flatten(1)"),), ("se.shapes", "se.range")),
    Mutation("se_detached_squeeze", (("squeezed = x.mean((2, 3), keepdim=True)",
                                      "squeezed = x.detach().mean((2, 3), keepdim=True)"),), ("se.gradients",)),
    Mutation("channel_weights_flat", (("return x * weights, weights\n        ### END SOLUTION\n\n\n# %% [SpatialAttention]",
                                       "return x * weights, weights.flatten(1)\n        ### END SOLUTION\n\n\n"
                                       "# %% [SpatialAttention]"),), ("channel.shapes", "channel.range")),
    Mutation("channel_detached_max", (("max_desc = x.amax((2, 3), keepdim=True)",
                                       "max_desc = x.detach().amax((2, 3), keepdim=True)"),), ("channel.gradients",)),
    Mutation("spatial_conv_renamed", (("self.conv = nn.Conv2d(2, 1", "self.gate = nn.Conv2d(2, 1"),
                                      ("weights = torch.sigmoid(self.conv(pooled))",
                                       "weights = torch.sigmoid(self.gate(pooled))")), ("spatial.interface",)),
    Mutation("spatial_detached_pooling", (("weights = torch.sigmoid(self.conv(pooled))",
                                           "weights = torch.sigmoid(self.conv(pooled.detach()))"),), ("spatial.gradients",)),
    Mutation("cbam_kernel_size_ignored", (("self.spatial = SpatialAttention(kernel_size)",
                                           "self.spatial = SpatialAttention()"),), ("cbam.interface",)),
    Mutation("cbam_returns_channel_weights", (
        ("refined, _ = self.channel(x)  # (B, C, H, W): channel attention first", "refined, channel_weights = self.channel(x)"),
        ("return out, weights\n        ### END SOLUTION\n\n\n# %% [SelfAttention2d]",
         "return out, channel_weights\n        ### END SOLUTION\n\n\n# %% [SelfAttention2d]")), ("cbam.shapes",)),
    Mutation("cbam_detached_refined", (("out, weights = self.spatial(refined)",
                                        "out, weights = self.spatial(refined.detach())"),), ("cbam.gradients",)),
    Mutation("self_gamma_matrix", (("self.gamma = nn.Parameter(torch.zeros(1))",
                                    "self.gamma = nn.Parameter(torch.zeros(1, 1))"),), ("self.interface",)),
    Mutation("self_weights_with_head_axis", (("out = x + self.gamma * attended  # (B, C, H, W)\n        return out, weights",
                                              "out = x + self.gamma * attended  # (B, C, H, W)\n"
                                              "        return out, weights.unsqueeze(1)"),),
             ("self.shapes", "self.weights_sum", "self.weights")),
    Mutation("self_detached_value", (("v = self.value(x).view(B, C, N)", "v = self.value(x).detach().view(B, C, N)"),),
             ("self.gradients",)),
    Mutation("self_gamma_starts_at_one", (("self.gamma = nn.Parameter(torch.zeros(1))",
                                           "self.gamma = nn.Parameter(torch.ones(1))"),), ("self.identity",),
             "gamma must start at 0"),
    Mutation("cnn_head_without_bias", (("self.head = nn.Linear(widths[-1], num_classes)",
                                        "self.head = nn.Linear(widths[-1], num_classes, bias=False)"),), ("cnn.interface",)),
    Mutation("cnn_logits_squeezed", (("logits = self.head(pooled)  # (B, num_classes)",
                                      "logits = self.head(pooled).squeeze(0)"),), ("cnn.shapes",)),
    Mutation("cnn_last_map_only", (("maps.append(weights)", "maps = [weights]"),), ("cnn.attention",)),
    Mutation("cnn_unknown_attention_key_error", (('raise ValueError(f"attention must be one of',
                                                  'raise KeyError(f"attention must be one of'),),
             ("cnn.unknown_name",), "must raise ValueError"),
    Mutation("cnn_unknown_attention_accepted", (('raise ValueError(f"attention must be one of',
                                                 'print(f"attention must be one of'),
                                                ("build = modules[attention]", "build = modules.get(attention)")),
             ("cnn.unknown_name",), "must raise ValueError"),
    Mutation("cnn_detached_convs", (("x = F.relu(conv(x))  # (B, width, H_i, W_i)",
                                     "x = F.relu(conv(x.detach()))  # (B, width, H_i, W_i)"),), ("cnn.gradients",)),
)

# Fails the training check: convolutions that never learn (their inputs and so everything before the head's
# pooling are cut off from the loss), so only the head is trained on random features.
CNN_ATTENTION_FROZEN = Mutation("cnn_frozen_features", (("pooled = x.mean((2, 3))", "pooled = x.mean((2, 3)).detach()"),),
                                ("cnn.training", "cnn.gradients"))


# Correct, with the parameters created in another order (the head first): the same seed gives another
# initialisation, which the training check's calibrated threshold must allow for.
CNN_ATTENTION_REORDERED = Mutation("cnn_head_created_first", (
    ("        self.head = nn.Linear(widths[-1], num_classes)\n        ### END SOLUTION", "        ### END SOLUTION"),
    ("        channels = [in_channels, *widths]\n",
     "        channels = [in_channels, *widths]\n        self.head = nn.Linear(widths[-1], num_classes)\n"),
), ())


# ---------------------------------------------------------------------------------------------------------
# The Vision Transformer exercise (edits of solutions/vit.py)

VIT_SOLUTION = ROOT / "solutions" / "vit.py"
_VIT_LOOP = ("            maps.append(weights)\n        x = self.norm(x)  # (B, N, D)\n        logits = self.head(x)",
             "            maps.append(weights)\n        x = self.norm(x)  # (B, N, D)\n        pooled, pool_weights")
_POST_NORM = (
    ("h = self.norm1(x)  # (B, N, D)\n        attended, weights = self.attn(h, h, h,",
     "attended, weights = self.attn(x, x, x,"),
    ("x = x + attended  # (B, N, D)\n        x = x + self.mlp(self.norm2(x))  # (B, N, D)",
     "x = self.norm1(x + attended)  # (B, N, D)\n        x = self.norm2(x + self.mlp(x))  # (B, N, D)"),
)

# The named mistakes of the issue, each with the checks it must fail.
VIT = (
    Mutation("patches_ppc_order", (("x = x.permute(0, 2, 4, 1, 3, 5)", "x = x.permute(0, 2, 4, 3, 5, 1)"),),
             ("patches.order", "patches.values"), "(P, P, C) order"),
    Mutation("patches_column_major", (("x = x.permute(0, 2, 4, 1, 3, 5)", "x = x.permute(0, 4, 2, 1, 3, 5)"),),
             ("patches.order", "patches.values"), "column-major"),
    Mutation("encoder_no_positions", (("return self.projection(patches) + self.position_embedding(positions)",
                                       "return self.projection(patches)"),), ("encoder.values",), "no position embedding"),
    Mutation("encoder_positions_twice", (("return self.projection(patches) + self.position_embedding(positions)",
                                          "return self.projection(patches) + 2 * self.position_embedding(positions)"),),
             ("encoder.values",), "added twice"),
    Mutation("block_post_norm", _POST_NORM, ("block.values",), "post-norm"),
    Mutation("block_mlp_relu", (("nn.Linear(embed_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout)",
                                 "nn.Linear(embed_dim, mlp_dim), nn.ReLU(), nn.Dropout(dropout)"),),
             ("block.values",), "ReLU in the block's MLP"),
    Mutation("head_relu", (("layers += [nn.Linear(width, units), nn.GELU(), nn.Dropout(head_dropout)]",
                            "layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(head_dropout)]"),),
             ("vit.values",), "ReLU in the classification head"),
    Mutation("vit_no_final_norm", ((_VIT_LOOP[0], _VIT_LOOP[0].replace("x = self.norm(x)", "x = x")),),
             ("vit.values",), "no final LayerNorm"),
    Mutation("vit_shared_blocks", (("[ViTBlock(projection_dim, num_heads, mlp_dim, dropout) for _ in range(num_blocks)]",
                                    "[ViTBlock(projection_dim, num_heads, mlp_dim, dropout)] * num_blocks"),),
             ("vit.own_blocks",), "share one module"),
    Mutation("tokenizer_pool_stride_1", (("3, stride=2, padding=1)", "3, stride=1, padding=1)"),),
             ("tokenizer.shapes", "tokenizer.values", "tokenizer.gradients"), "keeps the map's size"),
    Mutation("tokenizer_pool_no_padding", (("3, stride=2, padding=1)", "3, stride=2, padding=0)"),),
             ("tokenizer.shapes", "tokenizer.values", "tokenizer.gradients"), "no padding"),
    Mutation("pooling_softmax_over_features", (("weights = torch.softmax(scores, dim=1)",
                                                "weights = torch.softmax(scores.unsqueeze(-1), dim=-1).squeeze(-1)"),),
             ("pooling.weights_sum", "pooling.values"), "softmax over the features"),
    Mutation("cct_no_positions", (("x = self.tokenizer(images) + self.position_embedding", "x = self.tokenizer(images)"),),
             ("cct.values",), "no position embedding"),
    Mutation("cct_positions_twice", (("x = self.tokenizer(images) + self.position_embedding",
                                      "x = self.tokenizer(images) + 2 * self.position_embedding"),),
             ("cct.values",), "added twice"),
    Mutation("cct_no_final_norm", ((_VIT_LOOP[1], _VIT_LOOP[1].replace("x = self.norm(x)", "x = x")),),
             ("cct.values",), "no final LayerNorm"),
    Mutation("cct_shared_blocks", (("[ViTBlock(D, num_heads, mlp_dim, dropout) for _ in range(num_blocks)]",
                                    "[ViTBlock(D, num_heads, mlp_dim, dropout)] * num_blocks"),),
             ("cct.own_blocks",), "share one module"),
)

# One bug for each check that the named mistakes do not already catch: every check has a submission failing it.
VIT_CHECK_BUGS = (
    Mutation("patches_argument_renamed", (("def extract_patches(images, patch_size: int):", "def extract_patches(images, size: int):"),
                                          ("P = patch_size\n", "P = size\n")), ("patches.interface",)),
    Mutation("patches_batch_of_one_squeezed", (("return x.reshape(B, h * w, C * P * P)", "return x.reshape(B, h * w, C * P * P).squeeze(0)"),),
             ("patches.shapes", "patches.order", "patches.values", "vit.shapes", "vit.values"), parts=("extract_patches", "VisionTransformer"),
             cascade="the submission's own ViT calls it on a batch of one"),
    Mutation("encoder_projection_without_bias", (("self.projection = nn.Linear(patch_dim, projection_dim)",
                                                  "self.projection = nn.Linear(patch_dim, projection_dim, bias=False)"),),
             ("encoder.interface",)),
    Mutation("encoder_whole_table", (("return self.projection(patches) + self.position_embedding(positions)",
                                      "return self.projection(patches) + self.position_embedding.weight"),),
             ("encoder.shapes", "encoder.values", "encoder.gradients")),
    Mutation("encoder_detached_patches", (("return self.projection(patches) + self.position_embedding(positions)",
                                           "return self.projection(patches.detach()) + self.position_embedding(positions)"),),
             ("encoder.gradients",)),
    Mutation("block_norm2_renamed", (("self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)", "self.ln2 = nn.LayerNorm(embed_dim, eps=1e-6)"),
                                     ("x = x + self.mlp(self.norm2(x))", "x = x + self.mlp(self.ln2(x))")), ("block.interface",)),
    Mutation("block_weights_averaged", (("average_attn_weights=False)", "average_attn_weights=True)"),),
             ("block.shapes", "block.attention")),
    Mutation("block_weights_transposed", (("return (x, weights) if return_attention else x",
                                           "return (x, weights.transpose(-1, -2)) if return_attention else x"),),
             ("block.attention", "block.values")),
    Mutation("block_detached_attention", (("x = x + attended  # (B, N, D)", "x = x + attended.detach()  # (B, N, D)"),),
             ("block.gradients",)),
    Mutation("vit_last_layer_without_bias", (("layers.append(nn.Linear(width, num_classes))",
                                              "layers.append(nn.Linear(width, num_classes, bias=False))"),), ("vit.interface",)),
    Mutation("vit_logits_squeezed", (("logits = self.head(x)  # (B, N, D) -> (B, N * D) -> (B, num_classes)",
                                      "logits = self.head(x).squeeze(0)"),), ("vit.shapes", "vit.values")),
    Mutation("vit_last_map_only", ((_VIT_LOOP[0], _VIT_LOOP[0].replace("maps.append(weights)", "maps = [weights]")),),
             ("vit.attention",)),
    Mutation("vit_noise_in_eval", ((_VIT_LOOP[0], _VIT_LOOP[0].replace("x = self.norm(x)", "x = self.norm(x) + 1e-3 * torch.randn_like(x)")),),
             ("vit.eval", "vit.values", "vit.gradients")),
    Mutation("vit_detached_images", (("patches = extract_patches(images, self.patch_size)",
                                      "patches = extract_patches(images.detach(), self.patch_size)"),), ("vit.gradients",)),
    Mutation("tokenizer_convs_sequential", (("self.convs = nn.ModuleList(\n            [nn.Conv2d(c_in, c, 3, padding=1, bias=False)",
                                             "self.convs = nn.Sequential(\n            *[nn.Conv2d(c_in, c, 3, padding=1, bias=False)"),),
             ("tokenizer.interface",)),
    Mutation("tokenizer_detached_images", (("        x = images\n        for conv in self.convs:", "        x = images.detach()\n        for conv in self.convs:"),),
             ("tokenizer.gradients",)),
    Mutation("pooling_score_without_bias", (("self.attention = nn.Linear(embed_dim, 1)", "self.attention = nn.Linear(embed_dim, 1, bias=False)"),),
             ("pooling.interface",)),
    Mutation("pooling_weights_keep_last_axis", (("return pooled, weights", "return pooled, weights.unsqueeze(-1)"),),
             ("pooling.shapes", "pooling.weights_sum")),
    Mutation("pooling_detached_tokens", (("pooled = torch.bmm(weights.unsqueeze(1), x)", "pooled = torch.bmm(weights.unsqueeze(1), x.detach())"),),
             ("pooling.gradients",)),
    Mutation("cct_head_without_bias", (("self.head = nn.Linear(D, num_classes)", "self.head = nn.Linear(D, num_classes, bias=False)"),),
             ("cct.interface",)),
    Mutation("cct_one_logit_short", (("logits = self.head(pooled)  # (B, num_classes)", "logits = self.head(pooled)[:, 1:]"),),
             ("cct.shapes", "cct.values", "cct.attention", "cct.gradients")),
    Mutation("cct_pooling_weights_dropped", (("return (logits, maps, pool_weights) if return_attention else logits",
                                              "return (logits, maps) if return_attention else logits"),), ("cct.attention",)),
    Mutation("cct_noise_in_eval", ((_VIT_LOOP[1], _VIT_LOOP[1].replace("x = self.norm(x)", "x = self.norm(x) + 1e-3 * torch.randn_like(x)")),),
             ("cct.eval", "cct.values", "cct.gradients")),
    Mutation("cct_detached_tokens", (("x = self.tokenizer(images) + self.position_embedding",
                                      "x = self.tokenizer(images).detach() + self.position_embedding"),), ("cct.gradients",)),
)

# Fails both training checks: the same logits, but only the last layer's bias learns (everything else is cut off
# from the loss). Freezing the blocks alone is not enough here: the ViT's head, trained on the flattened states of
# random blocks, still reaches 0.97 on digits (0.66-0.76 for the CCT's, which sees one pooled vector).
VIT_FROZEN = Mutation("vit_frozen", (
    ("logits = self.head(x)  # (B, N, D) -> (B, N * D) -> (B, num_classes)",
     "logits = self.head(x).detach() + self.head[-1].bias - self.head[-1].bias.detach()"),
    ("logits = self.head(pooled)  # (B, num_classes)",
     "logits = self.head(pooled).detach() + self.head.bias - self.head.bias.detach()"),
), ("vit.training", "cct.training", "vit.gradients", "cct.gradients"))


SEQ2SEQ_SOLUTION = ROOT / "solutions" / "seq2seq.py"
_MASK_LINE = "return steps[None, :] <= steps[:, None]"
SEQ2SEQ_PREDICT_LOOP = (
    "        target_in = source[:, -1:]  # (B, 1, 2): the last observed point\n"
    "        with torch.no_grad():\n"
    "            for _ in range(steps):\n"
    "                points = self(source, target_in)  # (B, t, 2)\n"
    "                target_in = torch.cat([target_in, points[:, -1:]], dim=1)  # (B, t + 1, 2): its own output fed back\n"
    "        return target_in[:, 1:]  # (B, steps, 2)\n")


def _predict_feeding(fed: str) -> tuple:
    """predict collecting its outputs apart from the decoder inputs, and feeding back ``fed`` instead of them."""
    return ((SEQ2SEQ_PREDICT_LOOP,
             "        target_in = source[:, -1:]  # (B, 1, 2)\n"
             "        predicted = []\n"
             "        with torch.no_grad():\n"
             "            for _ in range(steps):\n"
             "                points = self(source, target_in)  # (B, t, 2)\n"
             "                predicted.append(points[:, -1:])\n"
             f"                target_in = torch.cat([target_in, {fed}], dim=1)\n"
             "        return torch.cat(predicted, dim=1)  # (B, steps, 2)\n"),)


_DECODER_PRE_NORM = (
    ("x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, self_mask)[0]))\n"
     "        attended, weights = self.cross_attn(x, memory, memory)",
     "h = self.norm1(x)\n        x = x + self.dropout1(self.self_attn(h, h, h, self_mask)[0])\n"
     "        attended, weights = self.cross_attn(self.norm2(x), memory, memory)"),
    ("x = self.norm2(x + self.dropout2(attended))\n        x = self.norm3(x + self.dropout3(self.ffn(x)))",
     "x = x + self.dropout2(attended)\n        x = x + self.dropout3(self.ffn(self.norm3(x)))"),
)
_POSITIONS = ("memory = self.source_proj(source) + sinusoidal_positions(S, E).to(source)",
              "x = self.target_proj(target_in) + sinusoidal_positions(T, E).to(target_in)")

# The named mistakes of the issue, each with the checks it must fail.
SEQ2SEQ = (
    Mutation("mask_inverted", ((_MASK_LINE, "return steps[None, :] > steps[:, None]"),), ("mask.values",), "inverted"),
    Mutation("mask_transposed", ((_MASK_LINE, "return steps[None, :] >= steps[:, None]"),), ("mask.values",),
             "transposed"),
    Mutation("mask_strictly_lower", ((_MASK_LINE, "return steps[None, :] < steps[:, None]"),), ("mask.values",),
             "strictly lower"),
    Mutation("mask_not_passed", (("x = block(x, memory, mask)", "x = block(x, memory)"),),
             ("model.causality", "model.values"), "passes no causal mask"),
    Mutation("positions_sin_cos_swapped", (("torch.stack([angles.sin(), angles.cos()], dim=-1)",
                                            "torch.stack([angles.cos(), angles.sin()], dim=-1)"),),
             ("positions.values",), "swapped"),
    Mutation("positions_frequency_per_pair", (("-torch.arange(0, dim, 2, dtype=torch.float32) / dim",
                                               "-torch.arange(0, dim // 2, dtype=torch.float32) / dim"),),
             ("positions.values",), "wrong frequencies"),
    Mutation("model_no_positions", ((_POSITIONS[0], "memory = self.source_proj(source)"),
                                    (_POSITIONS[1], "x = self.target_proj(target_in)")),
             ("model.values",), "no positions"),
    Mutation("cross_attention_reads_target", (("self.cross_attn(x, memory, memory)", "self.cross_attn(x, x, x)"),),
             ("decoder.values",), "reads the decoder's own states"),
    Mutation("decoder_inputs_not_shifted", (("return torch.cat([source[:, -1:], target[:, :-1]], dim=1)",
                                             "return target"),), ("shift.values",), "not shifted"),
    Mutation("decoder_inputs_shifted_twice", (("return torch.cat([source[:, -1:], target[:, :-1]], dim=1)",
                                               "return torch.cat([source[:, -2:], target[:, :-2]], dim=1)"),),
             ("shift.values",), "shifted twice"),
    Mutation("predict_feeds_zeros", _predict_feeding("torch.zeros_like(points[:, -1:])"),
             ("model.predict", "model.predict_values"), "feeds back zeros"),
    Mutation("predict_feeds_first_point", _predict_feeding("source[:, :1]"),
             ("model.predict", "model.predict_values"), "feeds back the first observed point"),
    Mutation("predict_starts_from_first_point", (("target_in = source[:, -1:]  # (B, 1, 2): the last observed point",
                                                  "target_in = source[:, :1]  # (B, 1, 2)"),),
             ("model.predict", "model.predict_values"), "starts from the first observed point"),
    Mutation("decoder_pre_norm", _DECODER_PRE_NORM, ("decoder.values",), "pre-norm"),
)

# One bug for each check that the named mistakes do not already catch: every check has a submission failing it.
SEQ2SEQ_CHECK_BUGS = (
    Mutation("mask_argument_renamed", (("def causal_mask(size: int):", "def causal_mask(n: int):"),
                                       ("steps = torch.arange(size)", "steps = torch.arange(n)")), ("mask.interface",)),
    Mutation("positions_argument_renamed", (("def sinusoidal_positions(length: int, dim: int):",
                                             "def sinusoidal_positions(n: int, dim: int):"),
                                            ("position = torch.arange(length,", "position = torch.arange(n,"),
                                            ("return table.reshape(length, dim)", "return table.reshape(n, dim)")),
             ("positions.interface",)),
    Mutation("positions_float64", (("return table.reshape(length, dim)", "return table.reshape(length, dim).double()"),),
             ("positions.shapes", "positions.values")),
    Mutation("shift_argument_renamed", (("def decoder_inputs(source, target):", "def decoder_inputs(observed, target):"),
                                        ("return torch.cat([source[:, -1:], target[:, :-1]], dim=1)",
                                         "return torch.cat([observed[:, -1:], target[:, :-1]], dim=1)")),
             ("shift.interface",)),
    Mutation("decoder_norm3_renamed", (("self.norm3 = nn.LayerNorm(embed_dim, eps=1e-6)", "self.ln3 = nn.LayerNorm(embed_dim, eps=1e-6)"),
                                       ("x = self.norm3(x + self.dropout3(self.ffn(x)))", "x = self.ln3(x + self.dropout3(self.ffn(x)))")),
             ("decoder.interface",)),
    Mutation("decoder_weights_averaged", (("return (x, weights) if return_attention else x",
                                           "return (x, weights.mean(1)) if return_attention else x"),),
             ("decoder.shapes", "decoder.attention")),
    Mutation("decoder_weights_doubled", (("return (x, weights) if return_attention else x",
                                          "return (x, 2 * weights) if return_attention else x"),),
             ("decoder.attention", "decoder.values")),
    Mutation("attention_unscaled", (("torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])",
                                     "torch.cat([self.q_proj.bias * math.sqrt(E // H), self.k_proj.bias, self.v_proj.bias])"),
                                    ("q_proj_weight=self.q_proj.weight,", "q_proj_weight=self.q_proj.weight * math.sqrt(E // H),")),
             ("decoder.attention_module",), "no 1/sqrt(d) scaling"),
    Mutation("decoder_norm3_weight_detached", (("x = self.norm3(x + self.dropout3(self.ffn(x)))",
                                                "x = F.layer_norm(x + self.dropout3(self.ffn(x)), x.shape[-1:], "
                                                "self.norm3.weight.detach(), self.norm3.bias, 1e-6)"),),
             ("decoder.gradients",)),
    Mutation("encoder_block_no_residual", (("x = self.norm1(x + self.dropout1(self.attn(x, x, x, mask)[0]))",
                                            "x = self.norm1(self.dropout1(self.attn(x, x, x, mask)[0]))"),
                                           ("return self.norm2(x + self.dropout2(self.ffn(x)))",
                                            "return self.norm2(self.dropout2(self.ffn(x)))")),
             ("model.encoder_block",), "no residual connection"),
    Mutation("model_output_renamed", (("self.output_proj = nn.Linear(embed_dim, input_dim)", "self.head = nn.Linear(embed_dim, input_dim)"),
                                      ("return self.output_proj(x)  # (B, T, 2)", "return self.head(x)  # (B, T, 2)")),
             ("model.interface",)),
    Mutation("predict_keeps_start_point", (("return target_in[:, 1:]  # (B, steps, 2)", "return target_in  # (B, steps, 2)"),),
             ("model.shapes", "model.predict", "model.predict_values")),
    Mutation("model_noise_in_eval", (("return self.output_proj(x)  # (B, T, 2)",
                                      "return self.output_proj(x) + 1e-3 * torch.randn_like(x[..., :2])  # (B, T, 2)"),),
             ("model.eval", "model.values")),
    Mutation("model_detached_source", ((_POSITIONS[0], _POSITIONS[0].replace("self.source_proj(source)",
                                                                             "self.source_proj(source.detach())")),),
             ("model.gradients",)),
)

# Fails the training check: the same outputs, but only the output layer's bias learns.
SEQ2SEQ_FROZEN = Mutation("seq2seq_frozen", (
    ("return self.output_proj(x)  # (B, T, 2)",
     "return self.output_proj(x).detach() + self.output_proj.bias - self.output_proj.bias.detach()  # (B, T, 2)"),
), ("model.training", "model.gradients"))


# ---------------------------------------------------------------------------------------------------------
# Every known mistake of each exercise, graded once per test session: what it costs and where

@dataclass(frozen=True)
class Cases:
    """What the exercise-wide tests need of one exercise: every registered exercise has an entry in ``CASES``
    (a test says so), and the tests that repeat per exercise are parametrised over it."""

    solution: Path
    known: tuple  # every known mistake, textbook and seen in published code: graded by the cascade tests
    frozen: Mutation | None  # a model that cannot learn: fails the training check (None: the exercise trains nothing)
    nbgrader_bug: str  # the known mistake the nbgrader test's student makes (a name in ``known``)
    nbgrader_hint: str  # what her feedback must name
    noise: tuple[str, str]  # (section, line) where the nbgrader test's student adds warnings and stderr output
    # Mistakes no switch names, inside a part that a composite is built from: (id, old, new) edits of the solution,
    # each graded under several draws (tests/test_reproducible.py).
    unknown: tuple = ()
    # Code at the start of the trained model's forward that makes it compute no known function (anchor, code):
    # the training check must then refuse to score it (tests/test_training.py). None: not applicable.
    unverifiable: tuple[str, str] | None = None

    @property
    def correct(self) -> tuple[Path, ...]:
        """The solution and every correct variant written differently: ``tests/submissions/<exercise>_*.py``."""
        name = self.solution.stem
        return (self.solution, *sorted((ROOT / "tests" / "submissions").glob(f"{name}_*.py")))


CASES = {
    "transformer": Cases(ROOT / "solutions" / "transformer.py", TRANSFORMER + REAL_WORLD + CHECK_BUGS, FROZEN_ENCODER,
                         "no_residual", "no residual connection", ("TransformerBlock", "        mask = None\n"),
                         unknown=(("norm1_eps_1e-2", "nn.LayerNorm(embed_dim, eps=1e-6)\n        self.norm2", "nn.LayerNorm(embed_dim, eps=1e-2)\n        self.norm2"),),
                         unverifiable=("        padding_mask = tokens != 0  # (B, T), True = real token\n",
                                       "        tokens = tokens.flip(1)  # reads the tweet backwards\n")),
    "attention_rnn": Cases(ATTENTION_RNN_SOLUTION, ATTENTION_RNN + ATTENTION_RNN_CHECK_BUGS, ATTENTION_RNN_FROZEN,
                           "reads_padded_step", "reads a padded step", ("TemporalAttention", "        B, T, H = h.shape\n"),
                           unknown=(("sigmoid_of_tanh", "weights = torch.sigmoid(scores)", "weights = torch.sigmoid(torch.tanh(scores))"),
                                    ("tanh_times_1.1", "scores = torch.tanh(scores)", "scores = torch.tanh(scores) * 1.1")),
                           unverifiable=("        mask = tokens != 0  # (B, T), True = real step\n",
                                         "        tokens = tokens.flip(1)  # reads the tweet backwards\n")),
    "cnn_attention": Cases(CNN_ATTENTION_SOLUTION, CNN_ATTENTION + CNN_ATTENTION_NO_RELU + CNN_ATTENTION_CHECK_BUGS,
                           CNN_ATTENTION_FROZEN,
                           "cbam_parallel", "in parallel", ("SqueezeExcitation", "        B, C, H, W = x.shape\n")),
    "vit": Cases(VIT_SOLUTION, VIT + VIT_CHECK_BUGS, VIT_FROZEN, "block_post_norm", "post-norm",
                 ("SequencePooling", "        B, N, D = x.shape\n"),
                 unknown=(("vit_norm1_eps_1e-2", "nn.LayerNorm(embed_dim, eps=1e-6)\n        self.attn", "nn.LayerNorm(embed_dim, eps=1e-2)\n        self.attn"),)),
    "seq2seq": Cases(SEQ2SEQ_SOLUTION, SEQ2SEQ + SEQ2SEQ_CHECK_BUGS, SEQ2SEQ_FROZEN, "decoder_pre_norm", "pre-norm",
                     ("DecoderBlock", "        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, self_mask)[0]))\n"),
                     unknown=(("seq2seq_norm3_eps_1e-2", "self.norm3 = nn.LayerNorm(embed_dim, eps=1e-6)", "self.norm3 = nn.LayerNorm(embed_dim, eps=1e-2)"),)),
}
SOURCES = {name: cases.solution for name, cases in CASES.items()}
KNOWN = {name: cases.known for name, cases in CASES.items()}


def graded(exercise: str, name: str, salt: int = 0):
    """The report of the known mistake ``name`` of ``exercise``, graded in process without training (once per
    worker process: the cascade and reproducibility tests share it)."""
    return _graded(exercise, name, salt)


@functools.lru_cache(maxsize=None)
def _graded(exercise: str, name: str, salt: int):
    from conftest import grade_source_in_process

    mutation = next(m for m in KNOWN[exercise] if m.name == name)
    return grade_source_in_process(mutated_source(mutation, SOURCES[exercise]), exercise=exercise, salt=salt)


def lost_points(report) -> dict[str, float]:
    """Points lost per part, leaving out the training checks (not run in process)."""
    lost: dict[str, float] = {}
    for r in report.results:
        if r.points < r.max_points and r.status.value != "skipped":
            lost[r.part] = lost.get(r.part, 0.0) + r.max_points - r.points
    return lost


def cascade_table(exercise: str) -> str:
    """The README's table for ``exercise``: each known mistake, the points it loses and the parts losing them."""
    rows = [f"| {exercise} mistake | points lost | parts that lose them |", "|---|---|---|"]
    for mutation in KNOWN[exercise]:
        lost = lost_points(graded(exercise, mutation.name))
        parts = ", ".join(f"{part} {points:g}" for part, points in lost.items())
        note = f" (cascade: {mutation.cascade})" if mutation.cascade else ""
        rows.append(f"| `{mutation.name}` | {sum(lost.values()):g} | {parts}{note} |")
    return "\n".join(rows)
