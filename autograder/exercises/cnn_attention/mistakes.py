"""The attention-inside-CNNs exercise's known mistakes, each declared once (``autograder/mistakes.py``): its name
(that of the tests' edit that makes it, ``tests/mistake_edits/cnn_attention.py``), the part it is made in, its
hint, and the switch of the float64 reference (``reference.py``) that reproduces it, or None where no switch does.

Public: it ships in the student wheel with the exercise's public module, and imports nothing from ``hidden.py``
or ``reference.py`` (the switch values are those of ``reference.py``'s keyword arguments, written out here).
"""

from __future__ import annotations

from ...mistakes import Mistake, Mistakes

SE, CHANNEL, SPATIAL, CBAM, SELF, CNN = (
    "SqueezeExcitation", "ChannelAttention", "SpatialAttention", "CBAM", "SelfAttention2d", "AttentionCNN",
)

# --- SqueezeExcitation ---------------------------------------------------------------------------------------
SE_MAX_POOL = Mistake(
    "se_max_pool", SE,
    "max pooling instead of the mean: SE squeezes each channel to its mean over H, W (x.mean((2, 3), keepdim=True))",
    ("pool", "max"))
SE_NO_SIGMOID = Mistake(
    "se_no_sigmoid", SE,
    "no sigmoid: SE's weights are sigmoid(fc2(relu(fc1(squeezed)))), one gate in (0, 1) per channel",
    ("gate", "none"))
SE_NOT_APPLIED = Mistake(
    "se_weights_not_applied", SE,
    "the weights are computed but not applied: out = x * weights (each channel rescaled by its gate)",
    ("applied", False))
# The bottleneck MLP of SE and of CBAM's channel attention: one hint, the switch of both parts' references
# (``relu``); declared with SE's edit (``channel_no_relu`` makes it in ChannelAttention).
NO_RELU = Mistake(
    "se_no_relu", SE,
    "no ReLU in the bottleneck MLP: fc2(relu(fc1(d))), the ReLU between the two 1x1 convolutions",
    ("relu", False))

# The bottleneck's width, named by each part's interface check (no switch: the reference computes with the sizes
# it gets, so a wrong width costs the interface only; a width of 0 crashes)
SE_REDUCTION_IGNORED = Mistake(
    "se_reduction_ignored", SE,
    "the reduction ratio is ignored: SE's bottleneck has hidden = max(1, channels // reduction) units, not channels")
SE_HIDDEN_ZERO = Mistake(
    "se_hidden_zero", SE,
    "SE's bottleneck has channels // reduction units, none when channels < reduction: use max(1, channels // "
    "reduction)")

# --- ChannelAttention ----------------------------------------------------------------------------------------
CHANNEL_NO_MAX = Mistake(
    "channel_no_max_branch", CHANNEL,
    "max branch missing: CBAM's channel attention sums the shared MLP's outputs for the mean and for the max over "
    "H, W: sigmoid(mlp(mean) + mlp(max))",
    ("branches", "mean"))
CHANNEL_NO_MEAN = Mistake(
    "channel_no_mean_branch", CHANNEL,
    "mean branch missing: CBAM's channel attention sums the shared MLP's outputs for the mean and for the max over "
    "H, W: sigmoid(mlp(mean) + mlp(max))",
    ("branches", "max"))
CHANNEL_SIGMOID_EACH = Mistake(
    "channel_sigmoid_each", CHANNEL,
    "sigmoid on each branch before the sum: take one sigmoid of the sum, sigmoid(mlp(mean) + mlp(max)), so that "
    "each gate stays in (0, 1)",
    ("sigmoid", "each"))
# No switch of the reference: the hidden module computes it from the submission's second MLP (``mlps``).
CHANNEL_TWO_MLPS = Mistake(
    "channel_two_mlps", CHANNEL,
    "two MLPs instead of one shared: the mean and the max descriptors both go through the same fc1 and fc2 (one "
    "MLP shared by both branches, CBAM eq. 2)")
CHANNEL_REDUCTION_IGNORED = Mistake(
    "channel_reduction_ignored", CHANNEL,
    "the reduction ratio is ignored: the shared MLP has hidden = max(1, channels // reduction) units, not channels")
CHANNEL_HIDDEN_ZERO = Mistake(
    "channel_hidden_zero", CHANNEL,
    "the shared MLP has channels // reduction units, none when channels < reduction: use max(1, channels // "
    "reduction)")
CHANNEL_NO_SIGMOID = Mistake(  # named by the range check only
    "channel_no_sigmoid", CHANNEL,
    "no sigmoid: the channel weights are sigmoid(mlp(mean) + mlp(max)), one gate in (0, 1) per channel")

# --- SpatialAttention ----------------------------------------------------------------------------------------
SPATIAL_SWAPPED = Mistake(
    "spatial_max_mean_swapped", SPATIAL,
    "max and mean swapped: stack the mean over the channels first, then the max: torch.cat([mean, max], dim=1), in "
    "the order of CBAM eq. 3",
    ("order", "max_mean"))
