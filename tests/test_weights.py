"""Are the weights behind every values check the grader's own: drawn in the parent, per module type, loaded
into the submission, and the only ones any reference sees?"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn as nn

from autograder.context import SALT, Context
from autograder.exercises import Exercise
from autograder.checks import Check
from autograder.grading import run_checks
from autograder.requests import RunReply, Train, TrainReply
from autograder.runner import InProcessRunner
from autograder.weights import DEFAULT_RULES, WeightRule, normal, recurrent_uniform


class Everything(nn.Module):
    """One module of each kind the default table names, a recurrent layer an exercise's table adds, and a buffer
    no table names."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(40, 30)
        self.norm = nn.LayerNorm(30)
        self.embedding = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.register_buffer("table", torch.arange(5, dtype=torch.float32))

    def forward(self, x):
        return self.norm(self.linear(x)) + self.table.sum()


def everything_context() -> Context:
    return Context(runner=InProcessRunner({"Everything": Everything}))


def run_everything(ctx: Context, seed: int = 0, **kw) -> RunReply:
    x = np.ones((2, 40), dtype=np.float32)
    return ctx.run("Everything", init_args=[], inputs=[x], seed=seed, **kw)


class LyingRunner:
    """A child that reports weights of all ones, whatever it was sent, and records the requests."""

    def __init__(self):
        self.requests = []

    def request(self, request, timeout):
        self.requests.append(request)
        return RunReply(params={"w": np.ones((3, 4), dtype=np.float32), "b": np.ones(3, dtype=np.float32)},
                        modules={"": {"type": "Linear"}}, outputs=[[np.zeros(3, dtype=np.float32)]],
                        structure="Tensor", dtypes=["float32"])


def test_are_the_childs_reported_weights_replaced_by_the_drawn_ones():
    runner = LyingRunner()
    reply = Context(runner=runner).run("Layer", init_args=[4, 3], inputs=[np.zeros(4, dtype=np.float32)])
    metadata, run = runner.requests
    assert not metadata.call and run.call
    assert set(reply.params) == {"w", "b"}
    for name, value in reply.params.items():
        assert value.dtype == torch.float64
        assert torch.equal(value, torch.from_numpy(run.state[name].astype(np.float64)))  # exactly what was sent
        assert not torch.equal(value, torch.ones_like(value))  # never the child's echo


def test_are_the_weights_fixed_by_construction_seed_and_salt_only():
    ctx = everything_context()
    first, again = run_everything(ctx).params, run_everything(ctx).params
    other_seed = run_everything(ctx, seed=1).params
    token = SALT.set(12345)
    try:
        other_salt = run_everything(ctx).params
    finally:
        SALT.reset(token)
    assert all(torch.equal(first[k], again[k]) for k in first)  # e.g. the two runs of a padding check
    assert not torch.equal(first["linear.weight"], other_seed["linear.weight"])
    assert not torch.equal(first["linear.weight"], other_salt["linear.weight"])


def test_does_each_module_type_get_its_tables_draw():
    ctx = everything_context()
    ctx.weight_rules = DEFAULT_RULES.extend(WeightRule("LSTM", "*", recurrent_uniform(4)))  # as attention_rnn's
    params = run_everything(ctx).params
    weight, bias = params["linear.weight"], params["linear.bias"]
    assert abs(float(weight.std()) - 40 ** -0.5) < 0.03  # N(0, 1/fan_in)
    assert (bias.abs() >= 0.1).all() and (bias.abs() <= 0.5).all() and (bias > 0).any() and (bias < 0).any()
    assert abs(float(params["norm.weight"].mean()) - 1.0) < 0.15 and float(params["norm.bias"].abs().max()) < 1.0
    assert abs(float(params["embedding.weight"].std()) - 1.0) < 0.15
    lstm = [v for k, v in params.items() if k.startswith("lstm.")]
    assert len(lstm) == 4 and all(float(v.abs().max()) <= 16 ** -0.5 for v in lstm)


