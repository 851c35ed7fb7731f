"""Draft: the known mistakes of the attention-in-CNNs exercise, as edits of ``solutions/cnn_attention.py``.

Each entry is ``(name, ((old, new), ...), failing_checks_guess, hint_substring_guess, switches)``, the first
four as ``Mutation`` in ``tests/mutations.py`` takes them (the checks do not exist yet: their names are
guesses). ``switches`` are the keyword switches of ``autograder/exercises/cnn_attention_reference.py`` that
reproduce the mistake (``tests/test_cnn_attention_reference.py`` runs each mutated solution against the
reference so switched), or None where no switch does: ``NO_SWITCH`` says what such a mistake does instead.

The name's first word names the module edited: se, channel, spatial, cbam, cnn (AttentionCNN), self
(SelfAttention2d). Each ``old`` occurs exactly once in the solution, and edits apply in order.
"""

from __future__ import annotations

CNN_ATTENTION = (
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
NO_SWITCH = {
    "channel_two_mlps": "adds parameters fc1_max, fc2_max; equals the reference when they are copies of fc1, "
                        "fc2, differs from it otherwise",
    "spatial_pool_over_space": "the conv gets 2C channels of size 1 x 1: RuntimeError whenever C > 1 (with C == 1 "
                               "it runs and returns weights of shape (B, 1, 1, 1))",
}
