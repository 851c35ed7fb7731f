"""Known mistakes of the attention-in-CNNs exercise (edits of solutions/cnn_attention.py)."""

from __future__ import annotations

from mistake_edits import ROOT, Cases, Mutation

from autograder.exercises.cnn_attention.mistakes import (
    CBAM_PARALLEL, CBAM_SPATIAL_FIRST, CHANNEL_NO_MAX, CHANNEL_NO_MEAN, CHANNEL_SIGMOID_EACH, CHANNEL_TWO_MLPS,
    CNN_DISCARDED, CNN_MAX_HEAD, CNN_POOL_FIRST, CNN_UNKNOWN, NO_RELU, SE_MAX_POOL, SE_NO_SIGMOID, SE_NOT_APPLIED,
    SELF_COLUMN, SELF_GAMMA, SELF_GAMMA_INIT, SELF_SCALED, SELF_SOFTMAX_QUERIES, SELF_SWAPPED, SPATIAL_NO_SIGMOID,
    SPATIAL_OVER_SPACE, SPATIAL_SWAPPED,
)

CNN_ATTENTION_SOLUTION = ROOT / "solutions" / "cnn_attention.py"

# The edits that make the named mistakes: (declared mistake, edits, failing). Each one's name, hint and
# reference switch are its declaration's (``autograder/exercises/cnn_attention/mistakes.py``).
_EDITS = (
    # SqueezeExcitation
    (SE_MAX_POOL,
     (("squeezed = x.mean((2, 3), keepdim=True)", "squeezed = x.amax((2, 3), keepdim=True)"),),
     ("se.values",)),
    (SE_NO_SIGMOID,
     (("weights = torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))", "weights = self.fc2(F.relu(self.fc1(squeezed)))"),),
     ("se.values", "se.range")),
    (SE_NOT_APPLIED,
     (("out = x * weights  # (B, C, H, W): each channel rescaled by its gate", "out = x  # (B, C, H, W)"),),
     ("se.values",)),
    # ChannelAttention
    (CHANNEL_NO_MAX,
     (("weights = torch.sigmoid(avg_out + max_out)", "weights = torch.sigmoid(avg_out)"),),
     ("channel.values",)),
    (CHANNEL_NO_MEAN,
     (("weights = torch.sigmoid(avg_out + max_out)", "weights = torch.sigmoid(max_out)"),),
     ("channel.values",)),
    (CHANNEL_SIGMOID_EACH,
     (("weights = torch.sigmoid(avg_out + max_out)", "weights = torch.sigmoid(avg_out) + torch.sigmoid(max_out)"),),
     ("channel.values", "channel.range")),
    (CHANNEL_TWO_MLPS,
     (("self.fc2 = nn.Conv2d(hidden, channels, 1)  # one MLP, shared by both descriptors",
       "self.fc2 = nn.Conv2d(hidden, channels, 1)\n"
       "        self.fc1_max = nn.Conv2d(channels, hidden, 1)\n        self.fc2_max = nn.Conv2d(hidden, channels, 1)"),
      ("max_out = self.fc2(F.relu(self.fc1(max_desc)))", "max_out = self.fc2_max(F.relu(self.fc1_max(max_desc)))")),
     ("channel.interface", "channel.values")),
    # SpatialAttention
    (SPATIAL_SWAPPED,
     (("[x.mean(1, keepdim=True), x.amax(1, keepdim=True)]", "[x.amax(1, keepdim=True), x.mean(1, keepdim=True)]"),),
     ("spatial.values",)),
    (SPATIAL_OVER_SPACE,
     (("[x.mean(1, keepdim=True), x.amax(1, keepdim=True)]", "[x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)]"),),
     ("spatial.shapes", "spatial.values")),
    (SPATIAL_NO_SIGMOID,
     (("weights = torch.sigmoid(self.conv(pooled))", "weights = self.conv(pooled)"),),
     ("spatial.values", "spatial.range")),
    # CBAM
    (CBAM_SPATIAL_FIRST,
     (("refined, _ = self.channel(x)  # (B, C, H, W): channel attention first\n"
       "        out, weights = self.spatial(refined)  # (B, C, H, W), (B, 1, H, W): then spatial, on its output",
       "refined, weights = self.spatial(x)  # (B, C, H, W), (B, 1, H, W)\n"
       "        out, _ = self.channel(refined)  # (B, C, H, W)"),),
     ("cbam.values",)),
    (CBAM_PARALLEL,
     (("refined, _ = self.channel(x)  # (B, C, H, W): channel attention first\n"
       "        out, weights = self.spatial(refined)  # (B, C, H, W), (B, 1, H, W): then spatial, on its output",
       "_, channel_weights = self.channel(x)  # (B, C, 1, 1)\n"
       "        _, weights = self.spatial(x)  # (B, 1, H, W)\n"
       "        out = x * channel_weights * weights  # (B, C, H, W)"),),
     ("cbam.values",)),
    # AttentionCNN
    (CNN_POOL_FIRST,
     (("x = F.relu(conv(x))  # (B, width, H_i, W_i)", "x = F.max_pool2d(F.relu(conv(x)), 2)  # (B, width, H_i // 2, W_i // 2)"),
      ("            x = F.max_pool2d(x, 2)  # (B, width, H_i // 2, W_i // 2)\n", "")),
     ("cnn.values", "cnn.attention")),
    (CNN_MAX_HEAD,
     (("pooled = x.mean((2, 3))", "pooled = x.amax((2, 3))"),),
     ("cnn.values",)),
    (CNN_DISCARDED,
     (("x, weights = self.attentions[i](x)", "_, weights = self.attentions[i](x)"),),
     ("cnn.values",)),
    # SelfAttention2d
    (SELF_SOFTMAX_QUERIES,
     (("weights = torch.softmax(scores, dim=-1)", "weights = torch.softmax(scores, dim=1)"),),
     ("self.weights_sum", "self.values")),
    (SELF_GAMMA,
     (("out = x + self.gamma * attended", "out = x + attended"),),
     ("self.values", "self.identity_at_init")),
    (SELF_SWAPPED,
     (("q = self.query(x).view(B, -1, N)", "q = self.key(x).view(B, -1, N)"),
      ("k = self.key(x).view(B, -1, N)", "k = self.query(x).view(B, -1, N)")),
     ("self.values", "self.weights")),
    (SELF_COLUMN,
     (("q = self.query(x).view(B, -1, N)", "q = self.query(x).transpose(2, 3).reshape(B, -1, N)"),
      ("k = self.key(x).view(B, -1, N)", "k = self.key(x).transpose(2, 3).reshape(B, -1, N)"),
      ("v = self.value(x).view(B, C, N)", "v = self.value(x).transpose(2, 3).reshape(B, C, N)"),
      ("attended = torch.bmm(v, weights.transpose(1, 2)).view(B, C, H, W)",
       "attended = torch.bmm(v, weights.transpose(1, 2)).view(B, C, W, H).transpose(2, 3)")),
     ("self.weights",)),
    (SELF_SCALED,
     (("scores = torch.bmm(q, k)", "scores = torch.bmm(q, k) / q.size(-1) ** 0.5"),),
     ("self.values", "self.weights")),
)

