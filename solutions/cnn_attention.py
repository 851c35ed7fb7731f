"""Reference solution: attention inside an image CNN (channel, spatial and self-attention).

Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018 (https://arxiv.org/abs/1709.01507);
Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018 (https://arxiv.org/abs/1807.06521);
Wang et al., "Non-local Neural Networks", CVPR 2018 (https://arxiv.org/abs/1711.07971);
Zhang et al., "Self-Attention Generative Adversarial Networks", ICML 2019 (https://arxiv.org/abs/1805.08318).

This file is the single source of truth for the exercise's solution code: the nbgrader source notebook
``assignments/source/cnn_attention/cnn_attention.ipynb`` holds these sections verbatim (``# %% [name]`` starts
a section, and nbgrader's BEGIN/END SOLUTION comments mark what its release replaces with a stub).

Images are (B, C, H, W). Every attention module returns its refined input, of the input's shape, and the
weights it applied; reductions are written out (``x.mean((2, 3), keepdim=True)``), as in timm's
``squeeze_excite.py`` and ``cbam.py``.
"""

# %% [imports]
import torch
import torch.nn as nn
import torch.nn.functional as F


# %% [SqueezeExcitation]
class SqueezeExcitation(nn.Module):
    """Squeeze-and-Excitation (Hu et al., CVPR 2018): one gate in (0, 1) per channel.

    Squeeze: the mean of each channel over H, W. Excitation: a bottleneck MLP, written as 1x1 convolutions
    ``fc1`` (C -> max(1, C // reduction)) and ``fc2`` (back to C) with a ReLU between, and a sigmoid. The input
    is rescaled channel by channel. (timm's ``SEModule`` rounds the hidden width to a multiple of 8; this
    block, like the paper, uses C // reduction.)
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        ### BEGIN SOLUTION
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        ### END SOLUTION

    def forward(self, x):
        """x (B, C, H, W). Returns out (B, C, H, W) and weights (B, C, 1, 1)."""
        ### BEGIN SOLUTION
        B, C, H, W = x.shape
        squeezed = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1): squeeze, the mean over H, W
        weights = torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))  # (B, C, 1, 1): excitation
        out = x * weights  # (B, C, H, W): each channel rescaled by its gate
        return out, weights
        ### END SOLUTION


# %% [ChannelAttention]
class ChannelAttention(nn.Module):
    """CBAM's channel attention (Woo et al., ECCV 2018, eq. 2).

    M_c(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F))): the mean and the max over H, W go through one shared
    MLP (1x1 convolutions ``fc1``, C -> max(1, C // reduction), and ``fc2``, back to C, ReLU between), their
    outputs are summed, and a single sigmoid gives one gate per channel.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        ### BEGIN SOLUTION
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)  # one MLP, shared by both descriptors
        ### END SOLUTION

    def forward(self, x):
        """x (B, C, H, W). Returns out (B, C, H, W) and weights (B, C, 1, 1)."""
        ### BEGIN SOLUTION
        B, C, H, W = x.shape
        avg_desc = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1): the mean over H, W
        max_desc = x.amax((2, 3), keepdim=True)  # (B, C, 1, 1): the max over H, W
        avg_out = self.fc2(F.relu(self.fc1(avg_desc)))  # (B, C, 1, 1)
        max_out = self.fc2(F.relu(self.fc1(max_desc)))  # (B, C, 1, 1): the same MLP, shared
        weights = torch.sigmoid(avg_out + max_out)  # (B, C, 1, 1): one sigmoid of the sum
        return x * weights, weights
        ### END SOLUTION


# %% [SpatialAttention]
class SpatialAttention(nn.Module):
    """CBAM's spatial attention (Woo et al., ECCV 2018, eq. 3).

    M_s(F) = sigmoid(conv([AvgPool(F); MaxPool(F)])): the mean and the max over the channels, stacked in that
    order, go through one k x k convolution ``conv`` (2 -> 1, zero padding k // 2, no bias) and a sigmoid: one
    gate per position. (The authors' code stacks the max first and adds BatchNorm after the convolution; this
    block follows the paper.)
    """

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        ### END SOLUTION

    def forward(self, x):
        """x (B, C, H, W). Returns out (B, C, H, W) and weights (B, 1, H, W)."""
        ### BEGIN SOLUTION
        B, C, H, W = x.shape
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)  # (B, 2, H, W)
        weights = torch.sigmoid(self.conv(pooled))  # (B, 1, H, W): one gate per position
        return x * weights, weights
        ### END SOLUTION


