"""What a check works with: the runner that reaches the submission, the device, and the training profile."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

import numpy as np

from .checks import CheckFailure
from .requests import Run


@dataclass
class Context:
    runner: object
    device: str = "cpu"
    profile: object = None  # exercises.TrainingProfile for this device
    timeout: float = 60.0  # the running check's budget for one request
    artifacts: dict = field(default_factory=dict)

    def request(self, request):
        return self.runner.request(request, self.timeout)

    def run(self, target: str, **kwargs):
        return self.request(Run(target=target, device=self.device, **kwargs))


def outputs(reply, count: int, what: str, repeat: int = 0) -> list[np.ndarray]:
    """The submission's outputs, after checking their type: ``count`` float32 tensors (1 = a bare tensor)."""
    expected = "Tensor" if count == 1 else f"tuple({', '.join(['Tensor'] * count)})"
    structure = reply.structure
    if structure != expected and not (count > 1 and structure == f"list({', '.join(['Tensor'] * count)})"):
        wanted = "a tensor" if count == 1 else f"a tuple of {count} tensors"
        raise CheckFailure(f"{what} should return {wanted}; it returned {structure or 'nothing'}")
    for i, dtype in enumerate(reply.dtypes):
        if dtype != "float32":
            raise CheckFailure(
                f"{what} returned a {dtype} tensor (output {i}); expected float32, the dtype of the inputs "
                "(a float64 constant or an integer tensor in the computation?)"
            )
    got = list(reply.outputs[repeat])
    for i, arr in enumerate(got):
        if not np.isfinite(arr).all():
            bad = "NaN" if np.isnan(arr).any() else "inf"
            which = f"output {i} of {what}" if count > 1 else what
            raise CheckFailure(f"{which} contains {bad} values (a row where every key is masked, an overflow, "
                               "or a softmax over the wrong axis?)")
    return got


# Added to every input seed of a grading run. 0 gives the same inputs every time; a random salt (the command
# line's default) gives inputs that no submission can have seen, so a table of cached answers cannot pass.
SALT: contextvars.ContextVar[int] = contextvars.ContextVar("salt", default=0)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, SALT.get()])


def randn(gen: np.random.Generator, *shape) -> np.ndarray:
    return gen.standard_normal(shape).astype(np.float32)
