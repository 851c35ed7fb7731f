"""Does the trajectory transformer exercise's grader give full marks to correct code (the reference and correct
code written differently), zero to the stub, and lose points (with the right named hint, in the mistaken part
only) for each known mistake?"""

from __future__ import annotations

import pytest

from conftest import ROOT, failed, grade_source_in_process, stub_source
from mistake_edits import Mutation, edit_problems, mutated_source
from mistake_edits.seq2seq import SEQ2SEQ, SEQ2SEQ_CHECK_BUGS, SEQ2SEQ_FROZEN, SEQ2SEQ_PREDICT_LOOP

from autograder.checks import Status
from autograder.exercises import get_exercise
from autograder.exercises import seq2seq as public  # noqa: F401 - the public module first: it loads the hidden one
from autograder.exercises.seq2seq import hidden
from autograder.exercises.seq2seq import reference as ref

SOLUTION = ROOT / "solutions" / "seq2seq.py"
EXERCISE = get_exercise("seq2seq")
TRAINING = {"model.training"}
KNOWN = SEQ2SEQ + SEQ2SEQ_CHECK_BUGS


def grade(text: str):
    return grade_source_in_process(text, exercise="seq2seq")


def test_are_the_mutations_edits_of_unique_lines_of_the_solution():
    assert not edit_problems(KNOWN + (SEQ2SEQ_FROZEN,), SOLUTION, [c.name for c in EXERCISE.checks])


def test_do_the_checks_add_up_to_100_with_training_20():
    assert sum(c.points for c in EXERCISE.checks) == 100
    assert sum(EXERCISE.check(name).points for name in TRAINING) == 20
    assert all(EXERCISE.check(name).hidden for name in TRAINING)
    assert [c.part for c in EXERCISE.checks] == sorted((c.part for c in EXERCISE.checks), key=EXERCISE.parts.index)
    assert {p.name for p in EXERCISE.contracts} == set(EXERCISE.parts)


def test_does_the_reference_pass_every_check():
    report = grade(SOLUTION.read_text())
    assert failed(report).keys() == TRAINING, {k: v.message for k, v in failed(report).items()}
    assert not report.grader_errors


def test_does_the_stub_score_zero_without_crashing():
    report = grade(stub_source(SOLUTION.read_text()))
    assert report.score == 0
    assert not report.grader_errors
    assert all(r.status in (Status.ERROR, Status.SKIPPED) for r in report.results), \
        {r.name: r.status for r in report.results if r.status not in (Status.ERROR, Status.SKIPPED)}


def test_do_the_switch_tables_name_every_mistake_of_the_reference():
    """Each wrong value of each switch of the float64 reference has its hint (and so a values check names it)."""
    ours = {**hidden.MASK_SWITCHES, **hidden.POSITION_SWITCHES, **hidden.DECODER_SWITCHES, **hidden.PREDICT_SWITCHES}
    theirs = {**ref.MASK_SWITCHES, **ref.POSITION_SWITCHES, **ref.DECODER_SWITCHES, **ref.PREDICT_SWITCHES}
    assert set(ours) == set(theirs)
    for switch, values in theirs.items():  # the parts' own, and the model's (no positions, no mask passed)
        named = {v for v, _ in ours[switch]} | {v for v, _ in hidden.MODEL_SWITCHES.get(switch, [])}
        assert named == set(values[1:]), switch
    assert set(hidden.ENCODER_SWITCHES) == set(ref.ENCODER_SWITCHES)
    assert set(hidden.MODEL_SWITCHES) == {"positions", "mask"}  # the model's own; the rest are its parts'


# --- correct code written differently -------------------------------------------------------------------------

MASK_BODY = ("    steps = torch.arange(size)\n"
             "    return steps[None, :] <= steps[:, None]  # (size, size): key position <= query position\n")
POSITIONS_BODY = (
    "    position = torch.arange(length, dtype=torch.float32)[:, None]  # (length, 1)\n"
    "    frequency = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim / 2,)\n"
    "    angles = position * frequency  # (length, dim / 2)\n"
    "    table = torch.stack([angles.sin(), angles.cos()], dim=-1)  # (length, dim / 2, 2): sin, cos of each frequency\n"
    "    return table.reshape(length, dim)  # (length, dim): sin on even columns, cos on odd\n")