# (name, edits, failing, hint, reference switches or None), as tests/test_cnn_attention_reference.py reads them.
CNN_ATTENTION_DRAFT = tuple((mistake.name, edits, failing, mistake.hint, None if mistake.switch is None else
                             dict([mistake.switch])) for mistake, edits, failing in _EDITS)

# What the mistakes without a reference switch do (checked by tests/test_cnn_attention_reference.py).
CNN_ATTENTION_NO_SWITCH = {
    "channel_two_mlps": "adds parameters fc1_max, fc2_max; equals the reference when they are copies of fc1, "
                        "fc2, differs from it otherwise",
    "spatial_pool_over_space": "the conv gets 2C channels of size 1 x 1: RuntimeError whenever C > 1 (with C == 1 "
                               "it runs and returns weights of shape (B, 1, 1, 1))",
}

_CNN_DRAFT = {entry[0]: entry for entry in CNN_ATTENTION_DRAFT}


def named(name: str, failing: tuple, parts: tuple = (), cascade: str = "") -> Mutation:
    """A known mistake of ``CNN_ATTENTION_DRAFT``: its edits, with the checks it fails (the hint it must earn is
    its declaration's)."""
    _, edits, _, _, _ = _CNN_DRAFT[name]
    return Mutation(name, edits, failing, parts=parts, cascade=cascade)


