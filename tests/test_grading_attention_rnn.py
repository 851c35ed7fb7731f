"""Does the attention-over-LSTM exercise's grader give full marks to correct code, zero to the stub, and lose
points (with the right named hint) for each known mistake?"""

from __future__ import annotations

from conftest import TESTS, failed, grade_source_in_process, stub_source
from mistake_edits.attention_rnn import ATTENTION_RNN_SOLUTION

from autograder.checks import Status
from autograder.exercises import get_exercise

EXERCISE = get_exercise("attention_rnn")


def grade(source: str):
    return grade_source_in_process(source, exercise="attention_rnn")


def test_does_the_reference_pass_every_check():
    report = grade(ATTENTION_RNN_SOLUTION.read_text())
    assert failed(report).keys() == {"ac.training"}  # skipped here; trained in test_training.py
    assert report.score == report.max_score - EXERCISE.check("ac.training").points


def test_does_the_stub_score_zero_without_crashing():
    report = grade(stub_source(ATTENTION_RNN_SOLUTION.read_text()))
    assert report.score == 0 and not report.grader_errors
    assert all("not implemented yet" in r.message for r in report.results if r.status == Status.ERROR)


def test_does_a_packed_sequence_implementation_score_full_marks():
    report = grade((TESTS / "submissions" / "attention_rnn_packed.py").read_text())
    assert failed(report).keys() == {"ac.training"}, {k: v.message for k, v in failed(report).items()}


def test_is_builtin_attention_refused(solution_text):
    source = ATTENTION_RNN_SOLUTION.read_text().replace(
        "        B, T, H = h.shape\n",
        "        torch.nn.functional.scaled_dot_product_attention(h, h, h)\n        B, T, H = h.shape\n", 1)
    lost = failed(grade(source))
    assert "ta.softmax_values" in lost and "scaled_dot_product_attention" in lost["ta.softmax_values"].message


def test_does_a_hook_that_halves_an_lstm_gradient_lose_the_gradients_naming_it():
    """The gradients are compared by value with float64 autograd through the gate-by-gate reference."""
    line = "        self.lstm2 = nn.LSTM(hidden_dim, hidden_dim, batch_first=True)\n"
    source = ATTENTION_RNN_SOLUTION.read_text()
    assert line in source
    source = source.replace(line, line + "        self.lstm2.weight_hh_l0.register_hook(lambda grad: grad / 2)\n", 1)
    lost = failed(grade(source))
    assert lost.keys() == {"ac.gradients", "ac.training"}  # the values are right
    assert "the gradient of lstm2.weight_hh_l0 differs" in lost["ac.gradients"].message
    assert "0.5 times" in lost["ac.gradients"].message


def test_does_a_submission_that_zeroes_its_attention_scores_still_score_full_marks():
    """Its weights are replaced by the grader's before every comparison: its own initialisation never counts."""
    line = "        self.score = nn.Linear(hidden_dim, 1)\n"
    source = ATTENTION_RNN_SOLUTION.read_text()
    assert line in source
    source = source.replace(line, line + "        nn.init.zeros_(self.score.weight)\n", 1)
    report = grade(source)
    assert failed(report).keys() == {"ac.training"}, {k: v.message for k, v in failed(report).items()}
