"""Is a submission read as definitions only, with problems reported instead of raised?"""

import json

import pytest

from autograder.source import SubmissionFormatError, filter_definitions, load_submission, namespace_from_source


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
