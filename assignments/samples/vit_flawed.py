"""A plausible student submission for the Vision Transformer exercise with three classic mistakes, for the demo
and the tests: patches flattened in (P, P, C) order with einops' usual pattern (as Keras does), the course's
post-norm block instead of the ViT paper's pre-norm one, and the CCT's sequence pooling taking its softmax over
the score's last axis (the features, of size 1) instead of over the tokens. Everything else is right (and
written differently from the reference: einops, its own attention module, einsum)."""

import einops
import torch
import torch.nn as nn
import torch.nn.functional as F


def extract_patches(images, patch_size):
    P = patch_size
    return einops.rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=P, p2=P)  # should be (c p1 p2)


class PatchEncoder(nn.Module):
    def __init__(self, num_patches, patch_dim, projection_dim):
        super().__init__()
        self.projection = nn.Linear(patch_dim, projection_dim)
        self.position_embedding = nn.Embedding(num_patches, projection_dim)

    def forward(self, patches):
        n = patches.shape[1]
        return self.projection(patches) + self.position_embedding.weight[:n]


class MultiHeadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0):
        super().__init__()
        self.h = num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, q, k, v):
        split = lambda t: einops.rearrange(t, "b n (h d) -> b h n d", h=self.h)  # noqa: E731
        q, k, v = split(self.q_proj(q)), split(self.k_proj(k)), split(self.v_proj(v))
        w = torch.softmax(torch.einsum("bhid,bhjd->bhij", q, k) / q.shape[-1] ** 0.5, dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", self.drop(w), v)
        return self.out_proj(einops.rearrange(out, "b h n d -> b n (h d)")), w


class ViTBlock(nn.Module):
    def __init__(self, embed_dim, num_heads, mlp_dim, dropout=0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.attn = MultiHeadAttention(embed_dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_dim, embed_dim), nn.Dropout(dropout))

    def forward(self, x, return_attention=False):
        a, w = self.attn(x, x, x)
        x = self.norm1(x + a)  # post-norm, as the course's text block: should be x + attn(norm1(x))
        x = self.norm2(x + self.mlp(x))
        return (x, w) if return_attention else x


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, num_classes, projection_dim=32, num_heads=4,
                 mlp_dim=64, num_blocks=2, mlp_head_units=(512, 256), dropout=0.1, head_dropout=0.5):
        super().__init__()
        H, W = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.patch_size = patch_size
        n = (H // patch_size) * (W // patch_size)
        self.patch_encoder = PatchEncoder(n, in_channels * patch_size ** 2, projection_dim)
        self.blocks = nn.ModuleList(ViTBlock(projection_dim, num_heads, mlp_dim, dropout) for _ in range(num_blocks))
        self.norm = nn.LayerNorm(projection_dim, eps=1e-6)
        layers, width = [nn.Flatten(), nn.Dropout(head_dropout)], n * projection_dim
        for units in mlp_head_units:
            layers += [nn.Linear(width, units), nn.GELU(), nn.Dropout(head_dropout)]
            width = units
        self.head = nn.Sequential(*layers, nn.Linear(width, num_classes))

    def forward(self, images, return_attention=False):
        x = self.patch_encoder(extract_patches(images, self.patch_size))
        maps = []
        for block in self.blocks:
            x, w = block(x, return_attention=True)
            maps.append(w)
        logits = self.head(self.norm(x))
        return (logits, maps) if return_attention else logits


class ConvTokenizer(nn.Module):
    def __init__(self, in_channels, channels=(16, 32)):
        super().__init__()
        sizes = [in_channels, *channels]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1, bias=False) for a, b in zip(sizes, sizes[1:]))

    def forward(self, images):
        x = images
        for conv in self.convs:
            x = F.max_pool2d(torch.relu(conv(x)), kernel_size=3, stride=2, padding=1)
        return einops.rearrange(x, "b c h w -> b (h w) c")


class SequencePooling(nn.Module):
    def __init__(self, embed_dim):
        super().__init__()
        self.attention = nn.Linear(embed_dim, 1)

    def forward(self, x):
        w = torch.softmax(self.attention(x), dim=-1)  # over the last axis, of size 1: should be over the tokens
        return torch.einsum("bnk,bnd->bd", w, x), w.squeeze(-1)


class CompactTransformer(nn.Module):
    def __init__(self, image_size, in_channels, num_classes, channels=(16, 32), num_heads=4, mlp_dim=64,
                 num_blocks=2, dropout=0.1):
        super().__init__()
        H, W = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.tokenizer = ConvTokenizer(in_channels, channels)
        for _ in channels:
            H, W = (H + 1) // 2, (W + 1) // 2
        D = channels[-1]
        self.position_embedding = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, H * W, D), std=0.2))
        self.blocks = nn.ModuleList(ViTBlock(D, num_heads, mlp_dim, dropout) for _ in range(num_blocks))
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.pool = SequencePooling(D)
        self.head = nn.Linear(D, num_classes)

    def forward(self, images, return_attention=False):
        x = self.tokenizer(images) + self.position_embedding
        maps = []
        for block in self.blocks:
            x, w = block(x, return_attention=True)
            maps.append(w)
        pooled, weights = self.pool(self.norm(x))
        logits = self.head(pooled)
        return (logits, maps, weights) if return_attention else logits
