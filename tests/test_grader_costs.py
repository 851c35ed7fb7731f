"""Does what a hostile submission sends cost the grader only bounded time and memory, and that student only?

Each submission is graded by the command line in a process of its own, under the real sandbox, and that process
measures its own CPU time and peak memory (the confined child's are the submission's to spend, within its limits).
Every case must exit 0 with a complete report, keep the points its correct parts earn, and stay within the bounds
below: a correct submission's grading takes about 5 s of the grader's CPU and 380 MiB here; before these bounds,
the same attacks took minutes and several GiB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

from conftest import ROOT
from edits import BLOCK_FORWARD, with_code

from autograder.exercises import get_exercise

pytestmark = pytest.mark.slow

EXERCISE = get_exercise("transformer")
CPU_SECONDS = 60.0  # the grader's own CPU time for one grading, whatever the submission sends
PEAK_MIB = 1536  # the grader's own peak resident memory
BLOCK_PARTS = {"TransformerBlock", "TransformerClassifier"}  # the block, and the classifier built on it

MEASURED = """
import json, resource, sys
from autograder.cli import main
code = main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)  # this process only: the confined child is another
print("MEASURED " + json.dumps({"exit": code, "cpu_s": usage.ru_utime + usage.ru_stime,
                                "peak_mib": usage.ru_maxrss / 1024}), file=sys.stderr)
