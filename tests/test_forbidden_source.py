"""Does the parent's static reading of a submission catch the built-ins it must not use, and the switches that
would blind the runtime watch, without flagging ordinary PyTorch code?"""

from __future__ import annotations

import re
import textwrap
import time
from importlib import import_module
from pathlib import Path

import pytest

from autograder.exercises import get_exercise
from autograder.forbidden import (
    ATTENTION_BUILTINS, DEFAULT_FORBIDDEN, FORBIDDEN_FUNCTIONS, FORBIDDEN_MODULES, FORBIDDEN_OPS, Forbidden,
)
from autograder.forbidden_source import BYPASS_KIND, BYPASSES, FORBIDDEN_KIND, SourceFinding, scan_source
from autograder.source import SourceCell, load_submission

ROOT = Path(__file__).resolve().parents[1]
# The transformer exercise's parts (``get_exercise("transformer").parts``, used as such for the repository's files).
PARTS = ("scaled_dot_product_attention", "MultiHeadAttention", "TransformerBlock", "TokenAndPositionEmbedding",
         "TransformerClassifier")
SDPA = "torch.nn.functional.scaled_dot_product_attention"


def scan(code: str, parts=PARTS, **kw) -> list[SourceFinding]:
    return scan_source([SourceCell(code=textwrap.dedent(code), label="file")], parts, **kw)


def only(findings: list[SourceFinding]) -> SourceFinding:
    assert len(findings) == 1, findings
    return findings[0]


# --- forbidden built-ins ------------------------------------------------------------------------------------

def test_does_the_scan_catch_a_direct_call_and_name_its_part_and_line():
    finding = only(scan('''
        import torch.nn.functional as F

        def scaled_dot_product_attention(query, key, value, mask=None):
            """Uses F.scaled_dot_product_attention? No: the docstring does not count."""
            # F.scaled_dot_product_attention in a comment does not count either
            return F.scaled_dot_product_attention(query, key, value), None
    '''))
    assert (finding.part, finding.line, finding.kind) == ("scaled_dot_product_attention", 7, FORBIDDEN_KIND)
    assert finding.shown == SDPA
    assert finding.message == f"uses {SDPA} (line 7): this exercise asks you to write it yourself"


BUILT_IN_ROUTES = {
    "full path in a method": ("MultiHeadAttention", "torch.nn.functional.multi_head_attention_forward", '''
        import torch
        class MultiHeadAttention(torch.nn.Module):
            def forward(self, q, k, v, mask=None):
                return torch.nn.functional.multi_head_attention_forward(q, k, v)
    '''),
    "built-in layer in __init__": ("MultiHeadAttention", "torch.nn.MultiheadAttention", '''
        from torch import nn
        class MultiHeadAttention(nn.Module):
            def __init__(self, embed_dim, num_heads):
                super().__init__()
                self.inner = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
    '''),
    "encoder layer": ("TransformerBlock", "torch.nn.TransformerEncoderLayer", '''
        import torch
        class TransformerBlock(torch.nn.Module):
            def __init__(self, embed_dim, num_heads, ff_dim, dropout=0.1):
                super().__init__()
                self.layer = torch.nn.TransformerEncoderLayer(embed_dim, num_heads, ff_dim, dropout)
    '''),
    "private native op": ("MultiHeadAttention", "torch._native_multi_head_attention", '''
        import torch
        class MultiHeadAttention(torch.nn.Module):
            def forward(self, q, k, v, mask=None):
                return torch._native_multi_head_attention(q, k, v)
    '''),
    "aten op": ("scaled_dot_product_attention", SDPA, '''
        import torch
        def scaled_dot_product_attention(q, k, v, mask=None):
            return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v)[0], None
    '''),
    "torch._C route": ("scaled_dot_product_attention", SDPA, '''
        import torch
        def scaled_dot_product_attention(q, k, v, mask=None):
            return torch._C._nn.scaled_dot_product_attention(q, k, v), None
    '''),
    "importlib": ("scaled_dot_product_attention", SDPA, '''
        import importlib
        def scaled_dot_product_attention(q, k, v, mask=None):
            return importlib.import_module("torch.nn.functional").scaled_dot_product_attention(q, k, v), None
    '''),
}


@pytest.mark.parametrize("route", sorted(BUILT_IN_ROUTES))
def test_does_the_scan_catch_each_route_to_a_built_in_and_attribute_it_to_its_part(route):
    part, shown, code = BUILT_IN_ROUTES[route]
    finding = only(scan(code))
    assert (finding.part, finding.shown, finding.kind) == (part, shown, FORBIDDEN_KIND)


