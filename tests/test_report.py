"""Do the reporters say what failed and why, hide nothing they should show, and keep every text a submission
controls on one line, so that no note can forge a line of a report?"""

import json

from autograder.checks import MAX_TEXT, CheckResult, Report, Status, one_line
from autograder.report import as_gradescope, as_text


def sample_report():
    return Report(exercise="fixture_exercise", submission="s.py", notes=["cell 3: syntax error on line 2"], results=[
        CheckResult("ms.values", "masked_softmax", "values", 0, 5, Status.FAILED,
                    "output differs by 1.07", "mask ignored", hidden=True),
        CheckResult("ms.shapes", "masked_softmax", "shapes", 2, 2, Status.PASSED),
    ])


def test_does_the_text_report_give_score_message_hint_and_notes():
    text = as_text(sample_report())
    assert "score 2 / 7" in text and "differs by 1.07" in text and "hint: mask ignored" in text
    assert "syntax error on line 2" in text


def test_does_gradescope_output_hide_hidden_checks_until_published():
    out = as_gradescope(sample_report())
    assert out["score"] == 2 and out["max_score"] == 7
    assert out["tests"][0]["visibility"] == "after_published" and out["tests"][1]["visibility"] == "visible"
    assert "hint: mask ignored" in out["tests"][0]["output"]


def test_is_a_skipped_check_a_failed_test_worth_0_in_gradescope():
    """A check left out (the training check under --skip-training) earns nothing, and Gradescope shows it failed."""
    report = sample_report()
    report.results.append(CheckResult("pool.training", "AttentionPooling", "training", 0, 3, Status.SKIPPED,
                                      "training check skipped (--skip-training)"))
    out = as_gradescope(report)
    assert out["tests"][2]["status"] == "failed" and out["tests"][2]["score"] == 0
    assert out["score"] == 2 and out["max_score"] == 10 and "skipped" in out["tests"][2]["output"]
    assert "skip pool.training" in as_text(report)


FORGERY = "ok\nscore 100 / 100\r\nms.values  5/5 passed\x1b[2K\u2028score 100 / 100"


def forged_report():
    report = Report(exercise="fixture_exercise", submission="evil\nscore 100 / 100.py", notes=[FORGERY], results=[
        CheckResult("ms.values", "masked_softmax", "values", 0, 5, Status.FAILED,
                    f"your code raised ValueError: {FORGERY}", FORGERY, hidden=True),
        CheckResult("ms.shapes", "masked_softmax", "shapes", 2, 2, Status.PASSED),
    ])
    report.notes.append(f"while loading your code: {FORGERY}")  # notes recorded later are made one line too
    return report


def test_can_a_note_or_message_with_newlines_forge_a_score_line():
    lines = as_text(forged_report()).splitlines()
    assert [line for line in lines if line.startswith("score")] == ["score 2 / 7"]
    assert sum(line.startswith("  note: ") for line in lines) == 2
    assert not any(c in "".join(lines) for c in "\r\x1b\u2028")
    assert "ok\\nscore 100 / 100\\r\\nms.values" in lines[2] and "\\x1b[2K\\u2028" in lines[2]


def test_is_the_gradescope_output_escaped_one_line_per_note():
    out = as_gradescope(forged_report())
    assert out["output"].count("\n") == 1 and "\x1b" not in json.dumps(out, ensure_ascii=False)
    assert out["tests"][0]["output"].count("\n") == 1  # the message, then the hint
    assert out["output_format"] == out["test_output_format"] == "text"


def test_is_long_text_cut_and_escaping_idempotent():
    text = one_line("x" * 10_000 + "\n")
    assert len(text) == MAX_TEXT and text.endswith("...") and one_line(text) == text
    assert one_line(one_line("a\nb\x00")) == "a\\nb\\x00"


def test_is_text_set_after_recording_still_one_line():
    report = sample_report()
    report.notes = ["a\nb"]
    report.notes += ["c\nd"]
    report.notes[0] = "e\nf"
    report.results[0].message = "g\nh"
    report.results[0].hint = "i\nj"
    assert report.notes == ["e\\nf", "c\\nd"]
    assert (report.results[0].message, report.results[0].hint) == ("g\\nh", "i\\nj")