# The named mistakes of the issue, each with the checks it must fail.
CNN_ATTENTION = (
    named("se_max_pool", ("se.values",)),
    named("se_no_sigmoid", ("se.values", "se.range")),
    named("se_weights_not_applied", ("se.values", "se.range")),
    named("channel_no_max_branch", ("channel.values",)),
    named("channel_no_mean_branch", ("channel.values",)),
    named("channel_sigmoid_each", ("channel.values", "channel.range")),
    named("channel_two_mlps", ("channel.interface", "channel.values")),
    named("spatial_max_mean_swapped", ("spatial.values",)),
    # the spatial attention crashes for C > 1: CBAM and the CNN are judged with the grader's in its place
    named("spatial_pool_over_space", ("spatial.shapes", "spatial.values", "spatial.range", "spatial.gradients")),
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

# A declared mistake no switch of the reference makes: the channel gate without its sigmoid computes a function no
# switch names; CBAM and the CNN built on it are judged with the grader's channel attention in its place
# (``autograder.stand_ins``), so it costs the channel attention's checks only.
CNN_ATTENTION_UNSWITCHED = (
    Mutation("channel_no_sigmoid", (("weights = torch.sigmoid(avg_out + max_out)", "weights = avg_out + max_out"),),
             ("channel.values", "channel.range")),
)

# The bottleneck MLP without its ReLU (the grader's weights give its hidden units both signs): the part's values
# check names it, and the composites built on it are judged on the function it computes.
CNN_ATTENTION_NO_RELU = (
    Mutation(NO_RELU.name, (("weights = torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))",
                             "weights = torch.sigmoid(self.fc2(self.fc1(squeezed)))"),), ("se.values",)),
    Mutation("channel_no_relu", (("avg_out = self.fc2(F.relu(self.fc1(avg_desc)))", "avg_out = self.fc2(self.fc1(avg_desc))"),
                                 ("max_out = self.fc2(F.relu(self.fc1(max_desc)))", "max_out = self.fc2(self.fc1(max_desc))")),
             ("channel.values",), "no ReLU"),
)

# The bottleneck's width: the reduction ignored costs the interface only (the reference computes with the sizes it
# gets); channels // reduction without max(1, .) leaves no hidden unit for C < reduction, and the part crashes there.
_HIDDEN = ("hidden = max(1, channels // reduction)\n        self.fc1 = nn.Conv2d(channels, hidden, 1)\n"
           "        self.fc2 = nn.Conv2d(hidden, channels, 1)")
_SE_HIDDEN, _CHANNEL_HIDDEN = _HIDDEN + "\n        ### END", _HIDDEN + "  # one MLP"  # each once in the solution
CNN_ATTENTION_BOTTLENECK = (
    Mutation("se_reduction_ignored", ((_SE_HIDDEN, _SE_HIDDEN.replace("max(1, channels // reduction)", "channels")),),
             ("se.interface",)),
    Mutation("channel_reduction_ignored",
             ((_CHANNEL_HIDDEN, _CHANNEL_HIDDEN.replace("max(1, channels // reduction)", "channels")),),
             ("channel.interface",)),
    Mutation("se_hidden_zero",
             ((_SE_HIDDEN, _SE_HIDDEN.replace("max(1, channels // reduction)", "channels // reduction")),),
             ("se.interface", "se.shapes", "se.values"), parts=("SqueezeExcitation", "AttentionCNN"),
             cascade="SqueezeExcitation(8) has no hidden unit and crashes, and so does the submission's own CNN, "
                     "whose first stage has 8 channels"),
    Mutation("channel_hidden_zero",
             ((_CHANNEL_HIDDEN, _CHANNEL_HIDDEN.replace("max(1, channels // reduction)", "channels // reduction")),),
             ("channel.interface", "channel.shapes", "channel.values"),
             parts=("ChannelAttention", "CBAM", "AttentionCNN"),
             cascade="ChannelAttention(8) has no hidden unit and crashes, and so do the submission's own CBAM and "
                     "CNN, which call it with 8 channels"),
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
    Mutation(SELF_GAMMA_INIT.name, (("self.gamma = nn.Parameter(torch.zeros(1))",
                                     "self.gamma = nn.Parameter(torch.ones(1))"),), ("self.identity",)),
    Mutation("cnn_head_without_bias", (("self.head = nn.Linear(widths[-1], num_classes)",
                                        "self.head = nn.Linear(widths[-1], num_classes, bias=False)"),), ("cnn.interface",)),
    Mutation("cnn_logits_squeezed", (("logits = self.head(pooled)  # (B, num_classes)",
                                      "logits = self.head(pooled).squeeze(0)"),), ("cnn.shapes",)),
    Mutation("cnn_last_map_only", (("maps.append(weights)", "maps = [weights]"),), ("cnn.attention",)),
    Mutation(CNN_UNKNOWN.name, (('raise ValueError(f"attention must be one of',
                                 'raise KeyError(f"attention must be one of'),), ("cnn.unknown_name",)),
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


CASES = Cases(CNN_ATTENTION_SOLUTION, CNN_ATTENTION + CNN_ATTENTION_UNSWITCHED + CNN_ATTENTION_NO_RELU +
              CNN_ATTENTION_BOTTLENECK + CNN_ATTENTION_CHECK_BUGS,
              CNN_ATTENTION_FROZEN,
              "cbam_parallel", "in parallel", ("SqueezeExcitation", "        B, C, H, W = x.shape\n"))