@pytest.mark.parametrize("line", [
    "from torch.nn.functional import scaled_dot_product_attention",
    "from torch.nn.functional import scaled_dot_product_attention as fast",
    "from torch.nn import MultiheadAttention as Attention",
    "from torch._C._nn import scaled_dot_product_attention as fast",
])
def test_does_the_scan_catch_a_from_import_at_module_level_against_every_part(line):
    finding = only(scan(line + "\n"))
    assert finding.part is None and finding.line == 1 and finding.kind == FORBIDDEN_KIND
    assert all(finding.concerns(part) for part in PARTS)


def test_does_the_scan_attribute_an_import_inside_a_part_to_that_part():
    finding = only(scan('''
        def scaled_dot_product_attention(q, k, v, mask=None):
            from torch.nn.functional import scaled_dot_product_attention as fast
            return fast(q, k, v), None
    '''))
    assert finding.part == "scaled_dot_product_attention" and finding.line == 3
    assert finding.concerns("scaled_dot_product_attention") and not finding.concerns("MultiHeadAttention")


def test_does_a_helper_outside_the_parts_count_against_every_part():
    finding = only(scan('''
        import torch.nn.functional as F

        def _fast(q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

        def scaled_dot_product_attention(q, k, v, mask=None):
            return _fast(q, k, v), None
    '''))
    assert finding.part is None and finding.line == 5


def test_does_the_scan_catch_a_built_in_through_a_star_import():
    finding = only(scan('''
        from torch.nn import *

        class MultiHeadAttention(Module):
            def __init__(self, embed_dim, num_heads):
                super().__init__()
                self.inner = MultiheadAttention(embed_dim, num_heads)
    '''))
    assert finding.part == "MultiHeadAttention" and finding.shown == "torch.nn.MultiheadAttention"


STRING_ROUTES = {
    "getattr": 'return getattr(F, "scaled_dot_product_attention")(q, k, v), None',
    "__dict__": 'return F.__dict__["scaled_dot_product_attention"](q, k, v), None',
    "vars": 'return vars(F)["scaled_dot_product_attention"](q, k, v), None',
    "attrgetter with a dotted path":
        'return operator.attrgetter("nn.functional.scaled_dot_product_attention")(torch)(q, k, v), None',
    "concatenation": 'return getattr(F, "scaled_dot_" + "product_attention")(q, k, v), None',
    "concatenation after a variable":
        'return getattr(F, q.dtype.__str__()[:0] + "scaled_dot_" + "product_attention")(q, k, v), None',
    "join": 'return getattr(F, "_".join(["scaled", "dot", "product", "attention"]))(q, k, v), None',
    "f-string": 'return getattr(F, f"{\'scaled_dot\'}_product_attention")(q, k, v), None',
    "padded with spaces": 'return getattr(F, " scaled_dot_product_attention ".strip())(q, k, v), None',
}


@pytest.mark.parametrize("route", sorted(STRING_ROUTES))
def test_does_the_scan_catch_a_built_in_reached_by_a_string(route):
    findings = scan(f'''
import operator
import torch
import torch.nn.functional as F

def scaled_dot_product_attention(q, k, v, mask=None):
    {STRING_ROUTES[route]}
''')
    assert findings and {(f.part, f.line, f.shown) for f in findings} == {("scaled_dot_product_attention", 7, SDPA)}
    assert "in a string" in findings[0].message


def test_does_the_scan_leave_a_label_that_names_a_built_in_alone():
    """A string names a built-in only where it can reach it (a call's argument, a subscript). A label kept in
    a constant is not flagged; a constant later given to getattr is left to the runtime watch, which sees the
    call itself (tests/test_redteam.py)."""
    assert scan('''
        import torch.nn.functional as F
        MODEL = "Transformer"
        NAME = "scaled_dot_product_attention"

        def scaled_dot_product_attention(q, k, v, mask=None):
            return getattr(F, NAME)(q, k, v), None
    ''') == []


# --- switches that blind the runtime watch ----------------------------------------------------------------

