"""Do the reporters say what failed and why, and hide nothing they should show?"""

from autograder.checks import CheckResult, Report, Status
from autograder.report import as_gradescope, as_text


def sample_report():
    return Report(exercise="transformer", submission="s.py", notes=["cell 3: syntax error on line 2"], results=[
        CheckResult("sdpa.values", "scaled_dot_product_attention", "values", 0, 5, Status.FAILED,
                    "output differs by 1.07", "no 1/sqrt(d) scaling", hidden=True),
        CheckResult("sdpa.shapes", "scaled_dot_product_attention", "shapes", 2, 2, Status.PASSED),
    ])


def test_does_the_text_report_give_score_message_hint_and_notes():
    text = as_text(sample_report())
    assert "score 2 / 7" in text and "differs by 1.07" in text and "hint: no 1/sqrt(d)" in text
    assert "syntax error on line 2" in text


def test_does_gradescope_output_hide_hidden_checks_until_published():
    out = as_gradescope(sample_report())
    assert out["score"] == 2 and out["max_score"] == 7
    assert out["tests"][0]["visibility"] == "after_published" and out["tests"][1]["visibility"] == "visible"
    assert "hint: no 1/sqrt(d)" in out["tests"][0]["output"]
