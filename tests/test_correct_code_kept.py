"""Does correct code that the hostile round's fixes could have caught keep its full marks?

Each is an edit of a reference solution, graded under the real sandbox without training (the training check is
the trained model's, and these edits change no function).
"""

from __future__ import annotations

import re

import pytest

from conftest import ROOT, failed
from edits import FAST

from autograder.grading import grade_path

pytestmark = pytest.mark.slow


def solution(name: str) -> str:
    return (ROOT / "solutions" / f"{name}.py").read_text()


def edited(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def pasted_attention() -> str:
    """The trajectory exercise's given MultiHeadAttention replaced by the transformer exercise's own (as the
    notebook allows): hand-written scaled dot-product attention and heads."""
    transformer, seq2seq = solution("transformer"), solution("seq2seq")
    mine = transformer[transformer.index("def scaled_dot_product_attention"):transformer.index("class TransformerBlock")]
    mine = re.sub(r" *### (BEGIN|END) SOLUTION\n", "", mine)
    start = seq2seq.index("class MultiHeadAttention")
    end = seq2seq.index("# %% [TransformerBlock]")
    return seq2seq[:start] + mine + "\n\n" + seq2seq[end:]


CORRECT = {
    # the classifier reads the second LSTM's last real step from its final state, over packed sequences
    "packed sequences": ("attention_rnn", lambda: edited(solution("attention_rnn"), (
        "        out, _ = self.lstm2(weighted)  # (B, T, H)\n"
        "        last = mask.sum(1) - 1  # (B,), index of each sequence's last real step\n"
        "        final = out[torch.arange(out.size(0), device=out.device), last]  # (B, H)\n",
        "        lengths = mask.sum(1).cpu()  # (B,)\n"
        "        packed = nn.utils.rnn.pack_padded_sequence(weighted, lengths, batch_first=True, enforce_sorted=False)\n"
        "        _, (h_n, _) = self.lstm2(packed)  # h_n (1, B, H): each sequence's last real step\n"
        "        final = h_n[-1]  # (B, H)\n"))),
    # greedy prediction under inference mode instead of no_grad
    "inference mode": ("seq2seq", lambda: edited(solution("seq2seq"), (
        "        with torch.no_grad():\n            for _ in range(steps):",
        "        with torch.inference_mode():\n            for _ in range(steps):"))),
    "pasted attention": ("seq2seq", pasted_attention),
    # a DCGAN-style initialiser that tests class names, and profiler labels named like layers
    "weights_init and profiler labels": ("vit", lambda: edited(solution("vit"), (
        "# %% [ViTBlock]\n",
        "def weights_init(m):\n"
        "    classname = m.__class__.__name__\n"
        "    if classname.find(\"Attention\") != -1 or classname.find(\"Block\") != -1:\n"
        "        pass  # the course's own initialisation\n\n\n# %% [ViTBlock]\n"), (
        "        h = self.norm1(x)  # (B, N, D)\n",
        "        with torch.profiler.record_function(\"Attention\"):\n"
        "            h = self.norm1(x)  # (B, N, D)\n"))),
}


@pytest.mark.parametrize("case", sorted(CORRECT))
def test_does_correct_code_keep_full_marks(write, case):
    exercise, source = CORRECT[case]
    report = grade_path(write("correct.py", source()), exercise, **FAST)
    lost = {name: r.message for name, r in failed(report).items() if r.status.value != "skipped"}
    assert not lost, lost
    graded = [r for r in report.results if r.status.value != "skipped"]
    assert len(graded) > 5 and report.score == sum(r.max_points for r in graded)