# %% [CBAM]
class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al., ECCV 2018): channel attention (``channel``), then
    spatial attention (``spatial``) on its output, the paper's sequential, channel-first arrangement, which
    its experiments found better than the spatial-first and the parallel ones."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        ### BEGIN SOLUTION
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)
        ### END SOLUTION

    def forward(self, x):
        """x (B, C, H, W). Returns out (B, C, H, W) and the spatial weights (B, 1, H, W)."""
        ### BEGIN SOLUTION
        B, C, H, W = x.shape
        refined, _ = self.channel(x)  # (B, C, H, W): channel attention first
        out, weights = self.spatial(refined)  # (B, C, H, W), (B, 1, H, W): then spatial, on its output
        return out, weights
        ### END SOLUTION


# %% [SelfAttention2d]
class SelfAttention2d(nn.Module):
    """Self-attention over the positions of a feature map: the non-local block (Wang et al., CVPR 2018) in
    SAGAN's form (Zhang et al., ICML 2019).

    1x1 convolutions give each position a query and a key (``query``, ``key``: C -> max(1, C // reduction)) and
    a value (``value``: C -> C). Each position i attends to every position j with weights
    softmax_j(<query_i, key_j>) (no scaling), the values are averaged with those weights, and the result is
    added back through a learned scalar ``gamma`` that starts at 0, so that the block starts as the identity.
    Positions are flattened in row-major order (i = h * W + w). This is the common PyTorch form of SAGAN's
    block (value C -> C, no output convolution), not the paper's C // 8 value followed by an output
    convolution.
    """

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        ### BEGIN SOLUTION
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        ### END SOLUTION

    def forward(self, x):
        """x (B, C, H, W). Returns out (B, C, H, W) and weights (B, H*W, H*W), rows summing to 1."""
        ### BEGIN SOLUTION
        B, C, H, W = x.shape
        N = H * W
        q = self.query(x).view(B, -1, N).transpose(1, 2)  # (B, N, inner), positions in row-major order
        k = self.key(x).view(B, -1, N)  # (B, inner, N)
        v = self.value(x).view(B, C, N)  # (B, C, N)
        scores = torch.bmm(q, k)  # (B, N, N): scores[b, i, j] = <query_i, key_j>, not scaled
        weights = torch.softmax(scores, dim=-1)  # (B, N, N), normalised over the keys j
        attended = torch.bmm(v, weights.transpose(1, 2)).view(B, C, H, W)  # (B, C, N) -> (B, C, H, W)
        out = x + self.gamma * attended  # (B, C, H, W)
        return out, weights
        ### END SOLUTION


# %% [AttentionCNN]
class AttentionCNN(nn.Module):
    """An image classifier: per stage, a 3x3 convolution (``convs``, padding 1), ReLU, an attention module
    (``attentions``, built with its defaults), 2x2 max pooling; then the mean over H, W and a linear ``head``.

    ``attention`` is "none" (no attention modules), "se" (SqueezeExcitation), "cbam" (CBAM) or "self"
    (SelfAttention2d); any other name raises ValueError. ``widths`` are the stages' output channels.
    """

    def __init__(self, in_channels: int, num_classes: int, attention: str = "cbam", widths: tuple = (32, 64)):
        super().__init__()
        ### BEGIN SOLUTION
        modules = {"none": None, "se": SqueezeExcitation, "cbam": CBAM, "self": SelfAttention2d}
        if attention not in modules:
            raise ValueError(f"attention must be one of {', '.join(map(repr, modules))}, not {attention!r}")
        channels = [in_channels, *widths]
        self.convs = nn.ModuleList(
            [nn.Conv2d(c_in, width, 3, padding=1) for c_in, width in zip(channels[:-1], channels[1:])]
        )
        build = modules[attention]
        self.attentions = nn.ModuleList([] if build is None else [build(width) for width in widths])
        self.head = nn.Linear(widths[-1], num_classes)
        ### END SOLUTION

    def forward(self, images, return_attention: bool = False):
        """images (B, C, H, W), H and W at least 2 ** len(widths). Returns logits (B, num_classes), and the list
        of each stage's attention weights if asked (empty without attention)."""
        ### BEGIN SOLUTION
        B, C, H, W = images.shape
        x = images
        maps = []
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))  # (B, width, H_i, W_i)
            if len(self.attentions) > 0:
                x, weights = self.attentions[i](x)  # (B, width, H_i, W_i)
                maps.append(weights)
            x = F.max_pool2d(x, 2)  # (B, width, H_i // 2, W_i // 2)
        pooled = x.mean((2, 3))  # (B, widths[-1]): the mean over H, W
        logits = self.head(pooled)  # (B, num_classes)
        return (logits, maps) if return_attention else logits
        ### END SOLUTION
