"""Does every sub-layer of a residual block apply dropout of its own?

One training-mode pair of calls that differ shows that dropout acts somewhere, not that each sub-layer has it: a
block whose ``dropout2`` is built but never called still gives two different outputs through ``dropout1``. Here
the grader silences every sub-layer but one (its drawn weights, with the contract's output layer of each other
sub-layer set to zero, so that it adds exactly 0 to the residual stream, dropped out or not) and calls the block
twice in training mode: the two outputs differ only if the sub-layer left speaking is dropped out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import CheckFailure
from ..context import Context, outputs
from ..param_map import map_params


@dataclass(frozen=True)
class SubLayer:
    """A residual sub-layer: how messages name it, the contract's entries of its output layer (zeroed to silence
    it), and the dropout module the contract applies to its output."""

    name: str  # e.g. "the feed-forward"
    output_entries: tuple[str, ...]  # e.g. ("ffn.2.weight", "ffn.2.bias")
    dropout: str  # e.g. "dropout2"


def silenced_state(ctx: Context, part: str, init_args: list, init_kwargs: dict, inputs: list, seed: int,
                   shapes: dict, entries: tuple[str, ...]) -> dict | None:
    """The weights the grader draws for this construction, with the submission's entries that hold the contract's
    ``entries`` set to zero; None when one of them has no whole entry of its own (fused with another role, or not
    found): that sub-layer cannot be silenced without touching another."""
    drawn = ctx.draw(part, init_args, init_kwargs, seed, inputs=inputs)
    meta = ctx.metadata(part, init_args, init_kwargs, inputs=inputs)
    mapping = map_params(drawn.params, meta.modules, shapes)
    copies: dict[int, np.ndarray] = {}  # one copy per array: a tensor registered under two names stays one
    for value in drawn.state.values():
        if id(value) not in copies:
            copies[id(value)] = np.array(value, copy=True)
    state = {name: copies[id(value)] for name, value in drawn.state.items()}
    for entry in entries:
        pieces = mapping.sources.get(entry)
        if pieces is None:
            return None
        for piece in pieces:  # () for a bias the submission built without: nothing to silence
            if piece.name not in state or piece.start != 0 or piece.stop not in (None, len(state[piece.name])):
                return None
            state[piece.name][...] = 0
    return state


def each_sublayer_drops_out(ctx: Context, part: str, what: str, init_args: list, init_kwargs: dict, inputs: list,
                            seed: int, shapes: dict, sublayers: tuple[SubLayer, ...], hint: str | None = None) -> None:
    """Fail when, with every sub-layer but one silenced, two training-mode calls give identical outputs: that
    sub-layer's output is not dropped out. A sub-layer is not judged where it cannot be silenced by its own
    entries, or where, the others silenced, it does not reach the output at all (in eval mode the output is the
    same with it silenced too: a block without its residual path), which the values checks charge."""
    def output(state: dict, mode: str, repeats: int = 1) -> list:
        reply = ctx.run(part, init_args=init_args, init_kwargs=init_kwargs, inputs=inputs, state=state,
                        repeats=repeats, mode=mode, seed=seed)
        return [outputs(reply, 1, what, r)[0] for r in range(repeats)]

    everything = tuple(e for sublayer in sublayers for e in sublayer.output_entries)
    all_silent = silenced_state(ctx, part, init_args, init_kwargs, inputs, seed, shapes, everything)
    if all_silent is None:
        return
    (nothing,) = output(all_silent, "eval")
    for speaking in sublayers:
        silent = tuple(e for other in sublayers if other is not speaking for e in other.output_entries)
        state = silenced_state(ctx, part, init_args, init_kwargs, inputs, seed, shapes, silent)
        if state is None or np.array_equal(output(state, "eval")[0], nothing, equal_nan=True):
            continue
        first, second = output(state, "train", repeats=2)
        if np.array_equal(first, second, equal_nan=True):
            others = ", ".join(other.name for other in sublayers if other is not speaking)
            raise CheckFailure(f"{what}: with {others} silenced (its output layer's weights set to 0), two training-"
                               f"mode calls give identical outputs: {speaking.name}'s output is not dropped out "
                               f"({speaking.dropout} built but not applied?)", hint=hint)
