"""Write the Vision Transformer exercise's nbgrader source notebook (run when the narrative changes).

The solution cells are filled from ``solutions/vit.py``; test cells' points come from the exercise's checks. Run
``OMP_NUM_THREADS=1 .venv/bin/python tools/make_vit_notebook.py`` and commit the notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from autograder.exercises import get_exercise  # noqa: E402
from notebook_builder import NotebookBuilder  # noqa: E402

nb = NotebookBuilder(get_exercise("vit"))
markdown, code, solution = nb.markdown, nb.code, nb.solution


def tests(part: str, short: str) -> None:
    """``nb.tests``, without a hidden-checks cell where the part has no hidden checks (a test cell worth 0 points)."""
    nb.tests(part, short)
    if nb.cells[-1]["metadata"]["nbgrader"]["points"] == 0:
        nb.cells.pop()

markdown("intro", r"""
# The Vision Transformer and the compact convolutional transformer

A transformer reads a sequence. An image is not one, but it can be made one: cut it into patches, embed each
patch as a vector, add a position embedding so that the model still knows where each patch came from, and feed
the sequence to transformer blocks. Each block's self-attention relates every patch to every other patch, so
even the first layer "sees" the whole image, where a CNN's receptive field grows only layer by layer. The price:
nothing in the model knows that neighbouring pixels belong together, and it has to learn that from data. The
compact convolutional transformer (CCT) puts the convolutions back in: a small convolutional tokenizer makes the
tokens, and a learned attention pooling replaces the flattening at the end.

You build both in PyTorch, train them on handwritten digits beside a small CNN, and look at where the models
attend.

| part | what it is | paper or source |
| --- | --- | --- |
| `extract_patches` | cut images into a sequence of flattened patches | Dosovitskiy et al., [An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale](https://arxiv.org/abs/2010.11929), ICLR 2021 |
| `PatchEncoder` | a linear projection of each patch plus a learned position embedding | Keras' [Image classification with Vision Transformer](https://keras.io/examples/vision/image_classification_with_vision_transformer/), the course's source |
| `ViTBlock` | the pre-norm transformer encoder block, GELU MLP | Dosovitskiy et al., eqs. 2-3 |
| `VisionTransformer` | patches, encoder, blocks, LayerNorm, flatten, MLP head | Keras' ViT example (no class token) |
| `ConvTokenizer` | convolution, ReLU and max pooling stages; the last map's positions are the tokens | Hassani et al., [Escaping the Big Data Paradigm with Compact Transformers](https://arxiv.org/abs/2104.05704), 2021 |
| `SequencePooling` | a softmax over the tokens of a learned score, then their weighted sum | Hassani et al., 2021 |
| `CompactTransformer` | tokenizer, position embedding, blocks, LayerNorm, sequence pooling, linear head | Hassani et al., 2021; Keras' [Compact Convolutional Transformers](https://keras.io/examples/vision/cct/) |

**About the course's notebook.** This is the course's bonus example
(`CAB420_Neural_Attention_Bonus_Example_Visual_Transformer.ipynb`), adapted from Keras' ViT example. It trained
on CIFAR-100 (50,000 training and 10,000 test images, 32x32x3, 100 classes) with a horizontal flip, a small
rotation and a zoom as augmentation: 8x8 patches (16 patches of 192 values), a patch encoder of width 32, two
transformer blocks of 4 heads with a feed-forward width of 64, LayerNorm, flatten, dropout 0.5 and an MLP head of
512 and 256 units; AdamW (learning rate 1e-3, weight decay 1e-4), batches of 256, 100 epochs, 10% of the training
images held out for validation. Read off its plots, the ViT reached about 0.38-0.39 top-1 and 0.68 top-5 test
accuracy; a second model with a compact convolutional tokenizer (two stages of 16 and 32 channels: 64 tokens of
32 values) reached about 0.45-0.48 top-1 and 0.76 top-5. (Keras' current, larger example, on CIFAR-100 resized
to 72x72 with 6x6 patches, width 64 and 8 layers, reports about 55% top-1 and 82% top-5.) The contract's defaults
are the course's sizes. CIFAR-100 is a download and 100 epochs want a GPU, so this notebook trains on a small
offline data set instead; the last cell runs the course's recipe for those who have both.

**What is graded.** Each part has a cell of *public checks* you can run as often as you like, and hidden checks
that run when your notebook is graded. The grader loads random weights of its own into your layers (so keep the
layers' names, and let `load_state_dict` work) and compares your outputs, each head's attention weights and the
gradients with its own float64 reference, on non-square images, odd sizes, several patch sizes and a single
head. It checks behaviour (patches in the contract's order on three channels, weights that sum to 1, each block
with weights of its own, eval mode deterministic), and it trains your `VisionTransformer` and your
`CompactTransformer` with a fixed seed and budget (on a CPU: scikit-learn's 8x8 digits; on a GPU: 5,000 MNIST
digits), then requires the test accuracy that the reference solution reliably reaches. It reads only your
imports, functions and classes: the training cells at the end are *not* rerun when grading.

**Rules.** Attention itself was the transformer exercise: here the block may use `nn.MultiheadAttention` (or your
own `MultiHeadAttention` from that exercise, with its `q_proj`, `k_proj`, `v_proj` and `out_proj`). Write the
rest yourself: PyTorch's `nn.TransformerEncoderLayer`, `nn.TransformerEncoder` (and their decoder and
`nn.Transformer` siblings), torchvision's `VisionTransformer` and its `EncoderBlock`, and timm's `PatchEmbed`,
`Attention`, `Block`, `Mlp`, `VisionTransformer` and `AttentionPoolLatent` are not allowed. Keep the names,
arguments and attribute names below exactly as written: the grader uses them.
""")

nb.contract(r"""
Images are `(B, C, H, W)`; token sequences are `(B, N, D)`. Patches and tokens are numbered row by row (row-major):
patch `n = i * (W // P) + j` is the patch in row `i` and column `j`. The models return their logits, and with
`return_attention=True` also each block's attention weights, one `(B, num_heads, N, N)` tensor per block (not
averaged over the heads), so that you can plot them.
""", r"""
### Where the sources differ

