"""Known mistakes of the transformer exercise (edits of solutions/transformer.py)."""

from __future__ import annotations

from mistake_edits import ROOT, Cases, Mutation

from autograder.kit.blocks import PRE_NORM

TRANSFORMER_SOLUTION = ROOT / "solutions" / "transformer.py"

TRANSFORMER = (
    Mutation("no_scaling", (("scores = query @ key.transpose(-2, -1) / math.sqrt(d)", "scores = query @ key.transpose(-2, -1)"),),
             ("sdpa.values", "sdpa.mask")),
    Mutation("scale_by_value_dim", (("d = query.size(-1)", "d = value.size(-1)"),),
             ("sdpa.values",)),
    Mutation("scale_by_embed_dim", (("q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)  # (B, nh, Tq, hs)",
                                      "q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2) * math.sqrt(hs / E)"),),
             ("mha.values", "mha.mask")),
    Mutation("softmax_wrong_axis", (("weights = torch.softmax(scores, dim=-1)", "weights = torch.softmax(scores, dim=-2)"),),
             ("sdpa.weights_sum", "sdpa.values", "sdpa.mask")),
    Mutation("mask_inverted", (("scores.masked_fill(~mask,", "scores.masked_fill(mask,"),),
             ("sdpa.mask",)),
    Mutation("mask_ignored", (("if mask is not None:\n        scores", "if False:\n        scores"),),
             ("sdpa.mask",)),
    Mutation("heads_without_transpose", (
        ("q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)", "q = self.q_proj(query).view(B, nh, Tq, hs)"),
        ("k = self.k_proj(key).view(B, Tk, nh, hs).transpose(1, 2)", "k = self.k_proj(key).view(B, nh, Tk, hs)"),
        ("v = self.v_proj(value).view(B, Tk, nh, hs).transpose(1, 2)", "v = self.v_proj(value).view(B, nh, Tk, hs)"),
        ("y = y.transpose(1, 2).reshape(B, Tq, nh * hs)", "y = y.reshape(B, Tq, nh * hs)"),
    ), ("mha.values", "mha.mask")),
    Mutation("no_residual", (
        ("x = self.norm1(x + self.dropout1(attn_out))", "x = self.norm1(self.dropout1(attn_out))"),
        ("x = self.norm2(x + self.dropout2(self.ffn(x)))", "x = self.norm2(self.dropout2(self.ffn(x)))"),
    ), ("block.values",)),
    Mutation("pre_norm", (
        ("attn_out, _ = self.attn(x, x, x, mask)  # (B, T, E)\n        x = self.norm1(x + self.dropout1(attn_out))\n"
         "        x = self.norm2(x + self.dropout2(self.ffn(x)))",
         "h = self.norm1(x)\n        x = x + self.dropout1(self.attn(h, h, h, mask)[0])\n"
         "        x = x + self.dropout2(self.ffn(self.norm2(x)))"),
    ), ("block.values",)),
    Mutation("no_position_embedding", (("return self.token_emb(tokens) + self.pos_emb(positions)", "return self.token_emb(tokens)"),),
             ("embed.values",)),
    Mutation("padding_in_mean", (("pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)", "pooled = x.mean(1)"),),
             ("clf.values", "clf.padding")),
    Mutation("scaled_by_d", (("scores = query @ key.transpose(-2, -1) / math.sqrt(d)", "scores = query @ key.transpose(-2, -1) / d"),),
             ("sdpa.values", "sdpa.mask")),
    Mutation("clf_mask_not_passed", (("x = block(x, padding_mask)", "x = block(x)"),),
             ("clf.values", "clf.padding")),
)

