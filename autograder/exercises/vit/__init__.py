"""The Vision Transformer exercise (the course's bonus example): checks for each part of the contract.

Contract (``CONTRACTS``, the notebook's table is made from it): ``extract_patches``, ``PatchEncoder``,
``ViTBlock`` (pre-norm, Dosovitskiy et al. 2021), ``VisionTransformer``, and the compact convolutional
transformer's ``ConvTokenizer``, ``SequencePooling`` and ``CompactTransformer`` (Hassani et al. 2021); images
are (B, C, H, W), token sequences (B, N, D). The block's attention may be ``nn.MultiheadAttention`` or the
transformer exercise's ``MultiHeadAttention`` (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``): the grader
maps ``in_proj_weight`` onto the three projections (``param_map``). This module holds the contract and the
public checks (interface, shapes, behaviour); the known mistakes are declared in ``vit.mistakes``; the hidden
checks in ``vit.hidden`` compare values and gradients with ``vit.reference`` (float64, written apart from the
solution) and train both models.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch
import torch.nn.functional as F

from ...checks import CheckFailure, CheckSet
from ...compare import close, max_error, require_shape
from ...context import Context, outputs, randn, rng
from ...contract import (
    Build, Deviations, Module, Part, check_interface, linear_module, linear_params, norm_module, norm_params, require_interface,
)
from ...kit.contracts import ATTENTION_TEXT, attention_deviations, attention_params
from ...data import images
from ...forbidden import TRANSFORMER_LAYERS, ForbiddenSet
from ...runner import SubmissionError
from ...tasks import TrainingTask
from ...weights import DEFAULT_RULES, WeightRule, normal
from .. import Exercise, TrainingProfile
from ...kit.common import require_rows_sum_to_one
from ...kit.dropout import SubLayer, each_sublayer_drops_out
from .mistakes import (  # the parts' names, and the known mistakes (declared there)
    BLOCK, BLOCK_SUBLAYER_WITHOUT_DROPOUT, CCT, ENCODER, MISTAKES, PATCHES, PATCHES_COLUMN_MAJOR, PATCHES_PPC_ORDER, POOL_FEATURES, POOL_PADDING,
    POOL_STRIDE, POOLING, SHARED_BLOCKS, TOKENIZER, VIT, VIT_CLASS_TOKEN,
)

PARTS = (PATCHES, ENCODER, BLOCK, VIT, TOKENIZER, POOLING, CCT)
CHECKS = CheckSet(PARTS)


# --- inputs ------------------------------------------------------------------------------------------------

def image_batch(seed: int, shape: tuple) -> np.ndarray:
    """(B, C, H, W) float32 images: N(0, 1) pixels plus an offset of each channel's own, so that the channels
    differ (a patch's channel order shows) and a 3x3 convolution's ReLU sees both signs."""
    gen = rng(seed)
    return randn(gen, *shape) + randn(gen, shape[0], shape[1], 1, 1)


def tokens(seed: int, shape: tuple) -> np.ndarray:
    """(B, N, D) float32 token states with a mean of each token's own (as after a patch encoder)."""
    gen = rng(seed)
    return randn(gen, *shape) + randn(gen, shape[0], shape[1], 1)


def label(part: str, args: tuple, kwargs: dict) -> str:
    return Build(tuple(args), dict(kwargs)).label(part)


def hw(image_size) -> tuple[int, int]:
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


def token_count(image_size, stages: int, stride: int = 2, padding: int = 1) -> int:
    """The number of tokens after ``stages`` max poolings of kernel 3: each maps a size s to
    (s + 2 padding - 3) // stride + 1, ceil(s / 2) with the contract's stride 2 and padding 1; 0 when a map
    vanishes."""
    H, W = hw(image_size)
    for _ in range(stages):
        H, W = (H + 2 * padding - 3) // stride + 1, (W + 2 * padding - 3) // stride + 1
    return max(H, 0) * max(W, 0)


# --- contract shapes (the hidden checks' references take the parameters under these names) -------------------

def encoder_params(num_patches: int, patch_dim: int, dim: int, prefix: str = "") -> dict:
    return {**linear_params(f"{prefix}projection", patch_dim, dim),
            f"{prefix}position_embedding.weight": (num_patches, dim)}


def block_own_params(dim: int, mlp_dim: int, prefix: str = "") -> dict:
    return {**norm_params(f"{prefix}norm1", dim), **norm_params(f"{prefix}norm2", dim),
            **linear_params(f"{prefix}mlp.0", dim, mlp_dim), **linear_params(f"{prefix}mlp.3", mlp_dim, dim)}


def block_params(dim: int, mlp_dim: int, prefix: str = "") -> dict:
    return {**block_own_params(dim, mlp_dim, prefix), **attention_params(f"{prefix}attn.", dim)}


VIT_DEFAULTS = dict(projection_dim=32, num_heads=4, mlp_dim=64, num_blocks=2, mlp_head_units=(512, 256))
CCT_DEFAULTS = dict(channels=(16, 32), num_heads=4, mlp_dim=64, num_blocks=2)


@dataclasses.dataclass(frozen=True)
class VitCase:
    """A VisionTransformer's sizes, the contract's defaults filled in."""

    image_size: tuple
    patch_size: int
    in_channels: int
    num_classes: int
    projection_dim: int
    num_heads: int
    mlp_dim: int
    num_blocks: int
    mlp_head_units: tuple

    @classmethod
    def of(cls, kwargs: dict) -> VitCase:
        k = {**VIT_DEFAULTS, **kwargs}
        return cls(hw(k["image_size"]), k["patch_size"], k["in_channels"], k["num_classes"], k["projection_dim"],
                   k["num_heads"], k["mlp_dim"], k["num_blocks"], tuple(k["mlp_head_units"]))

    @property
    def num_patches(self) -> int:
        return (self.image_size[0] // self.patch_size) * (self.image_size[1] // self.patch_size)

    @property
    def patch_dim(self) -> int:
        return self.in_channels * self.patch_size ** 2


def vit_own_params(case: VitCase) -> dict:
    shapes = norm_params("norm", case.projection_dim)
    width = case.num_patches * case.projection_dim
    for k, units in enumerate(case.mlp_head_units):
        shapes.update(linear_params(f"head.{2 + 3 * k}", width, units))
        width = units
    shapes.update(linear_params(f"head.{2 + 3 * len(case.mlp_head_units)}", width, case.num_classes))
    return shapes


def vit_params(case: VitCase) -> dict:
    shapes = encoder_params(case.num_patches, case.patch_dim, case.projection_dim, "patch_encoder.")
    for i in range(case.num_blocks):
        shapes.update(block_params(case.projection_dim, case.mlp_dim, f"blocks.{i}."))
    return {**shapes, **vit_own_params(case)}


@dataclasses.dataclass(frozen=True)
class CctCase:
    """A CompactTransformer's sizes, the contract's defaults filled in."""

    image_size: tuple
    in_channels: int
    num_classes: int
    channels: tuple
    num_heads: int
    mlp_dim: int
    num_blocks: int

    @classmethod
    def of(cls, kwargs: dict) -> CctCase:
        k = {**CCT_DEFAULTS, **kwargs}
        return cls(hw(k["image_size"]), k["in_channels"], k["num_classes"], tuple(k["channels"]), k["num_heads"],
                   k["mlp_dim"], k["num_blocks"])

    @property
    def dim(self) -> int:
        return self.channels[-1]


def tokenizer_params(in_channels: int, channels, prefix: str = "") -> dict:
    sizes = [in_channels, *channels]
    return {f"{prefix}convs.{i}.weight": (c, c_in, 3, 3) for i, (c_in, c) in enumerate(zip(sizes[:-1], sizes[1:]))}


def pooling_params(dim: int, prefix: str = "") -> dict:
    return linear_params(f"{prefix}attention", dim, 1)


def cct_own_params(case: CctCase) -> dict:
    return {"position_embedding": (1, token_count(case.image_size, len(case.channels)), case.dim),
            **norm_params("norm", case.dim), **linear_params("head", case.dim, case.num_classes)}


def cct_params(case: CctCase) -> dict:
    shapes = tokenizer_params(case.in_channels, case.channels, "tokenizer.")
    for i in range(case.num_blocks):
        shapes.update(block_params(case.dim, case.mlp_dim, f"blocks.{i}."))
    return {**shapes, **cct_own_params(case), **pooling_params(case.dim, "pool.")}


# --- the contract ---------------------------------------------------------------------------------------------

PATCHES_CONTRACT = Part(
    PATCHES, "function", ("images", "patch_size"), "extract_patches(images, patch_size)",
    "images (B, C, H, W), H and W multiples of P = patch_size", "patches (B, N, C * P * P), N = (H // P) * (W // P)",
    notes="patches in row-major order (n = i * (W // P) + j), each flattened in (C, P, P) order, as "
          "`F.unfold(images, P, stride=P).transpose(1, 2)` gives them")

ENCODER_BUILDS = tuple(
    Build((n, d_in, d), {}, (linear_module("projection", d_in, d, "nn.Linear(patch_dim, projection_dim)"),
                             Module("position_embedding", "Embedding", {"num_embeddings": n, "embedding_dim": d},
                                    "nn.Embedding(num_patches, projection_dim)")),
          encoder_params(n, d_in, d))
    for n, d_in, d in ((6, 48, 16), (9, 12, 8)))
ENCODER_CONTRACT = Part(
    ENCODER, "class", ("num_patches", "patch_dim", "projection_dim"),
    "PatchEncoder(num_patches, patch_dim, projection_dim)", "forward(patches (B, N, patch_dim)), N <= num_patches",
    "(B, N, projection_dim)", ENCODER_BUILDS, "projection(patches) + position_embedding(0 .. N-1)")

ATTENTION_TYPES = ("MultiheadAttention", "MultiHeadAttention")
ATTN_TEXT = ATTENTION_TEXT


def block_build(dim: int, heads: int, mlp_dim: int, kwargs: dict) -> Build:
    modules = (norm_module("norm1", dim), norm_module("norm2", dim),
               Module("attn", "MultiheadAttention", {"embed_dim": dim, "num_heads": heads}, ATTN_TEXT),
               Module("mlp", "Sequential", {}, "nn.Sequential(nn.Linear(embed_dim, mlp_dim), nn.GELU(), "
                                               "nn.Dropout(dropout), nn.Linear(mlp_dim, embed_dim), nn.Dropout(dropout))"),
               linear_module("mlp.0", dim, mlp_dim), linear_module("mlp.3", mlp_dim, dim))
    return Build((dim, heads, mlp_dim), kwargs, modules, block_own_params(dim, mlp_dim))


BLOCK_CASES = [  # (D, heads, mlp_dim), x (B, N, D): heads of 4 and 4 values, one head; mlp_dim != D, so that
    ((16, 4, 24), (2, 5, 16)),  # the MLP's two layers differ in shape (a renamed MLP still maps)
    ((12, 3, 20), (3, 7, 12)),
    ((8, 1, 12), (2, 4, 8)),
]
BLOCK_CONTRACT = Part(
    BLOCK, "class", ("embed_dim", "num_heads", "mlp_dim", "dropout"), "ViTBlock(embed_dim, num_heads, mlp_dim, dropout=0.1)",
    "forward(x (B, N, D), return_attention=False)",
    "(B, N, D), or (x, weights (B, num_heads, N, N)) with return_attention (per head: average_attn_weights=False)",
    tuple(block_build(*args, {}) for args, _ in BLOCK_CASES[:2]),
    "pre-norm: `x = x + attn(norm1(x))`, then `x = x + mlp(norm2(x))`")


def vit_build(case: VitCase, args: tuple, kwargs: dict) -> Build:
    width = case.num_patches * case.projection_dim
    modules = [Module("patch_encoder", ENCODER, text="PatchEncoder(num_patches, C * P * P, projection_dim)"),
               Module("blocks", "ModuleList", {"length": case.num_blocks},
                      "nn.ModuleList of num_blocks ViTBlock(projection_dim, num_heads, mlp_dim, dropout), each its own"),
               Module("blocks.0", BLOCK),
               norm_module("norm", case.projection_dim, "nn.LayerNorm(projection_dim, eps=1e-6)"),
               Module("head", "Sequential", {}, "nn.Sequential(nn.Flatten(), nn.Dropout(head_dropout), "
                                                "[nn.Linear(., units), nn.GELU(), nn.Dropout(head_dropout)] for each "
                                                "of mlp_head_units, nn.Linear(mlp_head_units[-1], num_classes))")]
    for k, units in enumerate(case.mlp_head_units):
        modules.append(linear_module(f"head.{2 + 3 * k}", width, units))
        width = units
    modules.append(linear_module(f"head.{2 + 3 * len(case.mlp_head_units)}", width, case.num_classes))
    return Build(args, kwargs, tuple(modules), vit_own_params(case))


VIT_SMALL = dict(projection_dim=16, num_heads=4, mlp_dim=24)
VIT_CASES = [  # images (B, C, H, W), patch_size, kwargs: non-square, one block, several patch sizes
    ((2, 3, 8, 12), 4, dict(VIT_SMALL, num_blocks=2, mlp_head_units=(32, 16))),
    ((3, 2, 9, 6), 3, dict(VIT_SMALL, num_blocks=1, mlp_head_units=(20,))),
    ((1, 1, 8, 8), 2, dict(projection_dim=8, num_heads=2, mlp_dim=16, num_blocks=2, mlp_head_units=(12,))),
]
CLASSES = 5


def image_size_arg(H: int, W: int):
    """image_size as a constructor receives it: an int for square images, else [H, W] (a list: arguments travel
    as JSON, so the contract says a pair may be a tuple or a list)."""
    return H if H == W else [H, W]


def vit_init(shape, patch_size: int, kwargs: dict) -> tuple[list, dict]:
    """Constructor arguments: image_size, patch_size, in_channels, num_classes; and ``kwargs``."""
    return [image_size_arg(shape[2], shape[3]), patch_size, shape[1], CLASSES], dict(kwargs)


def vit_case(shape, patch_size: int, kwargs: dict) -> VitCase:
    return VitCase.of({"image_size": (shape[2], shape[3]), "patch_size": patch_size, "in_channels": shape[1],
                       "num_classes": CLASSES, **kwargs})


VIT_BUILD_ARGS = vit_init(*VIT_CASES[0])
VIT_CONTRACT = Part(
    VIT, "class", ("image_size", "patch_size", "in_channels", "num_classes"),
    "VisionTransformer(image_size, patch_size, in_channels, num_classes, projection_dim=32, num_heads=4, mlp_dim=64, "
    "num_blocks=2, mlp_head_units=(512, 256), dropout=0.1, head_dropout=0.5)",
    "forward(images (B, C, H, W), return_attention=False)",
    "logits (B, num_classes), or (logits, [each block's weights]) with return_attention",
    (vit_build(vit_case(*VIT_CASES[0]), tuple(VIT_BUILD_ARGS[0]), VIT_BUILD_ARGS[1]),),
    "image_size is an int, or a pair (H, W), a tuple or a list; patches -> patch_encoder -> blocks -> norm -> head (no class token: the head "
    "flattens all N patch states)")

TOKENIZER_CASES = [  # images (B, C, H, W), channels: odd and non-square sides, one stage, three stages
    ((2, 3, 9, 12), (8, 16)),
    ((1, 1, 7, 5), (4,)),
    ((2, 2, 16, 11), (4, 8, 8)),
]


def tokenizer_build(in_channels: int, channels: tuple | None) -> Build:
    sizes = [in_channels, *(channels or CCT_DEFAULTS["channels"])]
    modules = [Module("convs", "ModuleList", {"length": len(sizes) - 1},
                      "nn.ModuleList of nn.Conv2d(c_in, c, 3, padding=1, bias=False), one per stage")]
    modules += [Module(f"convs.{i}", "Conv2d", dict(in_channels=c_in, out_channels=c, kernel_size=3, stride=1,
                                                    padding=(1, "same"), dilation=1, groups=1, bias=False))
                for i, (c_in, c) in enumerate(zip(sizes[:-1], sizes[1:]))]
    kwargs = {} if channels is None else {"channels": list(channels)}
    return Build((in_channels,), kwargs, tuple(modules), tokenizer_params(in_channels, sizes[1:]))


TOKENIZER_CONTRACT = Part(
    TOKENIZER, "class", ("in_channels", "channels"), "ConvTokenizer(in_channels, channels=(16, 32))",
    "forward(images (B, C, H, W))", "tokens (B, N, channels[-1]), N = H' * W' of the last map",
    (tokenizer_build(3, (8, 16)), tokenizer_build(1, None)),
    "per stage `x = F.max_pool2d(F.relu(conv(x)), 3, stride=2, padding=1)`; tokens in row-major order")

POOLING_CASES = [(2, 5, 16), (1, 7, 12), (3, 1, 8)]  # x (B, N, D); a single token last
POOLING_CONTRACT = Part(
    POOLING, "class", ("embed_dim",), "SequencePooling(embed_dim)", "forward(x (B, N, D))",
    "(pooled (B, D), weights (B, N))",
    tuple(Build((d,), {}, (linear_module("attention", d, 1, "nn.Linear(embed_dim, 1)"),), pooling_params(d))
          for d in (16, 12)),
    "weights = softmax over the N tokens of attention(x); pooled = the weighted sum of the tokens")

CCT_SMALL = dict(channels=(8, 16), num_heads=4, mlp_dim=24)
CCT_CASES = [  # images (B, C, H, W), kwargs: odd and non-square sides, one stage and one block
    ((2, 3, 9, 12), dict(CCT_SMALL, num_blocks=2)),
    ((3, 1, 8, 8), dict(channels=(8,), num_heads=2, mlp_dim=16, num_blocks=1)),
    ((2, 2, 12, 7), dict(CCT_SMALL, num_blocks=1)),
]


def cct_init(shape, kwargs: dict) -> tuple[list, dict]:
    kw = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    return [image_size_arg(shape[2], shape[3]), shape[1], CLASSES], kw


def cct_case(shape, kwargs: dict) -> CctCase:
    return CctCase.of({"image_size": (shape[2], shape[3]), "in_channels": shape[1], "num_classes": CLASSES, **kwargs})


def cct_build(shape, kwargs: dict) -> Build:
    case = cct_case(shape, kwargs)
    args, kw = cct_init(shape, kwargs)
    modules = (Module("tokenizer", TOKENIZER, text="ConvTokenizer(in_channels, channels)"),
               Module("blocks", "ModuleList", {"length": case.num_blocks},
                      "nn.ModuleList of num_blocks ViTBlock(D, num_heads, mlp_dim, dropout), D = channels[-1]"),
               Module("blocks.0", BLOCK),
               norm_module("norm", case.dim, "nn.LayerNorm(D, eps=1e-6)"),
               Module("pool", POOLING, text="SequencePooling(D)"),
               linear_module("head", case.dim, CLASSES, "nn.Linear(D, num_classes)"))
    return Build(tuple(args), kw, modules, cct_own_params(case))


CCT_CONTRACT = Part(
    CCT, "class", ("image_size", "in_channels", "num_classes"),
    "CompactTransformer(image_size, in_channels, num_classes, channels=(16, 32), num_heads=4, mlp_dim=64, "
    "num_blocks=2, dropout=0.1)",
    "forward(images (B, C, H, W), return_attention=False)",
    "logits (B, num_classes), or (logits, [each block's weights], pooling weights (B, N)) with return_attention",
    (cct_build(*CCT_CASES[0]),),
    "position_embedding = nn.Parameter (1, N, D), N the tokenizer's token count for image_size, initialised with "
    "nn.init.trunc_normal_(std=0.2); tokenizer -> + position_embedding -> blocks -> norm -> pool -> head")

CONTRACTS = (PATCHES_CONTRACT, ENCODER_CONTRACT, BLOCK_CONTRACT, VIT_CONTRACT, TOKENIZER_CONTRACT, POOLING_CONTRACT,
             CCT_CONTRACT)


# ---------------------------------------------------------------------------------------------------------
# extract_patches

PATCH_CASES = [  # images (B, C, H, W), P: several rows and columns of patches on three channels; non-square
    ((2, 3, 8, 12), 4),
    ((1, 3, 6, 9), 3),
    ((2, 2, 10, 4), 2),
    ((3, 1, 7, 7), 7),  # one patch
]


def run_patches(ctx: Context, shape, P: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = image_batch(seed, shape)
    reply = ctx.run(PATCHES, inputs=[x, P])
    (got,) = outputs(reply, 1, f"extract_patches(images of shape {shape}, {P})")
    B, C, H, W = shape
    require_shape(f"extract_patches(images of shape {shape}, {P})", got, (B, (H // P) * (W // P), C * P * P))
    return x, got


@CHECKS.check("patches.interface", PATCHES, 1, "is a function taking (images, patch_size)", kind="interface")
def patches_interface(ctx: Context) -> None:
    check_interface(ctx, PATCHES_CONTRACT)
    shape, P = PATCH_CASES[0]
    outputs(ctx.run(PATCHES, inputs=[image_batch(0, shape), P]), 1, "extract_patches(images, patch_size)")


@CHECKS.check("patches.shapes", PATCHES, 2, "(B, N, C * P * P) for several sizes and patch sizes", kind="shapes")
def patches_shapes(ctx: Context) -> None:
    for i, (shape, P) in enumerate(PATCH_CASES):
        run_patches(ctx, shape, P, i)


def unfold_patches(x: np.ndarray, P: int) -> np.ndarray:
    """The contract's patches by PyTorch's own F.unfold: (B, C * P * P, N) -> (B, N, C * P * P)."""
    return F.unfold(torch.from_numpy(x).double(), P, stride=P).transpose(1, 2).numpy()


def known_patch_orders(x: np.ndarray, P: int) -> dict[str, np.ndarray]:
    """The named mistakes' patches, by reshapes of the images: (P, P, C) inside, column-major order."""
    B, C, H, W = x.shape
    h, w = H // P, W // P
    grid = x.reshape(B, C, h, P, w, P)  # (B, C, h, P, w, P)
    return {PATCHES_PPC_ORDER.hint: grid.transpose(0, 2, 4, 3, 5, 1).reshape(B, h * w, P * P * C),  # (B, N, P*P*C)
            PATCHES_COLUMN_MAJOR.hint: grid.transpose(0, 4, 2, 1, 3, 5).reshape(B, h * w, C * P * P)}  # (B, N, C*P*P)


@CHECKS.check("patches.order", PATCHES, 2, "row-major patches in (C, P, P) order: equal to F.unfold on three "
              "channels", kind="values")
def patches_order(ctx: Context) -> None:
    for i, (shape, P) in enumerate(PATCH_CASES[:3]):
        x, got = run_patches(ctx, shape, P, 10 + i)
        expected = unfold_patches(x, P)
        if close(got, expected, atol=0.0, rtol=0.0):
            continue
        hints = [hint for hint, wrong in known_patch_orders(x, P).items() if np.array_equal(got, wrong)]
        err, index = max_error(got, expected)
        raise CheckFailure(f"extract_patches(images of shape {shape}, {P}) differs from F.unfold(images, {P}, "
                           f"stride={P}).transpose(1, 2) by up to {err:.3g} (at {index})",
                           hint=hints[0] if hints else None)


# ---------------------------------------------------------------------------------------------------------
# PatchEncoder

ENCODER_CASES = [((6, 48, 16), (2, 6, 48)), ((9, 12, 8), (3, 5, 12))]  # (num_patches, patch_dim, D), patches; N < 9


@CHECKS.check("encoder.interface", ENCODER, 1, "projection = Linear(patch_dim, D), position_embedding = "
              "Embedding(num_patches, D)", kind="interface")
def encoder_interface(ctx: Context) -> None:
    check_interface(ctx, ENCODER_CONTRACT)


@CHECKS.check("encoder.shapes", ENCODER, 1, "(B, N, projection_dim), also for fewer patches than num_patches",
              kind="shapes")
def encoder_shapes(ctx: Context) -> None:
    for i, (args, shape) in enumerate(ENCODER_CASES):
        reply = ctx.run(ENCODER, init_args=list(args), inputs=[tokens(20 + i, shape)], seed=i)
        (out,) = outputs(reply, 1, f"{label(ENCODER, args, {})}.forward")
        require_shape(f"{label(ENCODER, args, {})} on patches of shape {shape}", out, shape[:2] + (args[2],))


# ---------------------------------------------------------------------------------------------------------
# ViTBlock

def block_outputs(reply, what: str, shape, heads: int, attention: bool) -> list:
    if not attention:
        (out,) = outputs(reply, 1, what)
        require_shape(what, out, shape)
        return [out]
    out, w = outputs(reply, 2, f"{what} with return_attention=True")
    B, N, _ = shape
    require_shape(f"{what}: x", out, shape)
    require_shape(f"{what}: weights", w, (B, heads, N, N))
    return [out, w]


@CHECKS.check("block.interface", BLOCK, 2, "norm1, norm2 (eps 1e-6), attn (nn.MultiheadAttention, batch_first, or "
              "MultiHeadAttention), mlp (mlp.0, mlp.3)", kind="interface")
def block_interface(ctx: Context) -> None:
    require_interface(ctx, BLOCK, "class", BLOCK_CONTRACT.arguments)
    for build in BLOCK_CONTRACT.builds:
        reply = ctx.run(BLOCK, init_args=list(build.args), init_kwargs=dict(build.kwargs), call=False)
        deviations = Deviations(build.label(BLOCK))
        for module in build.modules:
            if module.path != "attn":
                deviations.module(reply, module.path, module.type, **module.attrs)
        deviations.params(reply, build.params)
        attention_deviations(reply, deviations, build.args[0], build.args[1])
        deviations.raise_any()


@CHECKS.check("block.shapes", BLOCK, 2, "(B, N, D) and, with return_attention, weights (B, heads, N, N)", kind="shapes")
def block_shapes(ctx: Context) -> None:
    for i, (args, shape) in enumerate(BLOCK_CASES):
        for attention in (False, True):
            reply = ctx.run(BLOCK, init_args=list(args), inputs=[tokens(30 + i, shape)], seed=i,
                            call_kwargs={"return_attention": True} if attention else {})
            block_outputs(reply, f"{label(BLOCK, args, {})} on x of shape {shape}", shape, args[1], attention)


@CHECKS.check("block.attention", BLOCK, 1, "eval mode: each head's weights (B, heads, N, N), rows summing to 1",
              kind="behaviour")
def block_attention(ctx: Context) -> None:
    args, shape = BLOCK_CASES[0]
    what = f"{label(BLOCK, args, {})}.forward(x, return_attention=True)"
    reply = ctx.run(BLOCK, init_args=list(args), inputs=[tokens(40, shape)], seed=40,
                    call_kwargs={"return_attention": True})
    _, w = block_outputs(reply, what, shape, args[1], True)
    require_rows_sum_to_one(what, w, hint="per head: average_attn_weights=False, and the weights of a softmax over "
                                          "the keys")


# The block's residual sub-layers, as ``kit.dropout`` silences them one at a time: the attention's dropout acts on
# its weights (inside nn.MultiheadAttention), the MLP's after the GELU and after its last Linear.
BLOCK_SUBLAYERS = (
    SubLayer("the attention", ("attn.out_proj.weight", "attn.out_proj.bias"), "nn.MultiheadAttention's dropout"),
    SubLayer("the MLP", ("mlp.3.weight", "mlp.3.bias"), "the MLP's nn.Dropout"),
)


@CHECKS.check("block.dropout", BLOCK, 1, "training mode drops out each sub-layer: the attention and the MLP",
              kind="behaviour")
def block_dropout(ctx: Context) -> None:
    """Behaviour that eval-mode values cannot see: with the other sub-layer silenced, two training-mode calls
    differ (an nn.MultiheadAttention built without ``dropout=dropout`` fails it)."""
    args, shape = BLOCK_CASES[0]
    kwargs = {"dropout": 0.5}
    each_sublayer_drops_out(ctx, BLOCK, f"{label(BLOCK, args, kwargs)} in training mode", list(args), kwargs,
                            [tokens(45, shape)], 45, block_params(args[0], args[2]), BLOCK_SUBLAYERS,
                            hint=BLOCK_SUBLAYER_WITHOUT_DROPOUT.hint)


def require_own_blocks(ctx: Context, part: str, args: list, kwargs: dict, blocks: int) -> None:
    """Every block is its own module: ``blocks.0`` ... each described, and none of their tensors another's."""
    reply = ctx.metadata(part, args, kwargs)
    missing = [f"blocks.{i}" for i in range(blocks) if f"blocks.{i}" not in reply.modules]
    shared = sorted({name.split(".")[1] for name in (reply.aliases or {}) if name.startswith("blocks.")})
    if missing or shared:
        found = f"{', '.join(missing)} not found among the modules" if missing else \
            f"the tensors of block(s) {', '.join(shared)} are another block's"
        raise CheckFailure(f"{label(part, args, kwargs)}: {found} (the same module registered {blocks} times?)",
                           hint=SHARED_BLOCKS.hint)


def eval_determinism(ctx: Context, part: str, args: list, kwargs: dict, x: np.ndarray) -> None:
    """Two eval-mode calls on the same images agree exactly (NaN where both have it: the values checks' to
    charge)."""
    what = label(part, args, kwargs)
    reply = ctx.run(part, init_args=args, init_kwargs=kwargs, inputs=[x], repeats=2, seed=50)
    first, second = (outputs(reply, 1, f"{what}.forward", r)[0] for r in range(2))
    if not np.array_equal(first, second, equal_nan=True):
        raise CheckFailure(f"{what}: two eval-mode calls on the same images differ: is dropout (or other randomness) "
                           "active in eval mode?", hint="use nn.Dropout modules (and nn.MultiheadAttention's dropout), "
                                                        "which switch off in eval mode")


# ---------------------------------------------------------------------------------------------------------
# VisionTransformer

def vit_images(seed: int, shape) -> np.ndarray:
    return image_batch(seed, shape)


def model_outputs(reply, what: str, blocks: int, pooled: bool) -> tuple[np.ndarray, list, np.ndarray | None]:
    """(logits, [w_1, ...]) or, ``pooled``, (logits, [w_1, ...], pooling weights), flattened depth first by the
    runner: the logits, each block's weights, then the pooling weights."""
    accepted = []
    for sequence in ("list", "tuple"):  # the blocks' weights in a list (the contract's) or a tuple
        maps = f"{sequence}({', '.join(['Tensor'] * blocks)})"
        inner = f"Tensor, {maps}, Tensor" if pooled else f"Tensor, {maps}"
        accepted += [f"tuple({inner})", f"list({inner})"]
    if reply.structure not in accepted:
        extra = ", the pooling weights" if pooled else ""
        raise CheckFailure(f"{what} should return (logits, a list of {blocks} weight tensor(s), one per block{extra}); "
                           f"it returned {reply.structure or 'nothing'}")
    got = list(reply.outputs[0])
    if reply.dtypes[0] != "float32":
        raise CheckFailure(f"{what} returned {reply.dtypes[0]} logits; expected float32, the dtype of the images")
    return got[0], got[1 : 1 + blocks], got[1 + blocks] if pooled else None


def class_token(ctx: Context) -> str | None:
    """The name of a parameter of the submission's VisionTransformer shaped as a class token, (1, 1, D), outside
    its patch encoder and blocks; None where it holds none (or cannot be built)."""
    args, kwargs = vit_init(*VIT_CASES[0])
    try:
        described = ctx.metadata(VIT, args, kwargs)
    except (CheckFailure, SubmissionError):  # only a hint is sought: a model that cannot be built keeps its failure
        return None
    buffers, dim = set(described.buffers or ()), kwargs["projection_dim"]
    return next((name for name, value in (described.params or {}).items() if np.shape(value) == (1, 1, dim)
                 and name not in buffers and not name.startswith(("patch_encoder.", "blocks."))), None)


def naming_a_class_token(check):
    """A VisionTransformer check that fails, with no hint of its own, on a model holding a class token names it:
    its failure is that other model's, not a naming problem."""
    @functools.wraps(check)
    def named(ctx: Context) -> None:
        try:
            check(ctx)
        except CheckFailure as failure:
            if failure.hint is None and (name := class_token(ctx)) is not None:
                failure.hint = f"{VIT_CLASS_TOKEN.hint} (your {name})"
            raise

    return named


@CHECKS.check("vit.interface", VIT, 2, "patch_encoder, blocks (a ModuleList), norm (eps 1e-6), head (Flatten, Dropout, "
              "[Linear, GELU, Dropout] per unit, Linear)", kind="interface")
@naming_a_class_token
def vit_interface(ctx: Context) -> None:
    check_interface(ctx, VIT_CONTRACT)


@CHECKS.check("vit.own_blocks", VIT, 1, "each block has its own weights", kind="interface")
def vit_own_blocks(ctx: Context) -> None:
    args, kwargs = vit_init(*VIT_CASES[0])
    require_own_blocks(ctx, VIT, args, kwargs, kwargs["num_blocks"])


@CHECKS.check("vit.shapes", VIT, 2, "logits (B, num_classes) for non-square images and several patch sizes",
              kind="shapes")
def vit_shapes(ctx: Context) -> None:
    for i, case in enumerate(VIT_CASES):
        args, kwargs = vit_init(*case)
        what = f"{label(VIT, tuple(args), kwargs)} on images of shape {case[0]}"
        reply = ctx.run(VIT, init_args=args, init_kwargs=kwargs, inputs=[vit_images(60 + i, case[0])], seed=i)
        (logits,) = outputs(reply, 1, f"{what}: forward")
        require_shape(what, logits, (case[0][0], CLASSES))


@CHECKS.check("vit.attention", VIT, 1, "return_attention gives each block's weights (B, heads, N, N)", kind="behaviour")
@naming_a_class_token
def vit_attention(ctx: Context) -> None:
    for i, case in enumerate(VIT_CASES[:2]):
        args, kwargs = vit_init(*case)
        c = vit_case(*case)
        what = f"{label(VIT, tuple(args), kwargs)}.forward(images, return_attention=True)"
        reply = ctx.run(VIT, init_args=args, init_kwargs=kwargs, inputs=[vit_images(70 + i, case[0])], seed=i,
                        call_kwargs={"return_attention": True})
        logits, maps, _ = model_outputs(reply, what, c.num_blocks, pooled=False)
        require_shape(f"{what}: logits", logits, (case[0][0], CLASSES))
        if ctx.failed("block.shapes"):
            continue  # the block's own weights have the wrong shape: charged there
        for b, w in enumerate(maps):
            require_shape(f"{what}: the weights of block {b}", w, (case[0][0], c.num_heads, c.num_patches, c.num_patches))


@CHECKS.check("vit.eval", VIT, 1, "eval mode is deterministic", kind="behaviour")
def vit_eval(ctx: Context) -> None:
    case = VIT_CASES[0]
    args, kwargs = vit_init(*case)
    eval_determinism(ctx, VIT, args, dict(kwargs, dropout=0.5), vit_images(80, case[0]))


# ---------------------------------------------------------------------------------------------------------
# ConvTokenizer

def tokenizer_init(channels) -> dict:
    return {"channels": list(channels)}


@CHECKS.check("tokenizer.interface", TOKENIZER, 1, "convs: a ModuleList of Conv2d(c_in, c, 3, padding=1, bias=False)",
              kind="interface")
def tokenizer_interface(ctx: Context) -> None:
    check_interface(ctx, TOKENIZER_CONTRACT)


def tokens_hint(shape, channels, got_n: int) -> str | None:
    """The named pooling mistake whose token count is ``got_n`` (stride 1 keeps every size; padding 0 loses one)."""
    for hint, stride, padding in ((POOL_STRIDE.hint, 1, 1), (POOL_PADDING.hint, 2, 0)):
        if token_count((shape[2], shape[3]), len(channels), stride, padding) == got_n:
            return hint
    return None


@CHECKS.check("tokenizer.shapes", TOKENIZER, 2, "tokens (B, N, channels[-1]) with the contract's token count",
              kind="shapes")
def tokenizer_shapes(ctx: Context) -> None:
    for i, (shape, channels) in enumerate(TOKENIZER_CASES):
        kwargs = tokenizer_init(channels)
        what = f"{label(TOKENIZER, (shape[1],), kwargs)} on images of shape {shape}"
        reply = ctx.run(TOKENIZER, init_args=[shape[1]], init_kwargs=kwargs, inputs=[image_batch(90 + i, shape)], seed=i)
        (got,) = outputs(reply, 1, f"{what}: forward")
        expected = (shape[0], token_count((shape[2], shape[3]), len(channels)), channels[-1])
        if np.ndim(got) == 3 and np.shape(got)[0] == shape[0] and np.shape(got)[1] != expected[1]:
            raise CheckFailure(f"{what}: {np.shape(got)[1]} tokens; expected {expected[1]} (each pooling maps a size s "
                               "to ceil(s / 2))", hint=tokens_hint(shape, channels, np.shape(got)[1]))
        require_shape(what, got, expected)


# ---------------------------------------------------------------------------------------------------------
# SequencePooling

def run_pooling(ctx: Context, shape, seed: int) -> list:
    dim = shape[2]
    what = f"{label(POOLING, (dim,), {})} on x of shape {shape}"
    reply = ctx.run(POOLING, init_args=[dim], inputs=[tokens(seed, shape)], seed=seed)
    pooled, w = outputs(reply, 2, f"{what}: forward")
    require_shape(f"{what}: pooled", pooled, (shape[0], dim))
    require_shape(f"{what}: weights", w, shape[:2])
    return [pooled, w]


@CHECKS.check("pooling.interface", POOLING, 1, "attention = Linear(embed_dim, 1)", kind="interface")
def pooling_interface(ctx: Context) -> None:
    check_interface(ctx, POOLING_CONTRACT)


@CHECKS.check("pooling.shapes", POOLING, 1, "pooled (B, D) and weights (B, N)", kind="shapes")
def pooling_shapes(ctx: Context) -> None:
    for i, shape in enumerate(POOLING_CASES):
        run_pooling(ctx, shape, 100 + i)


@CHECKS.check("pooling.weights_sum", POOLING, 2, "the weights are non-negative and sum to 1 over the tokens",
              kind="behaviour")
def pooling_weights_sum(ctx: Context) -> None:
    shape = POOLING_CASES[0]
    _, w = run_pooling(ctx, shape, 110)
    hint = POOL_FEATURES.hint if np.allclose(w, 1.0, atol=1e-6) else "weights = softmax over the tokens (dim 1)"
    require_rows_sum_to_one(f"{label(POOLING, (shape[2],), {})}", w, hint=hint, over="the tokens")


# ---------------------------------------------------------------------------------------------------------
# CompactTransformer

@CHECKS.check("cct.interface", CCT, 2, "tokenizer, position_embedding (1, N, D), blocks, norm (eps 1e-6), pool, head",
              kind="interface")
def cct_interface(ctx: Context) -> None:
    """The contract's, with N the token count of the submission's own tokenizer where its pooling has a known
    mistake (charged by the tokenizer's checks): the CCT sizes its table by its tokenizer, as it should."""
    build = CCT_CONTRACT.builds[0]
    switches = ctx.base(TOKENIZER)
    stride, padding = switches.get("pool_stride", 2), switches.get("pool_padding", 1)
    if (stride, padding) != (2, 1):
        case = cct_case(*CCT_CASES[0])
        n = token_count(case.image_size, len(case.channels), stride, padding)
        build = dataclasses.replace(build, params={**build.params, "position_embedding": (1, n, case.dim)})
    check_interface(ctx, dataclasses.replace(CCT_CONTRACT, builds=(build,)))


@CHECKS.check("cct.own_blocks", CCT, 1, "each block has its own weights", kind="interface")
def cct_own_blocks(ctx: Context) -> None:
    args, kwargs = cct_init(*CCT_CASES[0])
    require_own_blocks(ctx, CCT, args, kwargs, kwargs["num_blocks"])


@CHECKS.check("cct.shapes", CCT, 2, "logits (B, num_classes) for non-square and odd image sizes", kind="shapes")
def cct_shapes(ctx: Context) -> None:
    for i, case in enumerate(CCT_CASES):
        args, kwargs = cct_init(*case)
        what = f"{label(CCT, tuple(args), kwargs)} on images of shape {case[0]}"
        reply = ctx.run(CCT, init_args=args, init_kwargs=kwargs, inputs=[image_batch(120 + i, case[0])], seed=i)
        (logits,) = outputs(reply, 1, f"{what}: forward")
        require_shape(what, logits, (case[0][0], CLASSES))


@CHECKS.check("cct.attention", CCT, 1, "return_attention gives each block's weights and the pooling weights (B, N)",
              kind="behaviour")
def cct_attention(ctx: Context) -> None:
    for i, case in enumerate(CCT_CASES[:2]):
        args, kwargs = cct_init(*case)
        c = cct_case(*case)
        n = token_count(c.image_size, len(c.channels))
        what = f"{label(CCT, tuple(args), kwargs)}.forward(images, return_attention=True)"
        reply = ctx.run(CCT, init_args=args, init_kwargs=kwargs, inputs=[image_batch(130 + i, case[0])], seed=i,
                        call_kwargs={"return_attention": True})
        logits, maps, pool_weights = model_outputs(reply, what, c.num_blocks, pooled=True)
        B = case[0][0]
        require_shape(f"{what}: logits", logits, (B, CLASSES))
        if ctx.failed("tokenizer.shapes"):
            continue  # a different token count: charged by the tokenizer's shapes check
        if not ctx.failed("pooling.shapes"):
            require_shape(f"{what}: the pooling weights", pool_weights, (B, n))
        if not ctx.failed("block.shapes"):
            for b, w in enumerate(maps):
                require_shape(f"{what}: the weights of block {b}", w, (B, c.num_heads, n, n))


@CHECKS.check("cct.eval", CCT, 1, "eval mode is deterministic", kind="behaviour")
def cct_eval(ctx: Context) -> None:
    case = CCT_CASES[0]
    args, kwargs = cct_init(*case)
    eval_determinism(ctx, CCT, args, dict(kwargs, dropout=0.5), image_batch(140, case[0]))


# ---------------------------------------------------------------------------------------------------------
# Training: digits 8x8 on a CPU, MNIST-5k 28x28 on a GPU; one run for each model

DEFAULT_DATA = "digits"


def training_kwargs(profile: TrainingProfile) -> dict:
    info = images.task_data(profile.data or DEFAULT_DATA).info
    return dict(image_size=image_size_arg(info["height"], info["width"]), in_channels=info["in_channels"],
                num_classes=info["num_classes"], **profile.model_kwargs)


PROFILES = {  # VisionTransformer; calibrated with bench/calibrate_training.py --exercise vit (datasets/README.md)
    # CPU: digits 8x8 in 2x2 patches (16 tokens), about 4-6 s per run on 2 cores. The reference over seeds 0-19:
    # 0.9639-0.9833 (mean 0.9742, sd 0.0063).
    "cpu": TrainingProfile("cpu", dict(patch_size=2, projection_dim=32, num_heads=4, mlp_dim=64, num_blocks=2,
                                       mlp_head_units=[64], head_dropout=0.1), epochs=20, batch_size=64, lr=2e-3,
                           threshold=0.93, data="digits"),
    # GPU: MNIST-5k 28x28 in 7x7 patches (16 tokens). Calibrated by running it on a CPU (no GPU was lent; about
    # 20 s per run on 2 idle cores): the reference over seeds 0-19 scored 0.9400-0.9550 (mean 0.9478, sd 0.0040).
    "gpu": TrainingProfile("gpu", dict(patch_size=7, projection_dim=32, num_heads=4, mlp_dim=64, num_blocks=2,
                                       mlp_head_units=[128], head_dropout=0.1), epochs=12, batch_size=64, lr=1e-3,
                           threshold=0.92, data="mnist5k"),
}
CCT_PROFILES = {  # CompactTransformer; --part CompactTransformer
    # CPU: digits 8x8 (4 x 4 = 16 tokens of 32), about 3 s per run on 2 cores. The reference over seeds 0-19:
    # 0.9417-0.9944 (mean 0.9744, sd 0.0140).
    "cpu": TrainingProfile("cpu", dict(channels=[16, 32], num_heads=4, mlp_dim=64, num_blocks=2), epochs=20,
                           batch_size=64, lr=2e-3, threshold=0.91, data="digits"),
    # GPU: MNIST-5k 28x28 (7 x 7 = 49 tokens of 32). Calibrated on a CPU (no GPU was lent; 33-40 s per run on 2
    # idle cores): the reference over seeds 0-19 scored 0.9420-0.9740 (mean 0.9599, sd 0.0076).
    "gpu": TrainingProfile("gpu", dict(channels=[16, 32], num_heads=4, mlp_dim=64, num_blocks=2), epochs=12,
                           batch_size=64, lr=1e-3, threshold=0.92, data="mnist5k"),
}

# What students write themselves here: the transformer layers that would be the block, and the ViT pieces of
# torchvision and timm. nn.MultiheadAttention (and the attention functions it calls) is allowed.
TIMM_VIT = ("PatchEmbed", "Attention", "Block", "Mlp", "VisionTransformer", "AttentionPoolLatent")
FORBIDDEN = ForbiddenSet(
    functions={},
    ops=dict(TRANSFORMER_LAYERS.ops),
    modules={**TRANSFORMER_LAYERS.modules,
             "torchvision.models.VisionTransformer": "torchvision.models.VisionTransformer",
             "torchvision.models.vision_transformer.EncoderBlock": "torchvision.models.vision_transformer.EncoderBlock",
             **{f"timm.layers.{name}": f"timm.layers.{name}" for name in TIMM_VIT}},
)

# The CCT's position embedding is a bare parameter of the model: drawn N(0, 0.5), the size of the tokens' values
# (a matrix's fan-in rule would make it vanish beside them).
WEIGHT_RULES = DEFAULT_RULES.extend(WeightRule(CCT, "position_embedding", normal(0.0, 0.5)))


EXERCISE = Exercise(
    name="vit",
    title="The Vision Transformer and the compact convolutional transformer",
    number=4,
    parts=PARTS,
    checks=CHECKS,  # the hidden checks join it where hidden.py is installed (the registry)
    solution="solutions/vit.py",
    notebook="assignments/source/vit/vit.ipynb",
    demo_sample="assignments/samples/vit_flawed.py",
    profiles=PROFILES,
    part_profiles={CCT: CCT_PROFILES},
    task=TrainingTask(data=images.task_data, loss="cross_entropy", metric="accuracy", examples="images"),
    training_kwargs=training_kwargs,
    weight_rules=WEIGHT_RULES,
    forbidden=FORBIDDEN,
    labelled_data=images.labelled_data_paths,
    contracts=CONTRACTS,
    mistakes=tuple(MISTAKES),
)