SPATIAL_OVER_SPACE = Mistake(  # named by the shapes check (the convolution crashes for C > 1)
    "spatial_pool_over_space", SPATIAL,
    "pooled over H, W instead of over the channels: the spatial gate takes the mean and the max over dim 1 "
    "(x.mean(1, keepdim=True), x.amax(1, keepdim=True)), two (B, 1, H, W) maps")
SPATIAL_NO_SIGMOID = Mistake(
    "spatial_no_sigmoid", SPATIAL,
    "no sigmoid: the spatial weights are sigmoid(conv([mean; max])), one gate in (0, 1) per position",
    ("gate", "none"))

# --- CBAM ------------------------------------------------------------------------------------------------------
CBAM_SPATIAL_FIRST = Mistake(
    "cbam_spatial_first", CBAM,
    "spatial attention before channel attention: CBAM applies its channel attention first, then its spatial "
    "attention to the channel attention's output",
    ("arrangement", "spatial_first"))
CBAM_PARALLEL = Mistake(
    "cbam_parallel", CBAM,
    "both maps computed from the input, in parallel: CBAM is sequential, its spatial attention sees the channel "
    "attention's output, out = spatial(channel(x)[0])[0]",
    ("arrangement", "parallel"))

# --- SelfAttention2d -----------------------------------------------------------------------------------------
SELF_SOFTMAX_QUERIES = Mistake(
    "self_softmax_over_queries", SELF,
    "softmax over the queries: normalise each row over the keys j (dim -1), so that weights[b, i, :] sums to 1",
    ("softmax_dim", "queries"))
SELF_GAMMA = Mistake(
    "self_gamma_ignored", SELF,
    "gamma ignored: out = x + self.gamma * attended (gamma starts at 0: the block starts as the identity)",
    ("gamma", False))
SELF_SWAPPED = Mistake(
    "self_query_key_swapped", SELF,
    "query and key swapped: weights[b, i, j] = softmax over j of <query_i, key_j>; row i belongs to position i's "
    "query",
    ("swapped", True))
SELF_COLUMN = Mistake(
    "self_positions_column_major", SELF,
    "positions in column-major order: flatten (H, W) row by row, position i = h * W + w (x.view(B, C, H * W))",
    ("positions", "column"))
SELF_SCALED = Mistake(
    "self_scaled", SELF,
    "scaled by 1/sqrt(d): this block (SAGAN's) takes the raw dot products <query_i, key_j>, with no scaling",
    ("scale", "sqrt_d"))
SELF_GAMMA_INIT = Mistake(  # named by the identity check
    "self_gamma_starts_at_one", SELF,
    "gamma must start at 0, nn.Parameter(torch.zeros(1)), so that the block starts as the identity")

# --- AttentionCNN ------------------------------------------------------------------------------------------------
CNN_POOL_FIRST = Mistake(
    "cnn_pool_before_attention", CNN,
    "pooling before the attention: per stage x = relu(conv(x)), then x, w = attention(x), then max_pool2d(x, 2)",
    ("pool_first", True))
CNN_MAX_HEAD = Mistake(
    "cnn_max_before_head", CNN,
    "max instead of the mean before the head: the last feature map is averaged over H, W (x.mean((2, 3)))",
    ("head_pool", "max"))
CNN_DISCARDED = Mistake(
    "cnn_attention_discarded", CNN,
    "the attention's output discarded: go on with the attention's refined map (x, w = attention(x)), not with its "
    "input",
    ("discard", True))
CNN_UNKNOWN = Mistake(  # named by the unknown-name check
    "cnn_unknown_attention_key_error", CNN,
    "an unknown attention name must raise ValueError (raise ValueError(...) in __init__), not another exception")

MISTAKES = Mistakes(
    SE_MAX_POOL, SE_NO_SIGMOID, SE_NOT_APPLIED, NO_RELU, SE_REDUCTION_IGNORED, SE_HIDDEN_ZERO,
    CHANNEL_NO_MAX, CHANNEL_NO_MEAN, CHANNEL_SIGMOID_EACH, CHANNEL_TWO_MLPS, CHANNEL_NO_SIGMOID,
    CHANNEL_REDUCTION_IGNORED, CHANNEL_HIDDEN_ZERO,
    SPATIAL_SWAPPED, SPATIAL_OVER_SPACE, SPATIAL_NO_SIGMOID,
    CBAM_SPATIAL_FIRST, CBAM_PARALLEL,
    SELF_SOFTMAX_QUERIES, SELF_GAMMA, SELF_SWAPPED, SELF_COLUMN, SELF_SCALED, SELF_GAMMA_INIT,
    CNN_POOL_FIRST, CNN_MAX_HEAD, CNN_DISCARDED, CNN_UNKNOWN,
)
