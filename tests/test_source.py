"""Is a submission read as definitions only, with problems reported instead of raised?"""

import json
import time

import pytest
from conftest import SOLUTION

from autograder import source
from autograder.protocol import encode
from autograder.source import (
    MAX_SOURCE_BYTES, SubmissionFormatError, filter_definitions, load_submission, namespace_from_source,
)
from autograder.source_filter import MAX_NOTES


def notebook(*cells):
    return json.dumps({"cells": [{"cell_type": kind, "metadata": {}, "source": src} for kind, src in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_are_training_calls_dropped_and_definitions_kept():
    code, notes = filter_definitions("import torch\nX = 3\nmodel = train()\ndef f():\n    return X\nprint(f())", "cell 1")
    assert notes == []
    assert "train()" not in code and "print" not in code and "def f" in code and "X = 3" in code


def test_are_line_numbers_kept():
    code, _ = filter_definitions("train()\n\ndef f():\n    return 1", "cell 1")
    assert code.splitlines()[2] == "def f():"


def test_does_a_syntax_error_in_one_cell_keep_the_other_cells(write):
    path = write("nb.ipynb", notebook(("code", "def f(:\n  pass"), ("markdown", "# hi"), ("code", "def g():\n    return 2")))
    sub = load_submission(path)
    assert len(sub.cells) == 1 and "def g" in sub.cells[0].code
    assert any("cell 1" in n and "syntax error" in n for n in sub.notes)


def test_are_magics_and_shell_escapes_ignored(write):
    path = write("nb.ipynb", notebook(("code", "%matplotlib inline\n!pip install x\ndef g():\n    return 2")))
    assert "def g" in load_submission(path).cells[0].code


@pytest.mark.parametrize("name, content, message", [
    ("broken.ipynb", "{not json", "not JSON"),
    ("list.ipynb", "[1, 2]", "not a notebook"),
    ("empty.py", "   \n", "empty"),
])
def test_is_an_unreadable_file_reported(write, name, content, message):
    path = write(name, content)
    with pytest.raises(SubmissionFormatError, match=message):
        load_submission(path)


def test_is_a_binary_file_reported(tmp_path):
    path = tmp_path / "x.py"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SubmissionFormatError, match="not a text file"):
        load_submission(path)


def test_does_an_error_at_import_cost_only_its_cell(write):
    path = write("nb.ipynb", notebook(("code", "import not_a_module_xyz"), ("code", "def g():\n    return 2")))
    namespace, errors = namespace_from_source(load_submission(path), module_name="sub_test_import")
    assert "g" in namespace and any("ModuleNotFoundError" in e for e in errors)


# -- hostile sources: the grader never parses them itself, and never raises or stalls -------------------------

DEEP_SOURCES = {
    "parentheses": "(" * 5000,
    "unary minus": "x = " + "-" * 200_000 + "1",
    "long sum": "1+" * 300_000 + "1",
    "attribute chain": "x = a" + ".a" * 100_000,
    "rebuilt by unparse": "train(); x = " + "-" * 900 + "1",
    "nested defs": "".join("    " * i + f"def f{i}():\n" for i in range(120)) + "    " * 120 + "pass\n",
}


@pytest.mark.parametrize("name", DEEP_SOURCES)
def test_does_code_too_deep_for_the_parser_give_a_note_without_an_exception(write, name):
    path = write("deep.py", DEEP_SOURCES[name])
    start = time.monotonic()
    sub = load_submission(path)
    assert time.monotonic() - start < 10
    assert sub.cells == [] and len(sub.notes) == 1
    assert sub.notes[0].startswith("file: ") and "definitions are missing" in sub.notes[0]


def test_does_a_cell_too_deep_for_the_parser_cost_only_that_cell(write):
    path = write("nb.ipynb", notebook(("code", "x = " + "~" * 3000 + "1"), ("code", "def g():\n    return 2")))
    sub = load_submission(path)
    assert [c.label for c in sub.cells] == ["cell 2"]
    assert sub.notes == ["cell 1: the code is nested too deeply for Python's parser (RecursionError); "
                         "its definitions are missing"]


def test_is_a_notebook_whose_json_is_too_deep_reported(write):
    path = write("nb.ipynb", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(SubmissionFormatError, match="nested too deeply"):
        load_submission(path)


def test_is_a_file_over_the_size_limit_refused_without_being_parsed(tmp_path):
    path = tmp_path / "big.py"
    path.write_text("x = 1\n" * (MAX_SOURCE_BYTES // 6 + 1))
    start = time.monotonic()
    with pytest.raises(SubmissionFormatError, match="larger than 2 MiB"):
        load_submission(path)
    assert time.monotonic() - start < 1


def test_is_a_notebook_with_too_much_code_refused(write):
    path = write("nb.ipynb", notebook(*[("code", "x = 1\n" * 100_000)] * 4))
    with pytest.raises(SubmissionFormatError, match="MiB of code, over the limit"):
        load_submission(path)


def test_are_the_notes_of_a_notebook_of_broken_cells_capped(write):
    path = write("nb.ipynb", notebook(*[("code", "def f(:")] * 300))
    notes = load_submission(path).notes
    assert len(notes) == MAX_NOTES + 1 and notes[-1] == f"... and {300 - MAX_NOTES} more notes like these"


@pytest.mark.parametrize("script, message", [
    ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "killed by SIGSEGV"),
    ("while True:\n    pass\n", "took over 1 s to parse"),
])
def test_does_a_crash_or_a_hang_of_the_parser_become_a_format_error(write, tmp_path, monkeypatch, script, message):
    fake = tmp_path / "fake_filter.py"
    fake.write_text(script)
    monkeypatch.setattr(source, "_FILTER_SCRIPT", fake)
    monkeypatch.setattr(source, "READ_TIMEOUT", 1.0)
    with pytest.raises(SubmissionFormatError, match=message):
        load_submission(write("s.py", "def f():\n    return 1\n"))


def test_does_the_submission_name_only_the_file_not_the_tutors_path(write):
    path = write("alice.py", "def f():\n    return 1\n")
    sub = load_submission(path)
    assert sub.path == "alice.py" and str(path.parent).encode() not in encode(sub)


def test_does_reading_a_normal_file_stay_fast():
    load_submission(SOLUTION)  # warm the file cache
    times = []
    for _ in range(5):
        start = time.monotonic()
        load_submission(SOLUTION)
        times.append(time.monotonic() - start)
    assert sorted(times)[2] < 0.3, times


def test_is_a_notebook_read_as_one_whatever_the_case_of_its_suffix(write):
    cell = {"cell_type": "code", "execution_count": None, "id": "a", "metadata": {}, "outputs": [], "source": "x = 1\n"}
    text = json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    assert [c.code.strip() for c in load_submission(write("bob.IPYNB", text)).cells] == ["x = 1"]  # not "{...}"
