"""Write the attention-inside-CNNs exercise's nbgrader source notebook (run when the narrative changes).

The solution cells are filled from ``solutions/cnn_attention.py``; test cells' points come from the exercise's
checks. Run ``.venv/bin/python tools/make_cnn_attention_notebook.py`` and commit the notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from autograder.exercises import get_exercise  # noqa: E402
from notebook_builder import NotebookBuilder  # noqa: E402

nb = NotebookBuilder(get_exercise("cnn_attention"))
markdown, code, solution = nb.markdown, nb.code, nb.solution

markdown("intro", r"""
# Attention inside CNNs: squeeze-and-excitation, CBAM and self-attention

The idea of attention is to learn which parts of an input (or of an internal representation) matter most, and
to weight them so that the important parts stand out. In the course's first two examples the parts were the
words of a tweet. Inside an image CNN, a feature map `(B, C, H, W)` has two axes to weight:

* **the channels**, *what* to look for: a gate in (0, 1) per channel, computed from the whole feature map, turns
  the features that matter for this image up and the others down. Squeeze-and-excitation (SE) does this, and
  CBAM's channel attention does it with a second descriptor;
* **the positions**, *where* to look: a gate per position (CBAM's spatial attention), or, with
  **self-attention**, each position gathers the features of every other position, weighted by how well they
  match. A convolution sees a small neighbourhood; one self-attention layer sees the whole map.

You build these modules in PyTorch, put one after every convolution of a small classifier, train the variants
on handwritten digits and look at what their attention does.

| part | what it is | paper |
| --- | --- | --- |
| `SqueezeExcitation` | a channel gate from each channel's mean | Hu, Shen and Sun, [Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507), CVPR 2018 |
| `ChannelAttention`, `SpatialAttention`, `CBAM` | channel gate from the mean and the max, then a spatial gate | Woo, Park, Lee and Kweon, [CBAM: Convolutional Block Attention Module](https://arxiv.org/abs/1807.06521), ECCV 2018 |
| `SelfAttention2d` | every position attends to every position | Wang, Girshick, Gupta and He, [Non-local Neural Networks](https://arxiv.org/abs/1711.07971), CVPR 2018, in the form of Zhang, Goodfellow, Metaxas and Odena, [Self-Attention Generative Adversarial Networks](https://arxiv.org/abs/1805.08318), ICML 2019 |
| `AttentionCNN` | a small image classifier with one of them in every stage | |

**About the course's notebook.** This is the course's bonus example on attention and DCNNs
(`CAB420_Neural_Attention_Bonus_Example_Attention_and_DCNNs.ipynb`), and its original notebook is lost. The
course's topic overview is all that is left of it: it restated the idea above ("learn an additional layer that
will consider the importance of locations within an input", then "use this learned importance to weight the
input/representation such that more important regions are more prominent") and said the example would look at
"a few variations on this within the context of images". Which variations, which data and which results are not
known. This exercise rebuilds the example from the field's standard modules, cited above; nothing here claims to
reproduce the original, and unlike Examples 1 and 2 there are no course figures to compare with.

**What is graded.** Each part has a cell of *public checks* you can run as often as you like, and hidden checks
that run when your notebook is graded. The grader loads random weights of its own into your layers (so keep the
layers' names, and let `load_state_dict` work), with `gamma` non-zero and bottleneck activations of both signs,
and compares your outputs and gradients with its own float64 reference on several shapes: non-square images,
odd heights and widths, and fewer channels than the reduction. It checks behaviour (gates in (0, 1) and of the
right shape, self-attention rows that sum to 1, an identity block while `gamma` is 0), and it trains your
`AttentionCNN(attention="cbam")` with a fixed seed and budget (on a CPU: scikit-learn's 8x8 digits; on a GPU:
5,000 MNIST digits), then requires the test accuracy that the reference solution reliably reaches. It reads
only your imports, functions and classes: the training cells at the end are *not* rerun when grading.

**Rules.** Write the attention yourself: `torchvision.ops.SqueezeExcitation`, timm's attention layers (its
`SEModule`, `CbamModule` and the like) and `torch.nn.functional.scaled_dot_product_attention` are not allowed
(the last also scales by 1/sqrt(d), which this block does not). Keep the names, arguments and attribute names
below exactly as written: the grader uses them.
""")

nb.contract(r"""
Images and feature maps are `(B, C, H, W)`. Every attention module returns its refined input, of the input's
shape, **and** the weights it applied, so that you can plot them.
""", r"""
**Paper or code?** Where the authors' code (or the most used library) differs from the paper, the contract
follows the paper, and the grader checks the contract:

| module | the contract (the paper) | the code you may have seen |
| --- | --- | --- |
| `SqueezeExcitation` | hidden width `max(1, C // reduction)` | timm's `SEModule` rounds the hidden width to a multiple of 8 |
| `SpatialAttention` | `[mean over C; max over C]`, in that order (CBAM eq. 3), convolution, sigmoid | the official CBAM code stacks the max first and puts a BatchNorm after the convolution |
| `SelfAttention2d` | the common PyTorch form of SAGAN's block: value C -> C, no output convolution | the SAGAN paper projects the value to C/8 channels and adds an output 1x1 convolution back to C; the authors' TensorFlow release uses a C/2 value, max-pools the keys and values 2x2 and ends with an output convolution |

With weights trained from scratch, max-first is only a permutation of the spatial convolution's two input
channels; but the grader loads its own weights under the contract's meaning, so the order matters here.
""")


code("imports_cell", "# filled from solutions/cnn_attention.py", section="imports")
code("check_import", "from autograder.notebook_cell import check_part  # the checks; keep this line")

markdown("se_text", r"""
## 1. Squeeze-and-excitation

*Squeeze*: each channel's mean over H, W, a descriptor `(B, C, 1, 1)` of the whole image. *Excitation*: a
bottleneck MLP, written as 1x1 convolutions `fc1` (C -> hidden) and `fc2` (hidden -> C) with a ReLU between, and a
sigmoid: one gate in (0, 1) per channel. *Scale*: multiply each channel of `x` by its gate.

$$s = \sigma\big(W_2\,\mathrm{relu}(W_1\,\mathrm{mean}_{H,W}(x))\big), \qquad \mathrm{out} = x \odot s$$

`hidden = max(1, channels // reduction)`: a layer with fewer channels than the reduction still gets one hidden
unit. SENets, with such a block in their residual units, won the ILSVRC 2017 classification task.
""")
solution("SqueezeExcitation")
nb.tests("SqueezeExcitation", "se")

markdown("channel_text", r"""
## 2. CBAM's channel attention

CBAM adds a second descriptor: the max over H, W beside the mean. Both go through **one shared** MLP (the same
`fc1` and `fc2`), the two outputs are summed, and a single sigmoid of the sum gives the gates (CBAM eq. 2):

$$M_c(x) = \sigma\big(\mathrm{MLP}(\mathrm{mean}_{H,W}(x)) + \mathrm{MLP}(\max_{H,W}(x))\big)$$
""")
solution("ChannelAttention")
nb.tests("ChannelAttention", "channel")

markdown("spatial_text", r"""
## 3. CBAM's spatial attention

Now pool over the **channels**: the mean and the max over C give two `(B, 1, H, W)` maps. Stack them, mean
first, into `(B, 2, H, W)`, convolve with one k x k kernel (zero padding `k // 2`, no bias) and take the
sigmoid: one gate per position (CBAM eq. 3).

$$M_s(x) = \sigma\big(\mathrm{conv}_{k \times k}([\mathrm{mean}_C(x);\ \max_C(x)])\big)$$
""")
solution("SpatialAttention")
nb.tests("SpatialAttention", "spatial")

markdown("cbam_text", r"""
## 4. CBAM

Channel attention first, then spatial attention **on its output** (not on the input). The paper compared this
sequential, channel-first arrangement with spatial-first and with both gates computed in parallel from the
input, and found it the best. Return the spatial weights: they are the map we plot.
""")
solution("CBAM")
nb.tests("CBAM", "cbam")

markdown("self_text", r"""
## 5. Self-attention over positions

Flatten the `H x W` positions in row-major order (position `i = h * W + w`, what `x.view(B, C, H * W)` gives).
1x1 convolutions give every position a query and a key (`C -> max(1, C // reduction)` channels) and a value
(`C -> C`). Position `i` attends to every position `j`:

$$\beta_{ij} = \mathrm{softmax}_j\big(\langle q_i, k_j \rangle\big), \qquad a_i = \sum_j \beta_{ij}\, v_j, \qquad
\mathrm{out} = x + \gamma\, a$$

The softmax runs over the keys `j`, so each row of `weights (B, H*W, H*W)` sums to 1. There is **no**
1/sqrt(d) scaling: neither the non-local block nor SAGAN scales. `gamma` is a learned scalar that starts at 0: the block
starts as the identity, and the network learns how much of the attention to let in. This is the non-local
block's "embedded Gaussian" form with SAGAN's residual `gamma`; the weights are `(H*W)^2` numbers per image, so
such a block sits where the map is small.
""")
solution("SelfAttention2d")
nb.tests("SelfAttention2d", "self")

markdown("cnn_text", r"""
## 6. The classifier

Per stage: a 3x3 convolution (padding 1), ReLU, the stage's attention module (built with its defaults), then
2x2 max pooling. After the last stage, the mean over H, W and a linear head. `attention="none"` builds no
attention modules (and `return_attention=True` then gives an empty list); an unknown name raises `ValueError`.
The hidden checks also train this classifier with `attention="cbam"` (a fixed seed and budget, the same for
everyone) and require the test accuracy the reference solution reliably reaches.
""")
solution("AttentionCNN")
nb.tests("AttentionCNN", "cnn")

markdown("train_text", r"""
## 7. Does attention help? No attention, SE, CBAM and self-attention on digits

The data: scikit-learn's 1,797 handwritten digits, 8x8 pixels, one channel, split 80/20 with a fixed seed and
normalised with the training split's mean and standard deviation (the data set the grader's CPU training check
uses). Every model has the same two stages of 16 and 32 channels and is trained with the same loop, seed and
budget as the others (`autograder.training.fit`: Adam, cross-entropy, shuffled mini-batches).

With 360 test images one image is 0.3 percentage points, and a different seed moves every model by about as
much as the models differ: do not read a ranking into one run. Attention modules were designed for deep
networks on large images; on 8x8 digits a plain CNN is already near its ceiling. The plots after the table are
the more interesting part: what each kind of attention computes.

These cells are yours to change; the grader does not run them (they are skipped under nbgrader's autograde).
""")
code("train_setup", r'''
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from autograder.data.images import images_for
from autograder.training import fit, predict
from autograder.plots import channel_weights_per_class, image_maps, position_attention, training_curves

RUN_TRAINING = os.environ.get("NBGRADER_EXECUTION") != "autograde"
device = "cuda" if torch.cuda.is_available() else "cpu"
if RUN_TRAINING:
    data = images_for("digits")  # shared, read-only arrays: copy them before handing them to torch
    x_train, y_train = np.array(data.x_train), np.array(data.y_train)
    x_test, y_test = np.array(data.x_test), np.array(data.y_test)
    print(data, f"train {x_train.shape}, test {x_test.shape}")
''')
code("train_loop", r'''
# fit is the loop the grader trains your classifier with (autograder/training.py).
if RUN_TRAINING:
    curves, rows, models = {}, [], {}
    for attention in ("none", "se", "cbam", "self"):
        torch.manual_seed(0)
        model = AttentionCNN(1, data.num_classes, attention=attention, widths=(16, 32))
        start = time.perf_counter()
        history = fit(model, x_train, y_train, epochs=20, batch_size=64, lr=3e-3, seed=0, device=device,
                      progress=True)
        seconds = time.perf_counter() - start
        models[attention] = model
        curves[attention] = history.step_losses
        accuracy = (predict(model, x_test, device) == y_test).mean()
        rows.append({"attention": attention, "test accuracy": round(float(accuracy), 4),
                     "parameters": sum(p.numel() for p in model.parameters()),
                     "training time (s)": round(seconds, 1)})
    display(pd.DataFrame(rows).set_index("attention"))
    training_curves(curves, ylabel="cross-entropy loss")
    plt.show()
''')
markdown("heatmap_text", r"""
### Where does CBAM look?

CBAM's spatial gate of the first stage (8x8, one gate per pixel) beside each test image, with the true and the
predicted digit, on the gates' own scale: 0 (the position is shut) to 1 (it passes unchanged). The cell also
prints the range of each stage's gates over the whole test set.

In our run (CPU, seed 0) the gates are within a hundredth of 1 everywhere: training made the spatial
convolution's weights large and positive, and its input, the mean and the max over channels of ReLU outputs,
is never negative, so the sigmoid saturates. The network has learned to switch its spatial attention *off*: a
gate can only damp a position, and here damping evidently did not pay. The authors' code puts a BatchNorm
between the convolution and the sigmoid, which normalises the gate's input; the paper's equation, which the
contract follows, has none. Try it in a copy of the classes (your graded `SpatialAttention` must keep the
contract) and compare the maps.
""")
code("heatmap", r'''
if RUN_TRAINING:
    model = models["cbam"].eval()
    with torch.no_grad():
        logits, maps = model(torch.from_numpy(x_test).to(device), return_attention=True)
    for stage, gates in enumerate(maps, start=1):
        print(f"stage {stage}: spatial gates {tuple(gates.shape[2:])} between {gates.min().item():.4f} and "
              f"{gates.max().item():.4f}")
    show = slice(0, 8)
    predicted = logits[show].argmax(-1).cpu().numpy()
    titles = [f"{data.classes[t]}, predicted {data.classes[p]}" for t, p in zip(y_test[show], predicted)]
    image_maps(x_test[show], maps[0][show].cpu().numpy(), titles=titles, map_title="stage-1 gate", vmin=0.0,
               vmax=1.0)
    plt.show()
''')
markdown("channels_text", r"""
### SE's channel gates per class

SE's gates for every test image, averaged over the images of each digit (rows: digits, columns: channels). In
deep SENets, Hu et al. found the gates of early layers much the same for every class and those of deeper layers
increasingly class-specific. The cell prints how much the gates vary from image to image.

In our run they hardly vary at all, and in the second stage not in the slightest: with `reduction=16` the
bottleneck has `max(1, 16 // 16) = 1` hidden unit in the first stage and `32 // 16 = 2` in the second, and both
of the second stage's ReLUs ended up negative for every image. The gates are then `sigmoid(fc2.bias)` whatever
the image: a learned, fixed scale per channel, no longer attention. A bottleneck that narrow is fragile; try
`SqueezeExcitation(width, reduction=4)` in your own copy of the classifier.
""")
code("channel_weights", r'''
if RUN_TRAINING:
    model = models["se"].eval()
    with torch.no_grad():
        _, maps = model(torch.from_numpy(x_test).to(device), return_attention=True)
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [1, 2]})
    for stage, (ax, gates) in enumerate(zip(axes, maps), start=1):
        gates = gates.flatten(1).cpu().numpy()  # (N, C)
        print(f"stage {stage}: gates between {gates.min():.3f} and {gates.max():.3f}; their standard deviation "
              f"over the test images, averaged over the channels: {gates.std(0).mean():.4f}")
        channel_weights_per_class(gates, y_test, classes=data.classes, ax=ax,
                                  title=f"SE gates, stage {stage} (mean per class)")
    fig.tight_layout()
    plt.show()
''')
markdown("position_text", r"""
### Where does one position attend?

One row of the first stage's self-attention weights `(64, 64)`, reshaped to the 8x8 map: where the position
marked with a cross gathers its features from, in three test images. Unlike the gates above, these weights
change from image to image. `gamma` says how much of the attended features the network lets in (it started at
0): the cell prints it.
""")
code("position_map", r'''
if RUN_TRAINING:
    model = models["self"].eval()
    print("gamma per stage:", [round(block.gamma.item(), 3) for block in model.attentions])
    show = [0, 1, 2]
    position = (3, 4)  # (row, column) on the 8x8 map
    with torch.no_grad():
        _, maps = model(torch.from_numpy(x_test[show]).to(device), return_attention=True)
    fig, axes = plt.subplots(len(show), 2, figsize=(7, 3.2 * len(show)))
    for row, i in enumerate(show):
        position_attention(x_test[i], maps[0][row].cpu().numpy(), position, axes=axes[row],
                           title=f"digit {data.classes[y_test[i]]}")
    fig.tight_layout()
    plt.show()
''')

path = nb.write(ROOT)
print(f"wrote {path.relative_to(ROOT)}")
