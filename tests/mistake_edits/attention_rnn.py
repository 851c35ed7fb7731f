"""Known mistakes of the attention-over-LSTM exercise (edits of solutions/attention_rnn.py)."""

from __future__ import annotations

from mistake_edits import ROOT, Cases, Mutation

ATTENTION_RNN_SOLUTION = ROOT / "solutions" / "attention_rnn.py"

ATTENTION_RNN = (
    Mutation("softmax_over_features", (
        ('                scores = scores.masked_fill(~mask, float("-inf"))', "                pass"),
        ("weights = torch.softmax(scores, dim=1)", "weights = torch.softmax(scores.unsqueeze(-1), dim=-1).squeeze(-1)"),
    ), ("ta.normalised", "ta.softmax_values")),
    Mutation("no_tanh", (("scores = torch.tanh(scores)", "scores = scores"),),
             ("ta.softmax_values",)),
    Mutation("padding_attended", (("if mask is not None:\n                scores", "if False:\n                scores"),),
             ("ta.normalised", "ta.softmax_values")),
    Mutation("reads_padded_step", (("final = out[torch.arange(out.size(0), device=out.device), last]", "final = out[:, -1]"),),
             ("ac.values", "ac.padding")),
    Mutation("sigmoid_softmax_swapped", (('if self.normalise == "softmax":', 'if self.normalise == "sigmoid":'),),
             ("ta.softmax_values", "ta.sigmoid_values")),
    Mutation("weights_not_applied", (("weighted = h * weights.unsqueeze(-1)  # (B, T, H)", "weighted = h  # (B, T, H)"),),
             ("ta.softmax_values", "ta.sigmoid_values")),
    Mutation("sigmoid_mode_gives_softmax", (('if self.normalise == "softmax":', "if True:"),),
             ("ta.sigmoid_values",)),
    Mutation("classifier_mask_not_passed", (("weighted, weights = self.attention(h, mask)",
                                             "weighted, weights = self.attention(h)"),),
             ("ac.values", "ac.attention", "ac.padding")),
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


CASES = Cases(ATTENTION_RNN_SOLUTION, ATTENTION_RNN + ATTENTION_RNN_CHECK_BUGS, ATTENTION_RNN_FROZEN,
              "reads_padded_step", "reads a padded step", ("TemporalAttention", "        B, T, H = h.shape\n"),
              unknown=(("sigmoid_of_tanh", "weights = torch.sigmoid(scores)", "weights = torch.sigmoid(torch.tanh(scores))"),
                       ("tanh_times_1.1", "scores = torch.tanh(scores)", "scores = torch.tanh(scores) * 1.1")),
              unverifiable=("        mask = tokens != 0  # (B, T), True = real step\n",
                            "        tokens = tokens.flip(1)  # reads the tweet backwards\n"))
