"""The styles of the published SE and CBAM code: senet.pytorch's SELayer (nn.AdaptiveAvgPool2d, then
``fc = nn.Sequential(nn.Linear(C, C // r, bias=False), nn.ReLU(inplace=True), nn.Linear(C // r, C, bias=False),
nn.Sigmoid())`` on the pooled (B, C) vector) and luuuyi's CBAM ChannelAttention (average and max pooling through
``fc = nn.Sequential(nn.Conv2d(C, C // r, 1, bias=False), nn.ReLU(), nn.Conv2d(C // r, C, 1, bias=False))``).
The other parts are the reference solution's (``realworld_fixtures.Fixture.source``). Names and the (out,
weights) return adapted to the contract.

Expected: the layers' names and missing biases cost the two interface checks only; nn.Linear on the pooled
features is the same maths as the contract's 1x1 convolutions, and the values, gradients and composites pass."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)  # (B, C)
        y = self.fc(y).view(b, c, 1, 1)  # (B, C, 1, 1)
        return x * y.expand_as(x), y


class ChannelAttention(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(),
                                nn.Conv2d(hidden, channels, 1, bias=False))
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        avg_out = self.fc(self.avg_pool(x))
        max_out = self.fc(self.max_pool(x))
        weights = self.sigmoid(avg_out + max_out)
        return x * weights, weights