The course's notebook, Keras' examples, the papers and the usual PyTorch code do not agree on every detail. The
contract picks one, and the grader checks the contract:

| | the contract | the others |
| --- | --- | --- |
| a patch's values | flattened in **(C, P, P)** order, channel outermost, as `F.unfold(images, P, stride=P)` and a strided `Conv2d` patch embedding give them | Keras' `extract_patches` and the usual einops pattern `b c (h p1) (w p2) -> b (h w) (p1 p2 c)` flatten in **(P, P, C)** order, channel innermost |
| the heads | `nn.MultiheadAttention(embed_dim, num_heads)` splits `embed_dim` into `num_heads` heads of `embed_dim // num_heads` values | Keras' `MultiHeadAttention(num_heads, key_dim)` takes the width of **each** head: the course passed `key_dim=projection_dim`, so every one of its 4 heads had the full width 32 |
| what is classified | no class token: LayerNorm, then **flatten** all N patch states into one vector, then an MLP head (the course and Keras' example) | the ViT paper prepends a learned class token to the patches and classifies the class token's final state alone |
| the block | **pre-norm** (`x + attn(LN(x))`, then `x + mlp(LN(x))`) with a **GELU** MLP, as the ViT paper and Keras' example | the course's ViT reused its post-norm text block (`LN(x + attn(x))`, then `LN(x + ffn(x))`) with a ReLU feed-forward; Keras' block MLP also applies GELU after its second layer, the paper's does not |
| the CCT's encoder layer | the same pre-norm `ViTBlock`, as Keras' CCT example | the authors' code: `x = x + attn(LN(x)); x = LN(x); x = x + mlp(x)`, neither pre- nor post-norm |
| the CCT's tokenizer | a convolution with padding 1, then `F.max_pool2d(x, 3, stride=2, padding=1)`, as the authors' code | Keras' CCT example convolves without padding, pads the ReLU's output with a border of zeros instead, then pools with padding "same", which pads at the end only: the same number of tokens, but other values at the borders |

The two patch orders train equally well: they differ by a fixed permutation of the projection's inputs, which
training absorbs. But raw patches and copied weights must agree on one, and only images with more than one
channel show which (on one channel the orders coincide): the checks use three.

**Why pre-norm.** In a post-norm block, `x = LN(x + F(x))`, every block's output passes through a LayerNorm,
so the path from the input to the output, and the gradient back to the first layers, goes through every norm of
the stack. The original transformer needed a learning-rate warm-up to train at all; Xiong et al.
([On Layer Normalization in the Transformer Architecture](https://arxiv.org/abs/2002.04745), ICML 2020) showed
why: at initialisation, post-norm's gradients near the output are large, and a full learning rate at the start
destabilises training. In a pre-norm block, `x = x + F(LN(x))`, the blocks only *add* to the residual stream:
the output is the input plus the blocks' contributions, an identity path from input to output, and the
gradient reaches every block through it without passing through any norm. Pre-norm transformers train without a
warm-up, as here (Adam at a constant learning rate from the first step). The ViT paper uses pre-norm, and so do
Keras' examples.
""")

code("imports_cell", "# filled from solutions/vit.py", section="imports")
code("check_import", "from autograder.notebook_cell import check_part  # the checks; keep this line")

markdown("patches_text", r"""
## 1. Patches

Cut `(B, C, H, W)` images into non-overlapping `P x P` patches (`H` and `W` are multiples of `P`) and flatten each
patch into one vector: `(B, N, C * P * P)` with `N = (H // P) * (W // P)`. Number the patches row by row, and
flatten each in **(C, P, P)** order: all of the first channel's `P x P` values (row by row), then the second's.

One `reshape` splits H into (patch row, row within the patch) and W likewise, giving `(B, C, h, P, w, P)`; one
`permute` brings the patch indices to the front, `(B, h, w, C, P, P)`; one `reshape` merges them. (Keras'
`extract_patches` and the usual einops pattern put the channel innermost, `(P, P, C)`: see the table above.)
""")
solution("extract_patches")
tests("extract_patches", "patches")

markdown("encoder_text", r"""
## 2. The patch encoder

Keras' patch encoder: a linear `projection` of each flattened patch to `projection_dim` values, plus a learned
`position_embedding`, one vector per patch position (`nn.Embedding(num_patches, projection_dim)`, looked up at
positions `0 .. N-1`):

$$z_n = W\,x_n + b + e_n, \qquad n = 0, \dots, N-1$$

Without the position embedding the model could not tell the patches apart by place: self-attention treats its
input as a set, and shuffling the patches would only shuffle its outputs.
""")
solution("PatchEncoder")
tests("PatchEncoder", "encoder")

markdown("block_text", r"""
## 3. The encoder block

The ViT paper's pre-norm block (Dosovitskiy et al., eqs. 2-3):

$$x' = x + \mathrm{MSA}(\mathrm{LN}_1(x)), \qquad \mathrm{out} = x' + \mathrm{MLP}(\mathrm{LN}_2(x'))$$

`norm1`, `norm2`: `nn.LayerNorm(embed_dim, eps=1e-6)` (Keras' epsilon); `attn`:
`nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)`, whose dropout falls on the
attention weights, as Keras' does; `mlp`: Linear, GELU (the exact, erf form: `nn.GELU()`), Dropout, Linear,
Dropout. Each head has `embed_dim // num_heads` values (not Keras' full width per head).

With `return_attention=True` return each head's weights too, `(B, num_heads, N, N)`:
`nn.MultiheadAttention` averages over the heads unless it is called with `average_attn_weights=False`, and it
computes no weights at all with `need_weights=False`, which is faster when they are not wanted.

This block differs from the course's ViT, which reused its post-norm text block with a ReLU feed-forward: the
norms come *before* attention and the MLP, inside the residual branches, and the MLP uses GELU. See "Why
pre-norm" above.
""")
solution("ViTBlock")
tests("ViTBlock", "block")

markdown("vit_text", r"""
## 4. The Vision Transformer

The course's model, after Keras' example: `extract_patches` -> `patch_encoder` -> `blocks` (`num_blocks`
ViTBlocks, each with weights of its own: build each anew, not `[block] * num_blocks`) -> `norm` (LayerNorm,
eps 1e-6) -> `head`.

There is no class token: the head **flattens** all N patch states into one vector of `N * projection_dim` values,
then Dropout(`head_dropout`), then for each of `mlp_head_units` a Linear, a GELU and a Dropout(`head_dropout`),
and a last Linear to the logits. The ViT paper instead prepends a learned class token and classifies its final
state; flattening ties the head to one number of patches, and so to one image size, and gives it most of the
model's parameters (in the course's model, `16 * 32 = 512` inputs to a layer of 512 units: 0.26 million of its 0.44
million parameters are in that one layer).

The defaults are the course's sizes: `VisionTransformer(32, 8, 3, 100)` is its CIFAR-100 model.
""")
solution("VisionTransformer")
tests("VisionTransformer", "vit")

markdown("tokenizer_text", r"""
## 5. The convolutional tokenizer

The CCT replaces the patches with a few convolution stages (Hassani et al., 2021). Per stage: a 3x3 convolution
(`convs`, padding 1, no bias, as in the authors' code), a ReLU, and max pooling with a 3x3 window, stride 2 and
padding 1, which maps each side `s` to `ceil(s / 2)`. The last feature map's positions, in row-major order, are
the tokens, and its channels their features: `(B, c, H', W')` -> `(B, H' * W', c)`.

The course's tokenizer: two stages of 16 and 32 channels; a 32x32 CIFAR image gives an 8x8 map, 64 tokens of 32
values. Unlike patches, neighbouring tokens overlap: each sees a window of the image larger than the 4 pixels
between them.
""")
solution("ConvTokenizer")
tests("ConvTokenizer", "tokenizer")

markdown("pooling_text", r"""
## 6. Sequence pooling

Instead of a class token, or flattening, the CCT pools the tokens with attention: a learned linear score per
token (`attention`, D -> 1), a softmax over the **N tokens**, and the weighted sum of the tokens:

$$w = \mathrm{softmax}_n\big(x_n\,a + b\big), \qquad \mathrm{pooled} = \sum_n w_n\, x_n$$

Return the pooled vector `(B, D)` and the weights `(B, N)` (they sum to 1 over the tokens): they say which
tokens the classifier reads, and we plot them below. The head then works for any number of tokens.
""")
solution("SequencePooling")
tests("SequencePooling", "pooling")

markdown("cct_text", r"""
## 7. The compact convolutional transformer

`tokenizer` -> plus `position_embedding` -> `blocks` (ViTBlocks of width `D = channels[-1]`, each its own) ->
`norm` (LayerNorm, eps 1e-6) -> `pool` (SequencePooling) -> `head` (Linear(D, num_classes)).

`position_embedding` is a learned `(1, N, D)` parameter, an `nn.Parameter` rather than an `nn.Embedding`, as in
the authors' code and Keras' CCT example. N is the number of tokens the tokenizer makes from images of
`image_size`; find it as Keras' example does, by running the tokenizer once on a blank image (under
`torch.no_grad()`). Initialise it with `nn.init.trunc_normal_(..., std=0.2)`, as the authors' code does. With
`return_attention=True` return the logits, the list of each block's weights and the pooling weights `(B, N)`.
""")
solution("CompactTransformer")
tests("CompactTransformer", "cct")

markdown("train_text", r"""
## 8. ViT, CCT and a small CNN on digits

The data: scikit-learn's 1,797 handwritten digits, 8x8 pixels, one channel, split 80/20 with a fixed seed and
normalised with the training split's mean and standard deviation (the data set of the grader's CPU training
check). Both transformers are built and trained with the settings of the grader's CPU training profiles
(`PROFILES["cpu"]` and `CCT_PROFILES["cpu"]` in `autograder/exercises/vit/__init__.py`): the ViT with 2x2 patches (16
patches of 4 values), width 32, 4 heads, 2 blocks and a head of 64 units; the CCT with the course's tokenizer
(16 and 32 channels), which turns an 8x8 digit into a 2x2 map: 4 tokens. The comparison is a plain CNN of the
CCT's two convolution stages, with a bias, a 2x2 max pooling and, at the end, the mean over positions and a
linear layer. All three get the same loop (`autograder.training.fit`: Adam at a constant learning rate,
cross-entropy, shuffled mini-batches, seed 0) and the profile's budget of 20 epochs; the CNN gets the CCT's.
That is plain Adam, not the course's AdamW, and no augmentation.

The table puts the course's CIFAR-100 figures beside ours. They are the **course's**, on other data (32x32 colour
images of 100 classes, 100 epochs with augmentation), and are not comparable with accuracies on 10 digits: they
are there for the ranking the course found: the CCT well ahead of the ViT, with far fewer parameters (in
the contract's form at the course's sizes, 28 thousand against 444 thousand). With 360 test
images, one image is 0.3 percentage points, and another seed moves each model by about as much as the models
differ here. The training times are this machine's and include Python's overhead.

In our run (CPU, seed 0) all three reached 96-98% test accuracy, and the small CNN, with a tenth of the ViT's
parameters, was both the most accurate and the fastest to train: on 1,437 images of 8x8 pixels a convolution's
built-in assumptions (neighbouring pixels belong together; a pattern means the same anywhere) are worth more than
attention's generality. That is the CCT's argument (its paper's title: escaping the big-data paradigm), but 8x8
digits are too small and too few to show the course's gap between the CCT and the ViT.

These cells are yours to change; the grader does not run them (they are skipped under nbgrader's autograde).
""")
code("train_setup", r'''
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from autograder.data.images import images_for
from autograder.exercises.vit import CCT_PROFILES, PROFILES, training_kwargs
from autograder.plots import grid_overlay, training_curves
from autograder.exercises.vit.rollout import attention_rollout, patch_importance
from autograder.training import fit, predict

RUN_TRAINING = os.environ.get("NBGRADER_EXECUTION") != "autograde"
device = "cuda" if torch.cuda.is_available() else "cpu"
DATA = "digits"  # or "mnist5k": 28x28 MNIST digits with the grader's GPU profile (minutes on a CPU)
if RUN_TRAINING:
    data = images_for(DATA)  # shared, read-only arrays: copy them before handing them to torch
    x_train, y_train = np.array(data.x_train), np.array(data.y_train)
    x_test, y_test = np.array(data.x_test), np.array(data.y_test)
    print(data, f"train {x_train.shape}, test {x_test.shape}")
    profile = next(name for name, p in PROFILES.items() if p.data == DATA)  # "cpu" for digits, "gpu" for MNIST-5k
    vit_profile, cct_profile = PROFILES[profile], CCT_PROFILES[profile]
    print("ViT:", training_kwargs(vit_profile))
    print("CCT:", training_kwargs(cct_profile))
''')
code("cnn_baseline", r'''
class SmallCNN(nn.Module):
    """A plain CNN for comparison: per stage a 3x3 convolution (padding 1), ReLU and 2x2 max pooling; then the
    mean over the positions and a linear head."""

    def __init__(self, in_channels, num_classes, channels=(16, 32)):
        super().__init__()
        layers, c_in = [], in_channels
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, images):
        B, C, H, W = images.shape
        x = self.features(images)  # (B, channels[-1], H // 4, W // 4) with two stages
        return self.head(x.mean((2, 3)))  # (B, channels[-1]) -> (B, num_classes)
''')
code("train_loop", r'''
# fit is the loop the grader trains your models with (autograder/training.py).
if RUN_TRAINING:
    course = {  # the course's notebook, on CIFAR-100 (read off its plots): NOT these data
        "ViT": ("about 0.38-0.39", "about 0.68"),
        "CCT": ("about 0.45-0.48", "about 0.76"),
        "small CNN": ("not in the course", "not in the course"),
    }
    builds = {
        "ViT": (lambda: VisionTransformer(**training_kwargs(vit_profile)), vit_profile),
        "CCT": (lambda: CompactTransformer(**training_kwargs(cct_profile)), cct_profile),
        "small CNN": (lambda: SmallCNN(data.shape[0], data.num_classes), cct_profile),
    }
    curves, rows, models = {}, [], {}
    for name, (build, profile) in builds.items():
        torch.manual_seed(0)
        model = build()
        start = time.perf_counter()
        history = fit(model, x_train, y_train, epochs=profile.epochs, batch_size=profile.batch_size, lr=profile.lr,
                      seed=0, device=device, progress=True)
        seconds = time.perf_counter() - start
        models[name], curves[name] = model, history.step_losses
        accuracy = (predict(model, x_test, device) == y_test).mean()
        rows.append({"model": name, "parameters": sum(p.numel() for p in model.parameters()),
                     "training time (s)": round(seconds, 1),
                     f"test accuracy ({DATA}, here)": round(float(accuracy), 4),
                     "course: CIFAR-100 top-1": course[name][0], "course: CIFAR-100 top-5": course[name][1]})
    display(pd.DataFrame(rows).set_index("model"))
    training_curves(curves, ylabel="cross-entropy loss")
    plt.show()
''')

markdown("heatmap_text", r"""
### Which patches does the ViT read? Attention rollout

One block's attention weights say how much each patch's state gathers from each other state of that block's
input, but after the first block those states are already mixtures of patches. *Attention rollout* (Abnar and
Zuidema, [Quantifying Attention Flow in Transformers](https://arxiv.org/abs/2005.00928), ACL 2020) follows the
mixing through the stack: average each block's weights over its heads, count the residual connection as half of
the attention (`0.5 * A + 0.5 * I`, rows renormalised), and multiply the blocks' matrices, the last on the left.
Row `i` of the result says how much each input patch contributes to output state `i`
(`autograder/exercises/vit/rollout.py`).

A model with a class token is read from the class token's row. This ViT has none: its head flattens all 16
output states, so the map below is the mean over all rows, how much each patch feeds the outputs on average (it
sums to 1 over the patches: a uniform map would be 1/16 = 0.0625 everywhere). It ignores what the head's weights
make of each output state, and it is not specific to a class. Drawn over each test image, with the true and the
predicted digit.

In our run the rollout ranged from about 0.04 to 0.15: lowest on the patches of the left and right borders,
where digits in this data set have little ink, and highest on patches the strokes cross. Try `residual=False`
to see the attention alone, without the residual path's share.
""")
code("heatmap", r'''
if RUN_TRAINING:
    model = models["ViT"].eval()
    show = slice(0, 8)
    with torch.no_grad():
        logits, maps = model(torch.from_numpy(x_test[show]).to(device), return_attention=True)
    rollout = attention_rollout([m.cpu() for m in maps])  # (8, N, N), N = 16 patches
    P = vit_profile.model_kwargs["patch_size"]
    grid = (x_test.shape[2] // P, x_test.shape[3] // P)  # (4, 4) patches
    importance = patch_importance(rollout, grid)  # (8, 4, 4)
    print(f"rollout importance per patch between {importance.min().item():.3f} and {importance.max().item():.3f} "
          f"(uniform: {1 / (grid[0] * grid[1]):.3f})")
    predicted = logits.argmax(-1).cpu().numpy()
    titles = [f"{data.classes[t]}, predicted {data.classes[p]}" for t, p in zip(y_test[show], predicted)]
    grid_overlay(x_test[show], importance.numpy(), titles=titles, cell=P, title="attention rollout")
    plt.show()
''')

markdown("pooling_map_text", r"""
### Which tokens does the CCT pool? Sequence-pooling weights

The CCT's pooling weights are what its classifier reads directly: the pooled vector is the sum of the token
states weighted by them. Its tokenizer turns an 8x8 digit into a 2x2 map (`ceil(8 / 4)` per side after two
stages), so there are only 4 weights per image (uniform: 0.25), each drawn over the 4x4 pixels at its position;
a token's receptive field (13x13 pixels) is wider than that and overlaps its neighbours'. On CIFAR's 32x32
images the map is 8x8, 64 tokens, and on the grader's GPU data (28x28 MNIST digits) 7x7.

In our run the weights stayed between about 0.18 and 0.30, close to uniform: with four tokens, each already
summarising a 13x13 window of an 8x8 image, there is little to choose. The colour scale below therefore starts
at the smallest weight, not at 0.
""")
code("pooling_map", r'''
if RUN_TRAINING:
    model = models["CCT"].eval()
    show = slice(0, 8)
    with torch.no_grad():
        logits, maps, pool_weights = model(torch.from_numpy(x_test[show]).to(device), return_attention=True)
    H, W = x_test.shape[2:]
    tokens_grid = (-(-H // 4), -(-W // 4))  # ceil(H / 4) x ceil(W / 4) after two stride-2 poolings
    weights = pool_weights.cpu().reshape(-1, *tokens_grid)  # (8, N) -> (8, 2, 2), row-major
    print(f"pooling weights between {weights.min().item():.3f} and {weights.max().item():.3f} "
          f"(uniform: {1 / weights[0].numel():.3f})")
    predicted = logits.argmax(-1).cpu().numpy()
    titles = [f"{data.classes[t]}, predicted {data.classes[p]}" for t, p in zip(y_test[show], predicted)]
    grid_overlay(x_test[show], weights.numpy(), titles=titles, cell=4, title="sequence-pooling weight", vmin=None)
    plt.show()
''')

markdown("cifar_text", r"""
## 9. The course's recipe on CIFAR-100 (off by default)

With a network and a GPU you can rerun the course's experiment: `autograder/exercises/vit/cifar_recipe.py` holds its recipe in
PyTorch (AdamW with learning rate 1e-3 and weight decay 1e-4, batches of 256, 100 epochs, 10% of the training
images held out for validation, and the horizontal flip, rotation of up to 0.02 of a turn and zoom of up to 20%
of the course's Keras layers, written with torch operations in `autograder/data/augment.py`). Set
`RUN_CIFAR = True` to download CIFAR-100 (about 160 MB, checked by its MD5) into `CIFAR_ROOT` and train the
course's two models. As it stands the cell does nothing: nothing is downloaded. Expect an hour or more on a GPU;
on a CPU, days.
""")
code("cifar", r'''
RUN_CIFAR = False  # True: download CIFAR-100 into CIFAR_ROOT and train both models for 100 epochs (use a GPU)
CIFAR_ROOT = "~/data"
if RUN_TRAINING and RUN_CIFAR:
    from autograder.exercises.vit.cifar_recipe import CifarRecipe, load_cifar100, train_cifar

    cifar = load_cifar100(CIFAR_ROOT, download=True)
    recipe = CifarRecipe()  # the course's settings
    course_models = {  # the course's sizes (the contract's defaults) and its results (top-1, top-5)
        "ViT": (lambda: VisionTransformer(32, 8, 3, 100), "about 0.38-0.39", "about 0.68"),  # 16 patches of 8x8x3
        "CCT": (lambda: CompactTransformer(32, 3, 100), "about 0.45-0.48", "about 0.76"),  # 64 tokens of 32
    }
    for name, (build, top1, top5) in course_models.items():
        torch.manual_seed(0)
        model = build()
        history = train_cifar(model, cifar, recipe, device=device)
        print(f"{name}: test top-1 {history.test_top1:.3f}, top-5 {history.test_top5:.3f} "
              f"(the course: top-1 {top1}, top-5 {top5})")
''')

path = nb.write(ROOT)
print(f"wrote {path.relative_to(ROOT)}")