def expected_output(params: dict, buffer_sum: float) -> torch.Tensor:
    """Everything.forward on ones, in float64, from the drawn weights."""
    x = torch.ones(2, 40, dtype=torch.float64)
    h = x @ params["linear.weight"].T + params["linear.bias"]  # (2, 30)
    return torch.nn.functional.layer_norm(h, (30,), params["norm.weight"], params["norm.bias"]) + buffer_sum


def test_is_a_buffer_the_table_does_not_name_left_alone_and_unused():
    reply = run_everything(everything_context())
    assert "table" not in reply.params  # no reference can use it
    got = torch.from_numpy(reply.outputs[0][0]).double()
    assert torch.allclose(got, expected_output(reply.params, buffer_sum=10.0), atol=1e-4)  # 0 + 1 + 2 + 3 + 4


def test_does_opting_out_keep_the_modules_own_weights_and_expose_none():
    ctx = everything_context()
    reply = run_everything(ctx, draw_weights=False)
    assert reply.params == {}
    drawn = run_everything(ctx)
    assert not np.allclose(reply.outputs[0][0], drawn.outputs[0][0])


def test_can_an_exercise_extend_the_table():
    seen = []
    wide = DEFAULT_RULES.extend(WeightRule("Linear", "weight", normal(0.0, 5.0)))
    check = Check("x.values", "Everything", 1, "d", lambda ctx: seen.append(run_everything(ctx).params))
    exercise = Exercise(name="x", title="x", number=99, parts=("Everything",), checks=(check,), weight_rules=wide)
    report = run_checks(InProcessRunner({"Everything": Everything}), exercise, exercise.checks, device="cpu")
    assert report.score == 1
    assert abs(float(seen[0]["linear.weight"].std()) - 5.0) < 0.5
    assert everything_context().weight_rules is DEFAULT_RULES  # other contexts keep the default table


def test_does_the_training_request_carry_the_training_split_only_and_bring_back_weights():
    sent = {f.name for f in dataclasses.fields(Train)}
    assert {"inputs", "targets"} <= sent and not {"x_test", "y_test", "test_inputs", "test_targets"} & sent
    assert "state" in {f.name for f in dataclasses.fields(TrainReply)}
    assert not {"predictions", "accuracy"} & {f.name for f in dataclasses.fields(TrainReply)}


def test_is_a_tensor_registered_under_two_names_drawn_once():
    """One module under two names (``self.mlp = nn.Sequential(self.fc1, ...)``): the child reports the alias, the
    parent draws the tensor once and sends it under both names, so whichever the child loads last, the values are
    the reference's."""
    from autograder.protocol import decode, encode
    from autograder.requests import Run, execute
    from autograder.weights import DEFAULT_RULES, draw_weights

    class Aliased(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(3, 4)
            self.mlp = nn.Sequential(self.fc1, nn.ReLU())

    reply = execute(Run(target="Aliased", init_args=[], call=False), {"Aliased": Aliased})
    assert reply.aliases == {"mlp.0.weight": "fc1.weight", "mlp.0.bias": "fc1.bias"}
    assert decode(encode(reply)).aliases == reply.aliases
    drawn = draw_weights(reply, DEFAULT_RULES, "Aliased", seed=0, salt=0)
    assert np.array_equal(drawn.state["mlp.0.weight"], drawn.state["fc1.weight"])
    assert torch.equal(drawn.params["mlp.0.bias"], drawn.params["fc1.bias"])


def test_is_a_module_holding_a_huge_state_refused_with_a_message():
    """Descriptions are kept for the whole grading: one holding more than MAX_STATE_BYTES fails its check, so that
    ballast cannot exhaust the grader's memory."""
    import pytest

    from autograder.checks import CheckFailure
    from autograder.context import MAX_STATE_BYTES, Context

    class Ballast(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("ballast", torch.zeros(MAX_STATE_BYTES // 4 + 1))

    ctx = Context(runner=InProcessRunner({"Ballast": Ballast}))
    with pytest.raises(CheckFailure, match="MiB of parameters and buffers"):
        ctx.metadata("Ballast", [])