BYPASS_ROUTES = {
    "DisableTorchFunction": ("torch._C.DisableTorchFunction", '''
        with torch._C.DisableTorchFunction():
            return F.softmax(q, -1), None'''),
    "DisableTorchFunctionSubclass": ("torch._C.DisableTorchFunctionSubclass", '''
        with torch._C.DisableTorchFunctionSubclass():
            return F.softmax(q, -1), None'''),
    "dispatch off": ("torch._C._DisableTorchDispatch", '''
        with torch._C._DisableTorchDispatch():
            return F.softmax(q, -1), None'''),
    "disable current dispatch modes": ("torch.utils._python_dispatch._disable_current_modes", '''
        from torch.utils._python_dispatch import _disable_current_modes
        with _disable_current_modes():
            return F.softmax(q, -1), None'''),
    "pop a function mode": ("torch.overrides._pop_mode", '''
        torch.overrides._pop_mode()
        return F.softmax(q, -1), None'''),
    "pop the function stack": ("torch._C._pop_torch_function_stack", '''
        mode = torch._C._pop_torch_function_stack()
        return F.softmax(q, -1), None'''),
    "function state": ("torch._C._set_torch_function_state", '''
        torch._C._set_torch_function_state(0)
        return F.softmax(q, -1), None'''),
    "exclude the Python dispatch key": ("torch._C._ExcludeDispatchKeyGuard", '''
        keys = torch._C.DispatchKeySet(torch._C.DispatchKey.Python)
        with torch._C._ExcludeDispatchKeyGuard(keys):
            return F.softmax(q, -1), None'''),
    "getattr with a string": ("torch._C.DisableTorchFunction", '''
        with getattr(torch._C, "DisableTorchFunction")():
            return F.softmax(q, -1), None'''),
    "getattr with a concatenation": ("torch._C.DisableTorchFunction", '''
        with getattr(__import__("torch")._C, "Disable" + "TorchFunction")():
            return F.softmax(q, -1), None'''),
    "__import__ with a fromlist": ("torch.utils._python_dispatch._pop_mode", '''
        __import__("torch.utils._python_dispatch", fromlist=["_pop_mode"])._pop_mode()
        return F.softmax(q, -1), None'''),
    "importlib and a dotted string": ("torch.overrides._pop_mode", '''
        module, name = "torch.overrides._pop_mode".rsplit(".", 1)
        getattr(importlib.import_module(module), name)()
        return F.softmax(q, -1), None'''),
    "exec of a constant code string": ("torch._C.DisableTorchFunction", '''
        exec("import torch\\nwith torch._C.DisableTorchFunction():\\n    pass")
        return F.softmax(q, -1), None'''),
    "eval of a dotted path": ("torch._C.DisableTorchFunction", '''
        with eval("torch._C.DisableTorchFunction")():
            return F.softmax(q, -1), None'''),
    "the grader's log": ("autograder.forbidden", '''
        sys.modules["autograder.forbidden"].CallLog.add = lambda self, name: None
        return F.softmax(q, -1), None'''),
}


@pytest.mark.parametrize("route", sorted(BYPASS_ROUTES))
def test_does_the_scan_catch_each_way_of_switching_the_watch_off(route):
    shown, body = BYPASS_ROUTES[route]
    code = (
        "import importlib\nimport sys\nimport torch\nimport torch.nn.functional as F\n\n"
        "def scaled_dot_product_attention(q, k, v, mask=None):" + textwrap.indent(textwrap.dedent(body), "    ") + "\n"
    )
    findings = scan(code)
    assert findings and all(f.kind == BYPASS_KIND and f.part == "scaled_dot_product_attention" for f in findings)
    assert shown in {f.shown for f in findings}
    assert all(f.message.endswith("the grader cannot then see which built-ins you call") for f in findings)


def test_is_the_message_for_a_switch_the_one_a_student_should_read():
    finding = only(scan('''
        import torch

        with_modes_off = torch._C.DisableTorchFunction
    '''))
    assert finding.part is None and finding.line == 4
    assert finding.message == ("switches off PyTorch's function modes (torch._C.DisableTorchFunction, line 4): "
                               "the grader cannot then see which built-ins you call")


def test_does_the_message_name_the_module_the_switch_came_from():
    findings = scan('''
        import torch.utils._python_dispatch as pd

        class TransformerBlock:
            def forward(self, x):
                with pd._pop_mode_temporarily():
                    return x
    ''')
    shown = "torch.utils._python_dispatch._pop_mode_temporarily"
    assert [(f.part, f.shown) for f in findings] == [("TransformerBlock", shown)]


def test_does_the_scan_catch_a_switch_bound_by_a_star_import():
    finding = only(scan('''
        from torch._C import *

        def scaled_dot_product_attention(q, k, v, mask=None):
            with DisableTorchFunction():
                return q, None
    '''))
    assert finding.part == "scaled_dot_product_attention" and finding.shown == "torch._C.DisableTorchFunction"


