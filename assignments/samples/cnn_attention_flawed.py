"""A plausible student submission for the attention-in-CNNs exercise with three classic mistakes, for the demo
and the tests: squeeze-and-excitation squeezes with max pooling instead of the mean, CBAM computes its channel
and spatial maps side by side from the input (in parallel) instead of one after the other, and the
self-attention scales its scores by 1/sqrt(d) as a transformer does. Everything else is right (and written
differently from the reference: einsum, F.adaptive_avg_pool2d, torch.max)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        s = F.adaptive_max_pool2d(x, 1)  # should be the mean (average pooling)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * w, w


class ChannelAttention(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        avg = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        mx = self.fc2(F.relu(self.fc1(F.adaptive_max_pool2d(x, 1))))
        w = torch.sigmoid(avg + mx)
        return x * w, w


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):
        avg = torch.mean(x, dim=1, keepdim=True)
        mx, _ = torch.max(x, dim=1, keepdim=True)
        w = torch.sigmoid(self.conv(torch.cat([avg, mx], dim=1)))
        return x * w, w


class CBAM(nn.Module):
    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x):
        _, cw = self.channel(x)
        _, sw = self.spatial(x)  # computed on x, not on the channel-refined features
        return x * cw * sw, sw


class SelfAttention2d(nn.Module):
    def __init__(self, channels, reduction=8):
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        B, C, H, W = x.shape
        q = self.query(x).flatten(2)
        k = self.key(x).flatten(2)
        v = self.value(x).flatten(2)
        scores = torch.einsum("bdi,bdj->bij", q, k) / q.shape[1] ** 0.5  # SAGAN does not scale
        attn = scores.softmax(dim=-1)
        out = torch.einsum("bij,bcj->bci", attn, v).reshape(B, C, H, W)
        return x + self.gamma * out, attn


class AttentionCNN(nn.Module):
    def __init__(self, in_channels, num_classes, attention="cbam", widths=(32, 64)):
        super().__init__()
        blocks = {"se": SqueezeExcitation, "cbam": CBAM, "self": SelfAttention2d}
        if attention != "none" and attention not in blocks:
            raise ValueError(f"unknown attention {attention}")
        self.convs = nn.ModuleList()
        self.attentions = nn.ModuleList()
        c = in_channels
        for width in widths:
            self.convs.append(nn.Conv2d(c, width, 3, padding=1))
            if attention != "none":
                self.attentions.append(blocks[attention](width))
            c = width
        self.head = nn.Linear(c, num_classes)

    def forward(self, images, return_attention=False):
        x = images
        maps = []
        for i in range(len(self.convs)):
            x = F.relu(self.convs[i](x))
            if len(self.attentions):
                x, w = self.attentions[i](x)
                maps.append(w)
            x = F.max_pool2d(x, 2)
        logits = self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))
        if return_attention:
            return logits, maps
        return logits


# Training code a student left in the file: the grader does not run it.
if __name__ == "__main__":
    model = AttentionCNN(3, 10)
    print(model(torch.randn(2, 3, 32, 32)).shape)
