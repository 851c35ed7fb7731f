"""Known mistakes of the trajectory transformer exercise (edits of solutions/seq2seq.py)."""

from __future__ import annotations

from mistake_edits import ROOT, Cases, Mutation

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
_DECODER_LAYER_NORM = (  # the annotated transformer's hand-written LayerNorm, x.std() (n - 1) with eps added to it
    "    def forward(self, x, memory, self_mask=None, return_attention: bool = False):",
    "    @staticmethod\n"
    "    def layer_norm(norm, x):\n"
    "        return norm.weight * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + norm.eps) + norm.bias\n\n"
    "    def forward(self, x, memory, self_mask=None, return_attention: bool = False):")
_DECODER_UNBIASED = (_DECODER_LAYER_NORM,) + tuple(
    (f"x = self.norm{i}(x + self.dropout{i}({arg}", f"x = self.layer_norm(self.norm{i}, x + self.dropout{i}({arg}")
    for i, arg in ((1, "self.self_attn("), (2, "attended)"), (3, "self.ffn(x)")))
_DECODER_UNBIASED_PRE_NORM = (_DECODER_LAYER_NORM,) + tuple(  # the pre-norm edits, each norm hand-written
    (old, new.replace("self.norm1(x)", "self.layer_norm(self.norm1, x)").replace(
        "self.norm2(x)", "self.layer_norm(self.norm2, x)").replace("self.norm3(x)", "self.layer_norm(self.norm3, x)"))
    for old, new in _DECODER_PRE_NORM)
_POSITIONS = ("memory = self.source_proj(source) + sinusoidal_positions(S, E).to(source)",
              "x = self.target_proj(target_in) + sinusoidal_positions(T, E).to(target_in)")

# The named mistakes of the issue, each with the checks it must fail (their hints: autograder/exercises/seq2seq/mistakes.py).
SEQ2SEQ = (
    Mutation("mask_inverted", ((_MASK_LINE, "return steps[None, :] > steps[:, None]"),), ("mask.values",)),
    Mutation("mask_transposed", ((_MASK_LINE, "return steps[None, :] >= steps[:, None]"),), ("mask.values",)),
    Mutation("mask_strictly_lower", ((_MASK_LINE, "return steps[None, :] < steps[:, None]"),), ("mask.values",)),
    Mutation("mask_allows_everything", ((_MASK_LINE, "return torch.ones(size, size, dtype=torch.bool)"),),
             ("mask.values",)),
    # PyTorch's generate_square_subsequent_mask: the right pattern in another form costs the interface only
    Mutation("mask_additive", ((_MASK_LINE, "return torch.triu(torch.full((size, size), float('-inf')), diagonal=1)"),),
             ("mask.interface",)),
    Mutation("decoder_mask_ignored", (("self.self_attn(x, x, x, self_mask)[0]", "self.self_attn(x, x, x)[0]"),),
             ("decoder.values",)),
    # the annotated transformer's hand-written LayerNorm in the decoder, alone and with its pre-norm sublayers
    Mutation("decoder_unbiased_layer_norm", _DECODER_UNBIASED, ("decoder.values",)),
    Mutation("decoder_pre_norm_and_unbiased_layer_norm", _DECODER_UNBIASED_PRE_NORM,
             ("decoder.values",),
             "unbiased standard deviation"),
    Mutation("mask_not_passed", (("x = block(x, memory, mask)", "x = block(x, memory)"),),
             ("model.causality", "model.values")),
    Mutation("positions_sin_cos_swapped", (("torch.stack([angles.sin(), angles.cos()], dim=-1)",
                                            "torch.stack([angles.cos(), angles.sin()], dim=-1)"),),
             ("positions.values",)),
    Mutation("positions_frequency_per_pair", (("-torch.arange(0, dim, 2, dtype=torch.float32) / dim",
                                               "-torch.arange(0, dim // 2, dtype=torch.float32) / dim"),),
             ("positions.values",)),
    Mutation("model_no_positions", ((_POSITIONS[0], "memory = self.source_proj(source)"),
                                    (_POSITIONS[1], "x = self.target_proj(target_in)")),
             ("model.values",)),
    Mutation("cross_attention_reads_target", (("self.cross_attn(x, memory, memory)", "self.cross_attn(x, x, x)"),),
             ("decoder.values",)),
    Mutation("decoder_inputs_not_shifted", (("return torch.cat([source[:, -1:], target[:, :-1]], dim=1)",
                                             "return target"),), ("shift.values",)),
    Mutation("decoder_inputs_shifted_twice", (("return torch.cat([source[:, -1:], target[:, :-1]], dim=1)",
                                               "return torch.cat([source[:, -2:], target[:, :-2]], dim=1)"),),
             ("shift.values",)),
    Mutation("predict_feeds_zeros", _predict_feeding("torch.zeros_like(points[:, -1:])"),
             ("model.predict", "model.predict_values")),
    Mutation("predict_feeds_first_point", _predict_feeding("source[:, :1]"),
             ("model.predict", "model.predict_values")),
    Mutation("predict_starts_from_first_point", (("target_in = source[:, -1:]  # (B, 1, 2): the last observed point",
                                                  "target_in = source[:, :1]  # (B, 1, 2)"),),
             ("model.predict", "model.predict_values")),
    Mutation("decoder_pre_norm", _DECODER_PRE_NORM, ("decoder.values",)),
    Mutation("decoder_sublayer_without_dropout", (("x = self.norm2(x + self.dropout2(attended))",
                                                   "x = self.norm2(x + attended)"),), ("decoder.dropout",)),
    Mutation("decoder_self_attention_without_dropout", (("x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, self_mask)[0]))",
                                                         "x = self.norm1(x + self.self_attn(x, x, x, self_mask)[0])"),),
             ("decoder.dropout",), hint="each sub-layer has its own dropout"),
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


CASES = Cases(SEQ2SEQ_SOLUTION, SEQ2SEQ + SEQ2SEQ_CHECK_BUGS, SEQ2SEQ_FROZEN, "decoder_pre_norm", "pre-norm",
              ("DecoderBlock", "        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, self_mask)[0]))\n"),
              unknown=(("seq2seq_norm3_eps_1e-2", "self.norm3 = nn.LayerNorm(embed_dim, eps=1e-6)", "self.norm3 = nn.LayerNorm(embed_dim, eps=1e-2)"),))