@pytest.mark.parametrize("line", [
    "from autograder.forbidden import CallLog",
    "from autograder import forbidden",
    "import autograder.requests",
    "import autograder; autograder.forbidden.FORBIDDEN_FUNCTIONS.clear()",
])
def test_does_the_scan_catch_a_reach_into_the_grader_s_watch(line):
    findings = scan(line + "\n")
    assert findings and all(f.kind == BYPASS_KIND and f.part is None for f in findings)


# --- what must not be flagged -------------------------------------------------------------------------------

LEGITIMATE = {
    "own function named like the built-in, defined and called": '''
        import torch
        def scaled_dot_product_attention(query, key, value, mask=None):
            weights = torch.softmax(query @ key.transpose(-2, -1), -1)
            return weights @ value, weights
        class MultiHeadAttention(torch.nn.Module):
            def forward(self, q, k, v, mask=None):
                return scaled_dot_product_attention(q, k, v, mask)
    ''',
    "own method named like the built-in": '''
        import torch.nn as nn
        class MultiHeadAttention(nn.Module):
            def scaled_dot_product_attention(self, q, k, v):
                return q
            def forward(self, q, k, v, mask=None):
                return self.scaled_dot_product_attention(q, k, v), None
    ''',
    "docstrings and comments naming the built-ins": '''
        """Unlike F.scaled_dot_product_attention or nn.MultiheadAttention, this is written by hand.

        torch._C.DisableTorchFunction is not used.
        """
        import torch.nn.functional as F  # not F.scaled_dot_product_attention
        def scaled_dot_product_attention(q, k, v, mask=None):
            """Like torch.nn.functional.scaled_dot_product_attention.

            "scaled_dot_product_attention"
            """
            "scaled_dot_product_attention"
            return F.softmax(q, -1), None  # DisableTorchFunction, _pop_mode
    ''',
    "__all__ listing the student's own names": '''
        __all__ = ["scaled_dot_product_attention", "MultiHeadAttention"]
        def scaled_dot_product_attention(q, k, v, mask=None):
            return q, None
    ''',
    "star import shadowed by the student's own function": '''
        from torch.nn.functional import *
        def scaled_dot_product_attention(q, k, v, mask=None):
            return softmax(q, -1), None
        def use(q):
            return scaled_dot_product_attention(q, q, q)
    ''',
    "own helpers named like the grader's or torch's internals": '''
        import torch.nn as nn
        def scan_modules(model):
            return list(model.modules())
        class TransformerClassifier(nn.Module):
            def _push_mode(self, mode):
                self.mode = mode
            def forward(self, tokens):
                self._push_mode("eval")
                return scan_modules(self)
    ''',
    "ordinary PyTorch": '''
        import math
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        from torch import Tensor
        from torch.nn.utils.rnn import pack_padded_sequence
        class TransformerBlock(nn.Module):
            def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.1):
                super().__init__()
                self.norm = nn.LayerNorm(embed_dim)
                self.ffn = nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim))
            def forward(self, x: Tensor, padding_mask=None) -> Tensor:
                with torch.no_grad():
                    pass
                scores = torch.einsum("btd,bsd->bts", x, x) / math.sqrt(x.size(-1))
                return self.norm(x + F.dropout(self.ffn(x), 0.1, self.training)).masked_fill(torch.isnan(x), 0.0)
    ''',
}


@pytest.mark.parametrize("case", sorted(LEGITIMATE))
def test_is_legitimate_code_left_alone(case):
    assert scan(LEGITIMATE[case]) == []


def _repository_sources() -> list[tuple[str, Path]]:
    """Each registered exercise's own files (its reference, notebook and flawed sample) and the test submissions
    named after it, with the exercise they are for."""
    from autograder.exercises import registry

    found = []
    for name, exercise in registry().items():
        found += [(name, ROOT / f) for f in (exercise.solution, exercise.notebook, exercise.demo_sample) if f]
        found += [(name, f) for f in sorted((ROOT / "tests" / "submissions").glob(f"{name}_*.py"))]
    return found


REPOSITORY_SOURCES = _repository_sources()


@pytest.mark.parametrize("exercise, path", REPOSITORY_SOURCES, ids=[str(p.relative_to(ROOT)) for _, p in REPOSITORY_SOURCES])
def test_do_the_repository_s_own_sources_give_no_findings(exercise, path):
    spec = get_exercise(exercise)
    submission = load_submission(path)
    assert submission.cells
    assert scan_source(submission.cells, spec.parts, (spec.forbidden or ATTENTION_BUILTINS).static()) == []