# Deviations seen in published code, alone and combined: each costs points in its own part only, and its hint
# is derived from what matched.
REAL_WORLD = (
    Mutation("ffn_gelu", (("nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear", "nn.Linear(embed_dim, ff_dim), nn.GELU(), nn.Linear"),),
             ("block.interface", "block.values")),
    Mutation("pre_norm_with_gelu", TRANSFORMER[8].edits + (("nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear",
                                                            "nn.Linear(embed_dim, ff_dim), nn.GELU(), nn.Linear"),),
             ("block.interface", "block.values"), PRE_NORM.hint + "; and GELU"),
    Mutation("sinusoidal_positions", (
        ("self.pos_emb = nn.Embedding(max_len, embed_dim)",
         "position = torch.arange(max_len).unsqueeze(1)\n"
         "        div = torch.exp(torch.arange(0, embed_dim, 2) * (-math.log(10000.0) / embed_dim))\n"
         "        table = torch.zeros(max_len, embed_dim)\n"
         "        table[:, 0::2] = torch.sin(position * div)\n"
         "        table[:, 1::2] = torch.cos(position * div)\n"
         "        self.register_buffer(\"pos_table\", table)"),
        ("self.pos_emb(positions)  # (B, T, E)", "self.pos_table[positions]  # (B, T, E)"),
    ), ("embed.interface", "embed.values")),
    Mutation("scaled_token_embedding", (("return self.token_emb(tokens) + self.pos_emb(positions)",
                                         "return self.token_emb(tokens) * math.sqrt(self.token_emb.embedding_dim) + self.pos_emb(positions)"),),
             ("embed.values",)),
    Mutation("oov_padding_idx", (("self.token_emb = nn.Embedding(vocab_size, embed_dim)",
                                  "self.token_emb = nn.Embedding(vocab_size, embed_dim, padding_idx=1)"),),
             ("embed.interface", "embed.gradients")),
    Mutation("dropout_after_norm", (("x = self.norm1(x + self.dropout1(attn_out))", "x = self.dropout1(self.norm1(x + attn_out))"),
                                    ("x = self.norm2(x + self.dropout2(self.ffn(x)))", "x = self.dropout2(self.norm2(x + self.ffn(x)))")),
             ("block.dropout",)),
    # The annotated transformer's hand-written LayerNorm: x.std() (n - 1) with eps added to it, not under the root.
    Mutation("unbiased_layer_norm", (
        ("    def forward(self, x, padding_mask=None):",
         "    @staticmethod\n"
         "    def layer_norm(norm, x):\n"
         "        return norm.weight * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + norm.eps) + norm.bias\n\n"
         "    def forward(self, x, padding_mask=None):"),
        ("x = self.norm1(x + self.dropout1(attn_out))", "x = self.layer_norm(self.norm1, x + self.dropout1(attn_out))"),
        ("x = self.norm2(x + self.dropout2(self.ffn(x)))", "x = self.layer_norm(self.norm2, x + self.dropout2(self.ffn(x)))"),
    ), ("block.values",)),
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
             ("sdpa.shapes",)),  # the multi-head attention crashes on them: judged with the grader's in its place
    Mutation("sdpa_detached_query", (("scores = query @ key", "scores = query.detach() @ key"),),
             ("sdpa.gradients",)),
    Mutation("mha_fused_projection", (("self.q_proj = nn.Linear(embed_dim, inner)", "self.qkv = nn.Linear(embed_dim, inner)"),
                                      ("q = self.q_proj(query)", "q = self.qkv(query)")),
             ("mha.interface",)),
    Mutation("mha_weights_averaged", (("return self.out_proj(y), weights", "return self.out_proj(y), weights.mean(1)"),),
             ("mha.shapes",)),
    Mutation("mha_no_out_proj", (("return self.out_proj(y), weights", "return y, weights"),),
             ("mha.values", "mha.shapes")),
    Mutation("mha_detached_value", (("v = self.v_proj(value).view(B, Tk, nh, hs)", "v = self.v_proj(value).detach().view(B, Tk, nh, hs)"),),
             ("mha.gradients",)),
    Mutation("block_default_eps", (("self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)", "self.norm1 = nn.LayerNorm(embed_dim)"),),
             ("block.interface",)),
    Mutation("block_returns_tuple", (("x = self.norm2(x + self.dropout2(self.ffn(x)))\n        return x",
                                      "x = self.norm2(x + self.dropout2(self.ffn(x)))\n        return x, None"),),
             ("block.shapes",)),  # the classifier crashes on the tuple: judged with the grader's block in its place
    Mutation("block_mask_not_passed", (("attn_out, _ = self.attn(x, x, x, mask)", "attn_out, _ = self.attn(x, x, x)"),),
             ("block.padding", "block.values")),
    Mutation("block_no_dropout", (("self.dropout1(attn_out)", "attn_out"), ("self.dropout2(self.ffn(x))", "self.ffn(x)")),
             ("block.dropout",)),
    Mutation("sublayer_without_dropout", (("self.dropout2(self.ffn(x))", "self.ffn(x)"),), ("block.dropout",)),
    Mutation("attention_sublayer_without_dropout", (("self.dropout1(attn_out)", "attn_out"),), ("block.dropout",),
             hint="each sub-layer has its own dropout"),
    Mutation("block_dropout_in_eval", (("self.dropout1(attn_out)", "F.dropout(attn_out, 0.1, training=True)"),),
             ("block.dropout", "block.values")),  # the classifier is judged with the grader's block in its place
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


CASES = Cases(TRANSFORMER_SOLUTION, TRANSFORMER + REAL_WORLD + CHECK_BUGS, FROZEN_ENCODER,
              "no_residual", "no residual connection", ("TransformerBlock", "        mask = None\n"),
              unknown=(("norm1_eps_1e-2", "nn.LayerNorm(embed_dim, eps=1e-6)\n        self.norm2", "nn.LayerNorm(embed_dim, eps=1e-2)\n        self.norm2"),),
              unverifiable=("        padding_mask = tokens != 0  # (B, T), True = real token\n",
                            "        tokens = tokens.flip(1)  # reads the tweet backwards\n"))
