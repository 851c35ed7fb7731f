"""Reference solution: the Vision Transformer and the Compact Convolutional Transformer (the course's bonus example).

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale", ICLR 2021
(https://arxiv.org/abs/2010.11929);
Hassani et al., "Escaping the Big Data Paradigm with Compact Transformers", 2021 (https://arxiv.org/abs/2104.05704);
Keras' example "Image classification with Vision Transformer", which the course adapted
(https://keras.io/examples/vision/image_classification_with_vision_transformer/), and Keras' "Compact
Convolutional Transformers" example (https://keras.io/examples/vision/cct/).

This file is the single source of truth for the exercise's solution code: the nbgrader source notebook
``assignments/source/vit/vit.ipynb`` holds these sections verbatim (``# %% [name]`` starts a section, and
nbgrader's BEGIN/END SOLUTION comments mark what its release replaces with a stub).

Images are (B, C, H, W); token sequences are (B, N, D). Attention itself is not what this exercise teaches (the
transformer exercise wrote it): the block uses ``nn.MultiheadAttention``. Where the course, Keras, einops and
PyTorch differ:

- Patches: Keras' ``extract_patches`` and einops' ``b c (h p1) (w p2) -> b (h w) (p1 p2 c)`` flatten each patch
  in (P, P, C) order, channel innermost; this exercise flattens in (C, P, P) order, as ``F.unfold`` and a
  strided ``Conv2d`` patch embedding do. Patches are row-major in all of them. Both orders train equally well
  (they differ by a permutation of the projection's inputs), but copied weights and raw patches must agree on
  one, and only images with more than one channel show which.
- Heads: Keras' ``MultiHeadAttention(num_heads, key_dim)`` takes the width of *each* head (the course gave every
  head the full width); ``nn.MultiheadAttention`` splits ``embed_dim`` into ``num_heads`` heads of
  ``embed_dim // num_heads``.
- Classification: the ViT paper prepends a learned class token and classifies its final state; the course and
  Keras' example have no class token: LayerNorm, then flatten all the patches' states into one vector, then an
  MLP head.
- The block: the course's ViT reused its post-norm text block with a ReLU feed-forward. This exercise follows
  the ViT paper and Keras' example: pre-norm (``x + attn(LN(x))``, ``x + mlp(LN(x))``), which keeps an identity
  path from input to output and trains without a learning-rate warm-up, and a GELU MLP. (Keras' block MLP also
  applies GELU after its second layer; the paper's, and this one's, does not.)
- The CCT's encoder layer in the authors' code is neither pre- nor post-norm
  (``x = x + attn(LN(x)); x = LN(x); x = x + mlp(x)``); this exercise reuses the pre-norm ``ViTBlock``, as
  Keras' CCT example does.
"""

# %% [imports]
import torch
import torch.nn as nn
import torch.nn.functional as F


# %% [extract_patches]
def extract_patches(images, patch_size: int):
    """Cut images (B, C, H, W) into non-overlapping P x P patches, P = patch_size, H and W multiples of P.

    Returns (B, N, C * P * P), N = (H // P) * (W // P): patches in row-major order (patch n = i * (W // P) + j
    is rows i*P .. i*P + P - 1 and columns j*P .. j*P + P - 1), each flattened in (C, P, P) order, as
    ``F.unfold(images, P, stride=P).transpose(1, 2)`` gives them. (Keras and the usual einops pattern flatten
    in (P, P, C) order.)
    """
    ### BEGIN SOLUTION
    B, C, H, W = images.shape
    P = patch_size
    h, w = H // P, W // P
    x = images.reshape(B, C, h, P, w, P)  # (B, C, h, P, w, P): H = h * P rows, W = w * P columns
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, h, w, C, P, P): patch row, patch column, then one patch's values
    return x.reshape(B, h * w, C * P * P)  # (B, N, C * P * P): row-major patches, (C, P, P) inside
    ### END SOLUTION