# --- cells, robustness, tables ----------------------------------------------------------------------------

def test_does_a_cell_that_does_not_parse_leave_the_other_cells_scanned():
    cells = [
        SourceCell(code="def broken(:\n    torch._C.DisableTorchFunction()", label="cell 2"),
        SourceCell(code="import torch\n\nx = torch._C.DisableTorchFunction", label="cell 5"),
    ]
    finding = only(scan_source(cells, PARTS))
    assert (finding.cell, finding.line) == ("cell 5", 3)
    assert "(torch._C.DisableTorchFunction, cell 5, line 3)" in finding.message


def test_does_a_hostile_cell_neither_crash_the_scan_nor_slow_it_down():
    long_sum = "x = " + " + ".join(["y"] * 900) + ' + "Disable" + "TorchFunction"\n'
    long_chain = "x = torch" + "._C" * 900 + ".DisableTorchFunction\n"
    started = time.perf_counter()
    cells = [SourceCell(code=long_sum, label="cell 1"), SourceCell(code=long_chain, label="cell 2")]
    findings = scan_source(cells, PARTS)
    assert time.perf_counter() - started < 5.0
    assert [(f.cell, f.shown) for f in findings] == [("cell 1", "torch._C.DisableTorchFunction"),
                                                     ("cell 2", "torch._C.DisableTorchFunction")]


def test_is_a_cell_too_deep_to_parse_reported_rather_than_skipped():
    # A child that raised its recursion limit could compile this; the parent cannot read it.
    too_deep = "x = " + " + ".join(['"a"'] * 20000) + "\n"
    finding = only(scan_source([SourceCell(code=too_deep, label="cell 4")], PARTS))
    assert (finding.part, finding.cell, finding.kind) == (None, "cell 4", BYPASS_KIND)
    assert finding.message.startswith("is nested too deeply for the grader to read (cell 4, line 1)")


def test_does_an_exercise_s_own_forbidden_list_replace_the_default():
    code = '''
        from torchvision.ops import SqueezeExcitation
        import torch.nn.functional as F
        def attend(q):
            return F.scaled_dot_product_attention(q, q, q)
    '''
    own = (Forbidden(attribute="SqueezeExcitation", shown="torchvision.ops.SqueezeExcitation"),)
    finding = only(scan(code, parts=("SEBlock",), forbidden=own))
    assert finding.shown == "torchvision.ops.SqueezeExcitation" and finding.line == 2
    assert {f.shown for f in scan(code, parts=("SEBlock",))} == {SDPA}


def test_is_the_static_list_the_runtime_watch_s_own_table():
    attributes = {f.attribute: f.shown for f in DEFAULT_FORBIDDEN}
    assert {**FORBIDDEN_FUNCTIONS, **FORBIDDEN_OPS}.items() <= attributes.items()
    assert {cls.__name__ for cls in FORBIDDEN_MODULES} <= attributes.keys()
    assert attributes["MultiheadAttention"] == "torch.nn.MultiheadAttention"
    assert len(attributes) == len(DEFAULT_FORBIDDEN)


def test_does_every_listed_switch_exist_where_its_message_says():
    for bypass in BYPASSES:
        module, name = bypass.shown.rsplit(".", 1)
        assert name == bypass.attribute and hasattr(import_module(module), name), bypass.shown


def test_is_every_mode_switch_torch_has_on_the_list():
    switch = re.compile(
        r"^_?(Disable|disable_current|disable_infra|pop_|push_|unset_(dispatch|infra)|set_dispatch_mode"
        r"|set_torch_function|set_skip_next|skip_one_hop|get_(current_)?(function|dispatch)_(mode|stack)"
        r"|dispatch_tls_set|disabled_torch)"
        r"|DispatchKeyGuard$|TorchFunctionState$|TorchDispatchModeKey$"
    )
    ignored = {"_DisableAutocast", "_DisableFuncTorch", "_DisablePythonDispatcher", "_disable_user_warnings"}
    listed = {b.attribute for b in BYPASSES}
    for module in ("torch._C", "torch.overrides", "torch.utils._python_dispatch", "torch.utils._mode_utils"):
        found = {n for n in dir(import_module(module)) if switch.search(n)} - ignored
        assert found <= listed, f"{module}: {sorted(found - listed)}"