sys.exit(code)
"""


@dataclass
class Graded:
    exit: int
    cpu_s: float
    peak_mib: float
    score: float
    tests: dict  # check name -> (score, max_score, output)
    report_bytes: int


def graded(tmp_path, source: str, *, training: bool = False, name: str = "submission.py") -> Graded:
    path, out = tmp_path / name, tmp_path / "results.json"
    path.write_text(source)
    command = [sys.executable, "-c", MEASURED, "grade", str(path), "--exercise", EXERCISE.name, "--seed", "0",
               "--format", "gradescope", "--output", str(out), *([] if training else ["--skip-training"])]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    line = next((x for x in proc.stderr.splitlines() if x.startswith("MEASURED ")), None)
    assert line is not None, proc.stderr[-3000:]
    measured = json.loads(line.removeprefix("MEASURED "))
    results = json.loads(out.read_text())
    tests = {t["name"].split(":")[0].split(" ")[0]: (t["score"], t["max_score"], t.get("output", "")) for t in results["tests"]}
    return Graded(exit=proc.returncode, cpu_s=measured["cpu_s"], peak_mib=measured["peak_mib"],
                  score=results["score"], tests=tests, report_bytes=out.stat().st_size)


def check_bounded(result: Graded) -> None:
    assert result.exit == 0
    assert len(result.tests) == len(EXERCISE.checks), "the report must list every check"
    assert result.cpu_s < CPU_SECONDS, f"the grader spent {result.cpu_s:.0f} s of CPU"
    assert result.peak_mib < PEAK_MIB, f"the grader peaked at {result.peak_mib:.0f} MiB"
    assert result.report_bytes < 256 << 10, f"a report of {result.report_bytes} bytes"


def lost(result: Graded) -> dict:
    """Check name -> its output, for the checks that lost points (the training check, skipped, left out)."""
    return {name: output for name, (score, top, output) in result.tests.items()
            if score < top and "skipped" not in output}


def part_of(check: str) -> str:
    return EXERCISE.check(check).part


# The child trains with the fit its request module bound before the submission loaded: a submission that finds
# that module under a name no scan can read replaces it there (what the parent then receives is what is tested).
REACH_TRAINING = """
import sys as _sys
_requests = _sys.modules["".join(reversed("stseuqer.redargotua"))]
"""


def in_class_body(*code: str) -> str:
    """Code run when the submission is loaded (class bodies run; module-level calls are dropped)."""
    body = "".join(textwrap.dedent(c) for c in code)
    return "\n\nclass _Hostile:\n" + textwrap.indent(body, "    ") + "\n"


def test_is_a_megabyte_of_crafted_source_read_in_bounded_time(tmp_path, solution_text):
    """About 1 MB of deeply nested calls, beyond the scan's syntax-node budget: refused as unreadable."""
    nested = "    x = " + "f(" * 180 + "1" + ")" * 180 + "\n"
    source = solution_text + "\n\ndef _unused(f):\n" + nested * (1_000_000 // len(nested))
    result = graded(tmp_path, source)
    check_bounded(result)
    assert result.score == 0 and all("too large for the grader to read" in o for o in lost(result).values())


def test_is_a_megabyte_of_plain_source_read_and_graded(tmp_path, solution_text):
    """About 1 MB of small functions, within the budget: read, and the solution keeps its points."""
    many = "".join(f"def _helper{i}(a, b=getattr):\n    return b(a, 'x{i}')\n" for i in range(22_000))
    result = graded(tmp_path, solution_text + "\n\n" + many)
    check_bounded(result)
    assert not lost(result), lost(result)


def test_does_a_block_with_five_thousand_state_entries_cost_only_the_block(tmp_path, solution_text):
    """Mapping names onto the contract costs the square of the entries: a description is refused beyond 4,096
    (14,000 cost tens of seconds per check before)."""
    padding = "for i in range(5_000):\n    self.register_buffer(f'pad{i}', torch.zeros(1))"
    init = "        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)\n"
    result = graded(tmp_path, with_code(solution_text, init, textwrap.indent(padding, "        ").strip()))
    check_bounded(result)
    failed = lost(result)
    assert failed and {part_of(name) for name in failed} <= BLOCK_PARTS, failed
    assert any("4096" in output for output in failed.values()), failed


def test_do_large_descriptions_stay_within_the_graders_memory(tmp_path, solution_text):
    """Every block carries an 80 MiB buffer: a description holds at most 64 MiB, and 256 MiB of them are kept."""
    init = "        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)\n"
    result = graded(tmp_path, with_code(solution_text, init,
                                        "self.register_buffer('ballast', torch.ones(20 << 20), persistent=True)"))
    check_bounded(result)
    assert {part_of(name) for name in lost(result)} <= BLOCK_PARTS, lost(result)


def test_does_a_state_entry_with_a_fifty_thousand_level_name_cost_only_its_part(tmp_path, solution_text):
    """Mapping names costs each name's levels times its length: a name beyond 256 characters or 32 levels is
    refused (the embedding adds one to its state and drops it again when loading)."""
    anchor = "        return self.token_emb(tokens) + self.pos_emb(positions)  # (B, T, E)\n"
    trick = textwrap.indent(textwrap.dedent("""

        def state_dict(self, *args, **kwargs):
            out = super().state_dict(*args, **kwargs)
            if not args and not kwargs.get("prefix"):
                out["m." * 50_000 + "w"] = torch.zeros(1)
            return out

        def load_state_dict(self, state_dict, strict=True, assign=False):
            kept = {k: v for k, v in state_dict.items() if not k.startswith("m.m.")}
            return super().load_state_dict(kept, strict=False)
    """), "    ")
    assert anchor in solution_text
    result = graded(tmp_path, solution_text.replace(anchor, anchor + trick, 1))
    check_bounded(result)
    failed = lost(result)
    assert failed and {part_of(name) for name in failed} <= {"TokenAndPositionEmbedding"}, failed
    assert any("256 characters and 32 levels" in output for output in failed.values()), failed


def test_do_huge_replies_cost_the_grader_a_bounded_read(tmp_path, solution_text):
    """Every call of the attention function returns an extra 270 MB tensor: refused before it is read (a reply
    is at most 256 MiB, a grading's replies 2 GiB in all; the protocol's own limit was 1 GiB)."""
    source = solution_text.replace("    return output, weights\n", "    return output, weights, torch.zeros(67_500_000)\n", 1)
    source = source.replace("y, weights = scaled_dot_product_attention(q, k, v, mask)",
                            "y, weights, _ = scaled_dot_product_attention(q, k, v, mask)", 1)
    assert source.count("torch.zeros(67_500_000)") == 1 and "y, weights, _ =" in source
    result = graded(tmp_path, source)
    check_bounded(result)
    assert "over the grader's limit of 256 MiB" in json.dumps(result.tests)


def test_is_a_trained_state_of_another_shape_refused_before_it_is_scored(tmp_path, solution_text):
    """The child's training hands back layers 32 times wider than the model it built: refused, not scored."""
    hostile = in_class_body(REACH_TRAINING, """
        def _fit(model, *args, **kwargs):
            import autograder.training as _training
            import torch as _torch
            for layer in model.modules():
                if isinstance(layer, _torch.nn.Linear):
                    layer.weight.data = _torch.zeros(layer.out_features * 32, layer.in_features * 32)
            return _training.History(epoch_losses=[0.0], step_losses=[0.0])
        _requests.fit = _fit
    """)
    result = graded(tmp_path, solution_text + hostile, training=True)
    check_bounded(result)
    failed = lost(result)
    assert set(failed) == {"clf.training"}, failed
    assert "has shape" in failed["clf.training"], failed


def test_are_the_losses_a_child_reports_capped(tmp_path, solution_text):
    """15,000 reported losses (huge, text with escapes, an integer no float holds): the report shows one per epoch,
    as numbers."""
    hostile = in_class_body(REACH_TRAINING, """
        def _fit(model, *args, **kwargs):
            import autograder.training as _training
            return _training.History(epoch_losses=[1e308, "\\x1b[2J", 10 ** 400] * 5_000, step_losses=[0.0] * 10)
        _requests.fit = _fit
    """)
    result = graded(tmp_path, solution_text + hostile, training=True)
    check_bounded(result)
    failed = lost(result)
    assert set(failed) == {"clf.training"}, failed
    shown = failed["clf.training"]
    reported = shown.rsplit("per epoch: ", 1)[-1]  # one number per epoch of the profile, never the text sent
    assert "\x1b" not in shown and reported.startswith("[1e+308, nan") and reported.count(",") < 10, shown


def test_are_four_thousand_load_errors_a_short_list_of_notes(tmp_path, solution_text):
    """A notebook of 4,000 cells that fail at load (a notebook may have 5,000), then the solution: a few notes
    and a count, and full marks."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
              "source": f"class _Broken{i}:\n    1 / 0\n"} for i in range(4_000)]
    cells.append({"cell_type": "code", "execution_count": None, "id": "solution", "metadata": {}, "outputs": [],
                  "source": solution_text})
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    result = graded(tmp_path, json.dumps(notebook), name="submission.ipynb")
    check_bounded(result)
    assert not lost(result), lost(result)
    notes = json.loads((tmp_path / "results.json").read_text())["output"].splitlines()
    assert len(notes) <= 25 and "more errors while loading your code" in notes[-1], notes[-3:]