# %% [PatchEncoder]
class PatchEncoder(nn.Module):
    """Keras' patch encoder: a linear ``projection`` of each flattened patch, plus a learned
    ``position_embedding`` (one vector per patch position, ``nn.Embedding(num_patches, projection_dim)``)."""

    def __init__(self, num_patches: int, patch_dim: int, projection_dim: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.projection = nn.Linear(patch_dim, projection_dim)
        self.position_embedding = nn.Embedding(num_patches, projection_dim)
        ### END SOLUTION

    def forward(self, patches):
        """patches (B, N, patch_dim), N <= num_patches. Returns (B, N, projection_dim)."""
        ### BEGIN SOLUTION
        B, N, D = patches.shape
        positions = torch.arange(N, device=patches.device)  # (N,): 0 .. N-1
        return self.projection(patches) + self.position_embedding(positions)  # (B, N, projection_dim)
        ### END SOLUTION


# %% [ViTBlock]
class ViTBlock(nn.Module):
    """The ViT paper's pre-norm encoder block (Dosovitskiy et al., ICLR 2021, eqs. 2-3):
    ``x = x + attn(norm1(x))``, then ``x = x + mlp(norm2(x))``.

    ``norm1``, ``norm2``: ``nn.LayerNorm(embed_dim, eps=1e-6)`` (Keras' epsilon); ``attn``:
    ``nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)`` (its dropout is on the
    attention weights, as Keras'); ``mlp``: Linear(embed_dim, mlp_dim), GELU (the exact, erf form), Dropout,
    Linear(mlp_dim, embed_dim), Dropout. Heads have ``embed_dim // num_heads`` values each, not Keras' full
    width.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_dim: int, dropout: float = 0.1):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(mlp_dim, embed_dim), nn.Dropout(dropout),
        )
        ### END SOLUTION

    def forward(self, x, return_attention: bool = False):
        """x (B, N, D). Returns (B, N, D), and with ``return_attention`` also each head's attention weights
        (B, num_heads, N, N), rows summing to 1 over the keys."""
        ### BEGIN SOLUTION
        B, N, D = x.shape
        h = self.norm1(x)  # (B, N, D)
        attended, weights = self.attn(h, h, h, need_weights=return_attention,
                                      average_attn_weights=False)  # (B, N, D), (B, num_heads, N, N) or None
        x = x + attended  # (B, N, D)
        x = x + self.mlp(self.norm2(x))  # (B, N, D)
        return (x, weights) if return_attention else x
        ### END SOLUTION


# %% [VisionTransformer]
class VisionTransformer(nn.Module):
    """The course's Vision Transformer, after Keras' example: patches -> ``patch_encoder`` -> ``blocks``
    (``num_blocks`` ViTBlocks, each its own) -> ``norm`` (LayerNorm, eps 1e-6) -> ``head``.

    ``head`` = Flatten (all N patch states, N * projection_dim values: no class token), Dropout(head_dropout),
    then for each of ``mlp_head_units`` a Linear, a GELU and a Dropout(head_dropout), and a last Linear to
    ``num_classes`` logits. ``image_size``: an int (square images) or (H, W), both multiples of ``patch_size``;
    ``mlp_head_units`` is not empty.
    """

    def __init__(
        self,
        image_size,
        patch_size: int,
        in_channels: int,
        num_classes: int,
        projection_dim: int = 32,
        num_heads: int = 4,
        mlp_dim: int = 64,
        num_blocks: int = 2,
        mlp_head_units: tuple = (512, 256),
        dropout: float = 0.1,
        head_dropout: float = 0.5,
    ):
        super().__init__()
        ### BEGIN SOLUTION
        H, W = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.patch_size = patch_size
        num_patches = (H // patch_size) * (W // patch_size)
        self.patch_encoder = PatchEncoder(num_patches, in_channels * patch_size * patch_size, projection_dim)
        self.blocks = nn.ModuleList(
            [ViTBlock(projection_dim, num_heads, mlp_dim, dropout) for _ in range(num_blocks)]
        )
        self.norm = nn.LayerNorm(projection_dim, eps=1e-6)
        layers = [nn.Flatten(), nn.Dropout(head_dropout)]
        width = num_patches * projection_dim
        for units in mlp_head_units:
            layers += [nn.Linear(width, units), nn.GELU(), nn.Dropout(head_dropout)]
            width = units
        layers.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, images, return_attention: bool = False):
        """images (B, C, H, W) of the size given. Returns logits (B, num_classes), and with
        ``return_attention`` also the list of each block's attention weights (B, num_heads, N, N)."""
        ### BEGIN SOLUTION
        B, C, H, W = images.shape
        patches = extract_patches(images, self.patch_size)  # (B, N, C * P * P)
        x = self.patch_encoder(patches)  # (B, N, D)
        maps = []
        for block in self.blocks:
            x, weights = block(x, return_attention=True)  # (B, N, D), (B, num_heads, N, N)
            maps.append(weights)
        x = self.norm(x)  # (B, N, D)
        logits = self.head(x)  # (B, N, D) -> (B, N * D) -> (B, num_classes)
        return (logits, maps) if return_attention else logits
        ### END SOLUTION


# %% [ConvTokenizer]
class ConvTokenizer(nn.Module):
    """The CCT's convolutional tokenizer (Hassani et al., 2021): per stage, a 3x3 convolution (``convs``,
    padding 1, no bias, as the authors'), ReLU, and max pooling 3 x 3 with stride 2 and padding 1, which halves
    H and W (rounding up). The last map's positions, in row-major order, are the tokens, its channels their
    features. (Keras' CCT example convolves without padding and pads the ReLU's output with a border of zeros
    instead, then pools with padding "same", which pads at the end only: the same number of tokens, but other
    values at the borders.)
    """

    def __init__(self, in_channels: int, channels: tuple = (16, 32)):
        super().__init__()
        ### BEGIN SOLUTION
        sizes = [in_channels, *channels]
        self.convs = nn.ModuleList(
            [nn.Conv2d(c_in, c, 3, padding=1, bias=False) for c_in, c in zip(sizes[:-1], sizes[1:])]
        )
        ### END SOLUTION

    def forward(self, images):
        """images (B, C, H, W). Returns tokens (B, N, channels[-1]), N = H' * W' of the last map."""
        ### BEGIN SOLUTION
        B, C, H, W = images.shape
        x = images
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 3, stride=2, padding=1)  # (B, c, ceil(H_i / 2), ceil(W_i / 2))
        return x.flatten(2).transpose(1, 2)  # (B, c, H', W') -> (B, c, H' * W') -> (B, N, c), row-major
        ### END SOLUTION