PREDICT_BODY = SEQ2SEQ_PREDICT_LOOP

ALTERNATIVES = {
    "mask_by_torch_tril": ((MASK_BODY, "    return torch.tril(torch.ones(size, size, dtype=torch.bool))\n"),),
    "positions_in_log_space": ((POSITIONS_BODY, (
        "    import math\n"
        "    pe = torch.zeros(length, dim)\n"
        "    position = torch.arange(0, length, dtype=torch.float).unsqueeze(1)\n"
        "    div_term = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))\n"
        "    pe[:, 0::2] = torch.sin(position * div_term)\n"
        "    pe[:, 1::2] = torch.cos(position * div_term)\n"
        "    return pe\n")),),
    "predict_with_a_cache_of_decoder_inputs": ((PREDICT_BODY, (
        "        inputs = [source[:, -1:]]  # the decoder's inputs so far, one (B, 1, 2) per step\n"
        "        outputs = []\n"
        "        for _ in range(steps):\n"
        "            step = self.forward(source, torch.cat(inputs, dim=1))[:, -1:]  # (B, 1, 2)\n"
        "            outputs.append(step)\n"
        "            inputs.append(step)\n"
        "        return torch.cat(outputs, dim=1).detach()\n")),),
    "predict_preallocated_target_in": ((PREDICT_BODY, (
        "        B = source.shape[0]\n"
        "        target_in = source.new_zeros(B, steps, 2)  # (B, steps, 2), filled step by step\n"
        "        target_in[:, 0] = source[:, -1]\n"
        "        with torch.no_grad():\n"
        "            for t in range(steps):\n"
        "                out = self(source, target_in[:, : t + 1])  # (B, t + 1, 2)\n"
        "                if t + 1 < steps:\n"
        "                    target_in[:, t + 1] = out[:, -1]\n"
        "        return out\n")),),
    "decoder_by_nn_multihead_attention": (
        ("self.self_attn = MultiHeadAttention(embed_dim, num_heads)\n        self.cross_attn = MultiHeadAttention(embed_dim, num_heads)",
         "self.self_attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)\n"
         "        self.cross_attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)"),
        ("x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, self_mask)[0]))",
         "blocked = None if self_mask is None else ~torch.broadcast_to(self_mask, (x.shape[0], self.self_attn.num_heads, "
         "x.shape[1], x.shape[1])).reshape(-1, x.shape[1], x.shape[1])\n"
         "        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, attn_mask=blocked)[0]))"),
        ("attended, weights = self.cross_attn(x, memory, memory)",
         "attended, weights = self.cross_attn(x, memory, memory, average_attn_weights=False)"),
    ),
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_does_correct_code_written_differently_score_full_marks(name):
    report = grade(mutated_source(Mutation(name, ALTERNATIVES[name], ()), SOLUTION))
    assert failed(report).keys() == TRAINING, {k: v.message for k, v in failed(report).items()}


# --- the flawed demo sample --------------------------------------------------------------------------------------

def test_does_the_flawed_sample_lose_points_for_its_three_mistakes_only():
    report = grade((ROOT / "assignments" / "samples" / "seq2seq_flawed.py").read_text())
    lost = failed(report)
    assert set(lost) == TRAINING | {"positions.values", "shift.values", "model.predict", "model.predict_values"}
    hints = " ".join(r.hint or "" for r in lost.values())
    assert "swapped" in hints and "not shifted" in hints and "feeds back zeros" in hints


def test_is_nan_from_the_positions_not_explained_as_an_inverted_mask():
    """A frequency of 1 / (10000^(2i/dim) - 1) is infinite for i = 0, and position 0 times it is NaN: the positions'
    own values check names the cause; the model, judged with the grader's positions in their place
    (``autograder.stand_ins``), loses nothing for them, and no check blames the (right) mask."""
    source = SOLUTION.read_text()
    line = "    frequency = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim / 2,)\n"
    assert source.count(line) == 1
    source = source.replace(line, "    frequency = 1 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim) - 1)\n")
    lost = failed(grade_source_in_process(source, exercise="seq2seq"))
    assert "contains NaN values where the reference has none (position 0 times an infinite frequency" in lost[
        "positions.values"].message
    assert lost.keys() == {"positions.values", "model.training"}, {k: v.message for k, v in lost.items()}


@pytest.mark.parametrize("mask", ["(steps[None, :] <= steps[:, None]).to(torch.uint8)",
                                  "(steps[None, :] <= steps[:, None])[None]",
                                  "(steps[None, :] <= steps[:, None]).float()"],
                         ids=["uint8", "leading_1", "float_0_1"])
def test_does_a_mask_with_the_right_pattern_in_another_form_lose_the_interface_only(mask):
    """hyunwoongko's uint8 mask, Trajectory-Transformer's (1, S, S): judged on the pattern they mean, and the given
    attention reads them as nn.MultiheadAttention does, so the model loses nothing."""
    source = SOLUTION.read_text()
    line = "return steps[None, :] <= steps[:, None]"
    assert source.count(line) == 1
    lost = failed(grade_source_in_process(source.replace(line, f"return {mask}"), exercise="seq2seq"))
    assert lost.keys() == {"mask.interface", "model.training"}, {k: v.message for k, v in lost.items()}
    assert "expected torch.bool" in lost["mask.interface"].message or "leading 1s" in lost["mask.interface"].message


def test_is_an_all_zero_float_mask_a_wrong_mask_not_an_additive_one():
    """torch.zeros(size, size): an unfinished mask that allows nothing as 0/1, not PyTorch's additive form."""
    source = SOLUTION.read_text()
    line = "return steps[None, :] <= steps[:, None]"
    lost = failed(grade_source_in_process(source.replace(line, "return torch.zeros(size, size)"), exercise="seq2seq",
                                          names=["mask.interface", "mask.values"]))
    assert lost.keys() == {"mask.interface", "mask.values"}
    assert lost["mask.interface"].hint is None


# A part that computes a function no switch names, or crashes: the model built from it is judged with the grader's
# own part in its place (``autograder.stand_ins``), so it costs that part's own checks only.
FAILING_PARTS = {
    "positions_of_another_base": (("frequency = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)",
                                   "frequency = 1000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)"),
                                  {"positions.values"}),
    "mask_crashes": (("return steps[None, :] <= steps[:, None]", "raise ValueError('no mask today')"),
                     {"mask.interface", "mask.values"}),
    "given_attention_scaled": (("return output.transpose(0, 1), weights  # (B, Tq, E), (B, H, Tq, Tk)",
                                "return output.transpose(0, 1) * 1.2, weights  # (B, Tq, E), (B, H, Tq, Tk)"),
                               {"decoder.attention_module"}),
}


@pytest.mark.parametrize("name", sorted(FAILING_PARTS))
def test_does_a_failing_part_cost_only_its_own_checks(name):
    (old, new), charged = FAILING_PARTS[name]
    text = SOLUTION.read_text()
    assert text.count(old) == 1
    lost = failed(grade(text.replace(old, new)))
    assert lost.keys() == TRAINING | charged, {k: v.message for k, v in lost.items()}


def test_is_the_model_judged_with_the_given_attention_in_place_whatever_mask_form_it_passes():
    """An additive float causal mask (0 and -inf, the interface's only charge) read by the grader's attention as the
    given one reads it: the model keeps its points beside a failing attention."""
    text = SOLUTION.read_text()
    (old, new), _ = FAILING_PARTS["given_attention_scaled"]
    mask = "return steps[None, :] <= steps[:, None]"
    additive = "return torch.zeros(size, size).masked_fill(steps[None, :] > steps[:, None], float('-inf'))"
    assert text.count(old) == 1 and text.count(mask) == 1
    lost = failed(grade(text.replace(old, new).replace(mask, additive)))
    assert lost.keys() == TRAINING | {"mask.interface", "decoder.attention_module"}, {k: v.message for k, v in lost.items()}