# --- a layer class's plain-word name is a label, except where it reaches an attribute -----------------------



@pytest.mark.parametrize("code, found", [
    ("def weights_init(m):\n    if m.__class__.__name__.find('Attention') != -1:\n        pass\n", False),
    ("import torch\ndef label(x):\n    with torch.profiler.record_function('Attention'):\n        return x\n", False),
    ("def title(ax):\n    ax.set_title('Block')\n", False),
    ("import timm.layers\ndef make(d):\n    return getattr(timm.layers, 'Attention')(d)\n", True),
    ("import timm\ndef make(d):\n    return vars(timm.layers)['Block'](d, 2)\n", True),
    ("from timm.layers import Mlp\n", True),
], ids=["weights_init", "profiler label", "plot title", "getattr", "vars", "import"])
def test_is_a_generic_layer_name_found_only_where_it_reaches_the_layer(code, found):
    forbidden = get_exercise("vit").forbidden.static()
    findings = scan_source([SourceCell(code=code, label="cell")], ("Block",), forbidden=forbidden)
    assert bool([f for f in findings if f.kind == FORBIDDEN_KIND]) == found, findings


@pytest.mark.parametrize("code, found", [
    ("import torch\ndef sdpa(q, k, v):\n    with torch.profiler.record_function('scaled_dot_product_attention'):\n"
     "        return q\n", False),
    ("import torch.nn.functional as F\ndef sdpa(q, k, v):\n    return getattr(F, 'scaled_dot_product_attention')(q, k, v)\n",
     True),
], ids=["profiler label", "getattr"])
def test_is_a_part_named_like_a_forbidden_function_found_only_where_it_reaches_it(code, found):
    """The transformer's part ``scaled_dot_product_attention`` shares its name with torch's: as a label it is the
    contract's word, as an attribute it reaches torch's."""
    exercise = get_exercise("transformer")
    findings = scan_source([SourceCell(code=code, label="cell")], exercise.parts,
                           forbidden=(exercise.forbidden or ATTENTION_BUILTINS).static())
    assert bool([f for f in findings if f.kind == FORBIDDEN_KIND]) == found, findings


@pytest.mark.parametrize("code, found", [
    ("import autograder.training as t\ndef faster(*a, **k):\n    pass\nclass A:\n    t.fit = faster\n", True),
    ("from autograder import training\nclass A:\n    setattr(training, 'fit', print)\n", True),
    ("import autograder.training\nclass A:\n    del autograder.training.loss_function\n", True),
    ("from autograder.training import fit\nclass A:\n    history = None\n", False),
], ids=["assigned", "setattr", "deleted", "imported"])
def test_is_a_change_to_the_graders_own_code_found(code, found):
    """The notebooks import the course's training helpers; changing them (the child trains with them) is a
    bypass: a submission could train longer than the profile's budget."""
    findings = scan_source([SourceCell(code=code, label="cell")], ("A",))
    assert bool([f for f in findings if "changes the grader's own code" in f.message]) == found, findings


# --- the scan's own cost is bounded -------------------------------------------------------------------------


def test_is_deeply_nested_code_read_in_time_linear_in_its_size():
    """Each call's arguments were walked again for every call around them: 1 MB of nested calls cost minutes."""
    nested = "\n".join("y = " + "g(" * 90 + "1" + ")" * 90 for _ in range(500)) + "\n"  # 140 KB, 135,000 nodes
    start = time.perf_counter()
    assert scan_source([SourceCell(code=nested, label="file")], ("A",)) == []
    assert time.perf_counter() - start < 30  # measured: 1 s on 2 cores (quadratic: 10 s)
    crafted = nested * 8  # 1.1 MB: beyond the budget, read up to it and refused
    start = time.perf_counter()
    (finding,) = scan_source([SourceCell(code=crafted, label="file")], ("A",))
    assert "too large for the grader to read" in finding.message
    assert time.perf_counter() - start < 30  # measured: 4 s (quadratic: minutes)


def test_is_code_beyond_the_node_budget_unread_against_every_part(monkeypatch):
    import autograder.forbidden_source as scan

    monkeypatch.setattr(scan, "MAX_NODES", 1000)
    code = "\n".join(f"x{i} = f(a, b)" for i in range(500)) + "\n"  # about 3,500 nodes
    (finding,) = scan_source([SourceCell(code=code, label="file")], ("A",))
    assert finding.part is None and finding.kind == BYPASS_KIND and "too large for the grader to read" in finding.message