# %% [SequencePooling]
class SequencePooling(nn.Module):
    """The CCT's sequence pooling: a linear score per token (``attention``, D -> 1), a softmax over the N
    tokens, and the weighted sum of the tokens: attention pooling instead of a class token."""

    def __init__(self, embed_dim: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.attention = nn.Linear(embed_dim, 1)
        ### END SOLUTION

    def forward(self, x):
        """x (B, N, D). Returns pooled (B, D) and weights (B, N), summing to 1 over the tokens."""
        ### BEGIN SOLUTION
        B, N, D = x.shape
        scores = self.attention(x).squeeze(-1)  # (B, N, 1) -> (B, N)
        weights = torch.softmax(scores, dim=1)  # (B, N): over the tokens
        pooled = torch.bmm(weights.unsqueeze(1), x).squeeze(1)  # (B, 1, N) @ (B, N, D) -> (B, 1, D) -> (B, D)
        return pooled, weights
        ### END SOLUTION


# %% [CompactTransformer]
class CompactTransformer(nn.Module):
    """The course's second model, a Compact Convolutional Transformer (Hassani et al., 2021): ``tokenizer``
    (ConvTokenizer) -> plus ``position_embedding`` -> ``blocks`` (ViTBlocks of width D = channels[-1]) ->
    ``norm`` (LayerNorm, eps 1e-6) -> ``pool`` (SequencePooling) -> ``head`` (Linear(D, num_classes)).

    ``position_embedding`` is a learned (1, N, D) parameter, N the number of tokens the tokenizer makes from
    images of ``image_size`` (an int, or (H, W)), found as Keras' CCT example does, by running the tokenizer
    once on a blank image; it starts as ``trunc_normal_(std=0.2)``, as the authors' code does.
    """

    def __init__(
        self,
        image_size,
        in_channels: int,
        num_classes: int,
        channels: tuple = (16, 32),
        num_heads: int = 4,
        mlp_dim: int = 64,
        num_blocks: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        ### BEGIN SOLUTION
        H, W = (image_size, image_size) if isinstance(image_size, int) else image_size
        D = channels[-1]
        self.tokenizer = ConvTokenizer(in_channels, channels)
        with torch.no_grad():
            N = self.tokenizer(torch.zeros(1, in_channels, H, W)).shape[1]  # the token count for this size
        self.position_embedding = nn.Parameter(torch.zeros(1, N, D))
        nn.init.trunc_normal_(self.position_embedding, std=0.2)
        self.blocks = nn.ModuleList([ViTBlock(D, num_heads, mlp_dim, dropout) for _ in range(num_blocks)])
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.pool = SequencePooling(D)
        self.head = nn.Linear(D, num_classes)
        ### END SOLUTION

    def forward(self, images, return_attention: bool = False):
        """images (B, C, H, W) of the size given. Returns logits (B, num_classes), or with ``return_attention``
        (logits, [each block's attention weights (B, num_heads, N, N)], the pooling weights (B, N))."""
        ### BEGIN SOLUTION
        B, C, H, W = images.shape
        x = self.tokenizer(images) + self.position_embedding  # (B, N, D)
        maps = []
        for block in self.blocks:
            x, weights = block(x, return_attention=True)  # (B, N, D), (B, num_heads, N, N)
            maps.append(weights)
        x = self.norm(x)  # (B, N, D)
        pooled, pool_weights = self.pool(x)  # (B, D), (B, N)
        logits = self.head(pooled)  # (B, num_classes)
        return (logits, maps, pool_weights) if return_attention else logits
        ### END SOLUTION
