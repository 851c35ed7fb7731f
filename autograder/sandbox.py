"""Confinement of the child process that runs a submission: bubblewrap, a seccomp filter, limits and a cgroup.

The child is started through ``bwrap`` (Debian's ``bubblewrap``), a well-kept tool of the platform:

- a new user namespace in which it is uid/gid 65534 with no capabilities, ``no_new_privs``, and no further
  user namespaces (``--disable-userns``); where the Python runtime is readable by uid 65534, bwrap itself is
  started as that uid, so the child is unprivileged outside its namespace too (``separate user``);
- new PID, IPC, UTS, cgroup and network namespaces: its own ``/proc``, no interfaces, no view of the grader;
- a file system of its own: read-only system directories and Python environment (the grader's own package,
  its data with labels and the project's distribution files masked), an empty ``/tmp``, a minimal ``/dev``
  (plus the NVIDIA devices when grading on CUDA), the protocol modules at ``/sandbox/grader`` and one writable,
  memory-backed directory, ``/sandbox/work``; ``/proc/sys`` masked. No checkout, no ``.git``, no other submission;
- a seccomp filter (compiled with libseccomp in the grader and handed to bwrap) that refuses mount, umount,
  setns, unshare, namespace flags to clone, ptrace, bpf, keyctl, module loading, io_uring, vsock sockets and
  the like;
- resource limits (address space, file size, no core files) and a pids cgroup that caps processes and lets
  every one of them be killed; the whole sandbox dies with its bwrap process.

``probe()`` says which of these work here. Where confinement is impossible the grader refuses unless the
caller allows unconfined grading explicitly; the report then says what is not guaranteed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SANDBOX_UID = 65534  # nobody
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")
WORK = "/sandbox/work"  # the child's writable directory, inside the sandbox
GRADER = "/sandbox/grader"  # the protocol modules, inside the sandbox
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime")
NVIDIA_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset", "/dev/nvidia-caps")

# System calls the child never needs and an escape would: answered with EPERM.
DENIED_SYSCALLS = (
    "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "ptrace", "process_vm_readv",
    "process_vm_writev", "bpf", "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "perf_event_open", "userfaultfd", "open_by_handle_at",
    "name_to_handle_at", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "swapon", "swapoff", "reboot", "syslog", "acct", "quotactl", "lookup_dcookie", "iopl", "ioperm",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "vhangup", "uselib", "pidfd_getfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "kcmp",
)
AF_VSOCK = 40  # reaches the host outside any network namespace
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000,
                         0x00000080)  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
TIOCSTI, TIOCLINUX = 0x5412, 0x541C


class ConfinementUnavailable(RuntimeError):
    """This machine cannot confine a submission (not Linux, no bwrap, user namespaces disabled, ...)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for the child; ``memory_bytes`` is an address-space limit (not applied with CUDA)."""

    memory_bytes: int = 8 << 30
    file_bytes: int = 256 << 20
    processes: int = 256  # threads count too (torch starts one per core)
    start_timeout: float = 120.0
    # torch's threads in the child: one, so that a grading does the same float operations on every machine and
    # does not slow down tenfold when another job shares the cores (measured: a 35 s training took 12 minutes with
    # torch's default of one thread per core); one thread trains these models as fast on 2 cores. None: torch's
    # default.
    threads: int | None = 1
    tmp_bytes: int = 256 << 20  # the child's /tmp (memory-backed)
    confine: bool = True  # False: only rlimits and a process group (explicit opt-out; the report says so)


# ---------------------------------------------------------------------------------------------------------
# what the sandbox contains

def hidden_paths() -> list[str]:
    """Inside the mounted Python environment, what the child must not read: the grader's own package (where
    it is installed rather than editable), the project's distribution files and the labelled data every
    exercise declares (``Exercise.labelled_data``). The checkout itself (solutions, assignments, tests, .git)
    is never mounted."""
    from .exercises import labelled_data_paths

    paths = [str(Path(__file__).resolve().parent), *labelled_data_paths()]
    for site in _site_dirs():
        for pattern in ("__editable__*attention_autograder*", "attention_autograder-*", "autograder"):
            paths += glob.glob(os.path.join(site, pattern))
    return sorted(set(paths))


def _site_dirs() -> list[str]:
    return [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]


def _runtime_dirs() -> list[str]:
    """The Python installation and environment the child runs in (read-only, at their own paths)."""
    dirs = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    dirs.add(os.path.realpath(os.path.dirname(os.path.realpath(sys.executable))) + "/..")
    dirs.update(os.path.realpath(p) for p in _site_dirs())
    dirs = sorted({os.path.normpath(d) for d in dirs})
    return [d for d in dirs if not any(d != o and d.startswith(o + os.sep) for o in dirs)]  # outermost only


def _readable_by(uid: int, path: str) -> bool:
    """Can ``uid`` (not root, in no group) reach ``path``: search permission on every directory above it."""
    parts = Path(path).resolve().parts
    for i in range(1, len(parts) + 1):
        try:
            st = os.stat(os.path.join(*parts[:i]))
        except OSError:
            return False
        mode = st.st_mode
        bit = (mode >> 6) if st.st_uid == uid else (mode & 0o7)
        if not bit & 0o1:
            return False
    return True


# ---------------------------------------------------------------------------------------------------------
# seccomp

@functools.lru_cache(maxsize=1)
def seccomp_program() -> bytes | None:
    """The filter as a compiled BPF program (libseccomp through pyseccomp), or None where unavailable."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as exc:
        log.info("seccomp unavailable: %s", exc)
        return None
    try:
        f = sc.SyscallFilter(defaction=sc.ALLOW)
        deny = sc.ERRNO(errno.EPERM)
        for name in DENIED_SYSCALLS:
            with contextlib.suppress(Exception):  # a call this kernel or architecture lacks
                f.add_rule(deny, name)
        for flag in CLONE_NAMESPACE_FLAGS:
            f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # its flags are out of a filter's reach: libc falls back
        for request in (TIOCSTI, TIOCLINUX):  # the kernel reads the request's low 32 bits only
            f.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
        for call in ("socket", "socketpair"):
            f.add_rule(deny, call, sc.Arg(0, sc.EQ, AF_VSOCK))
        with tempfile.TemporaryFile() as out:
            f.export_bpf(out)
            out.seek(0)
            return out.read()
    except Exception as exc:  # noqa: BLE001 - libseccomp missing or refusing: confinement reports it
        log.info("seccomp filter could not be built: %s", exc)
        return None


def _program_fd(program: bytes) -> int:
    fd = os.memfd_create("autograder-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# ---------------------------------------------------------------------------------------------------------
# cgroup

def _make_cgroup(max_pids: int) -> Path | None:
    """A new pids cgroup capped at ``max_pids``: cgroup v1's pids hierarchy, else a v2 group beside ours."""
    for root in (PIDS_CGROUP, *_v2_roots()):
        group = root / f"autograder-{uuid.uuid4().hex[:12]}"
        try:
            group.mkdir()
        except OSError:
            continue
        try:
            (group / "pids.max").write_text(str(max_pids))
            return group
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
    return None


def _v2_roots() -> list[Path]:
    """Where a cgroup v2 group with the pids controller can be made: the root, where it delegates pids."""
    root = Path("/sys/fs/cgroup")
    try:
        if "pids" in (root / "cgroup.subtree_control").read_text().split():
            return [root]
    except OSError:
        pass
    return []


def _cgroup_pids(group: Path) -> list[int]:
    try:
        return [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _remove_cgroup(group: Path) -> None:
    for _ in range(100):
        pids = _cgroup_pids(group)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        group.rmdir()


# ---------------------------------------------------------------------------------------------------------
# probing

@dataclass(frozen=True)
class Features:
    """Which confinements this machine allows."""

    bwrap: bool = False  # bubblewrap with user, PID, network, IPC namespaces works
    seccomp: bool = False
    separate_user: bool = False  # bwrap can run as uid 65534 (the child is unprivileged outside, too)
    cgroup: bool = False
    reason: str = ""  # why confinement is unavailable, when it is

    @property
    def confined(self) -> bool:
        return self.bwrap and self.seccomp


@functools.lru_cache(maxsize=1)
def probe() -> Features:
    """Try the sandbox once on a throwaway child (cached for the process)."""
    if not sys.platform.startswith("linux"):
        return Features(reason=f"the sandbox needs Linux; this is {sys.platform}")
    if shutil.which("bwrap") is None:
        return Features(reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    program = seccomp_program()
    separate = os.geteuid() == 0 and all(_readable_by(SANDBOX_UID, d) for d in _runtime_dirs())
    group = _make_cgroup(8)
    cgroup = group is not None
    if group is not None:
        _remove_cgroup(group)
    with tempfile.TemporaryDirectory(prefix="autograder-probe-") as tmp:
        spec = SandboxSpec(workdir=Path(tmp), grader_dir=None, separate_user=separate)
        box = None
        try:
            box = Sandbox(Limits(start_timeout=60), spec, Features(bwrap=True, seccomp=program is not None,
                                                                    separate_user=separate))
            code = ("import os, socket\nassert os.getuid() == 65534 and os.getpid() <= 3\n"
                    "open('/sandbox/work/ok', 'w').close()\nassert not os.access('/proc/sys/kernel', os.W_OK)\n"
                    "try:\n    socket.socket().connect(('192.0.2.1', 9))\nexcept OSError:\n    print('isolated')")
            proc = subprocess.run(box.command([sys.executable, "-I", "-S", "-c", code]), capture_output=True,
                                  timeout=60, pass_fds=box.pass_fds, preexec_fn=box.preexec, env={})
            ok = proc.returncode == 0 and b"isolated" in proc.stdout
            reason = "" if ok else f"bwrap failed: {proc.stderr.decode(errors='replace').strip()[-300:]}"
        except (OSError, subprocess.SubprocessError) as exc:
            ok, reason = False, f"bwrap failed: {exc}"
        finally:
            if box is not None:
                box.close()
    if ok and program is None:
        reason = "libseccomp is unavailable (pip install pyseccomp; apt-get install libseccomp2)"
    features = Features(bwrap=ok, seccomp=program is not None, separate_user=ok and separate, cgroup=cgroup,
                        reason=reason)
    log.info("sandbox features: %s", features)
    return features


# ---------------------------------------------------------------------------------------------------------
# the sandbox of one child

@dataclass(frozen=True)
class SandboxSpec:
    """Where things are on the grader's side (the child's ``/sandbox/work`` is a tmpfs of its own)."""

    workdir: Path
    grader_dir: Path | None  # the protocol modules' copy, mounted at /sandbox/grader
    use_cuda: bool = False
    separate_user: bool = False


class Sandbox:
    """One child's confinement: ``command`` wraps its argv, ``preexec`` runs before exec, ``kill_all`` after."""

    def __init__(self, limits: Limits, spec: SandboxSpec, features: Features | None = None):
        self.limits = limits
        self.spec = spec
        self.features_available = features if features is not None else (probe() if limits.confine else Features())
        self.confined = limits.confine and self.features_available.bwrap
        self.box = spec.workdir / "box"  # the working directory of an unconfined child
        self.box.mkdir(exist_ok=True)
        self.separate_user = self.confined and spec.separate_user and self.features_available.separate_user
        if self.separate_user:  # bwrap runs as SANDBOX_UID: it must reach the grader's copy
            os.chmod(spec.workdir, 0o711)
        self.cgroup = _make_cgroup(limits.processes) if self.features_available.cgroup else None
        self._fds: list[int] = []
        program = seccomp_program() if self.confined and self.features_available.seccomp else None
        self.seccomp_fd = _program_fd(program) if program else None
        if self.seccomp_fd is not None:
            self._fds.append(self.seccomp_fd)

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return tuple(self._fds)

    @property
    def features(self) -> list[str]:
        """What confines this child, in words (for the log and the report)."""
        out = ["rlimits", "process group"]
        if self.confined:
            out += ["bubblewrap: user, PID, network, IPC namespaces", "read-only Python environment, no checkout"]
            out.append("unprivileged uid outside too" if self.separate_user else "uid 65534 in its namespace")
        if self.seccomp_fd is not None:
            out.append("seccomp filter")
        if self.cgroup is not None:
            out.append("process cap (cgroup)")
        return out

    def command(self, argv: list[str], env: dict | None = None, chdir: str = WORK) -> list[str]:
        """``argv`` wrapped in bwrap (unchanged when unconfined). ``env`` becomes the child's whole environment."""
        if not self.confined:
            return argv
        cmd = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--as-pid-1",
               "--new-session", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL",
               "--hostname", "sandbox", "--clearenv"]
        # Pseudo file systems and the private /tmp first: a runtime that lives below /tmp (a checkout there,
        # its .venv) must be bound over them, not hidden under them.
        # /proc/sys masked: where the child's uid maps to the grader's root, its files would be writable.
        cmd += ["--proc", "/proc", "--tmpfs", "/proc/sys", "--remount-ro", "/proc/sys", "--dev", "/dev",
                "--size", str(64 << 20), "--tmpfs", "/dev/shm", "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        for name in SYSTEM_DIRS:
            if os.path.islink(name):
                cmd += ["--symlink", os.readlink(name), name]
            elif os.path.isdir(name):
                cmd += ["--ro-bind", name, name]
        for name in SYSTEM_FILES:
            if os.path.exists(name):
                cmd += ["--ro-bind", name, name]
        runtime = _runtime_dirs()
        for directory in runtime:
            cmd += ["--ro-bind", directory, directory]
        mounted = runtime + [d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
        for path in hidden_paths():
            real = os.path.realpath(path)
            if any(path.startswith(d + os.sep) or real.startswith(d + os.sep) for d in mounted):
                cmd += (["--tmpfs", path, "--remount-ro", path] if os.path.isdir(path)
                        else ["--ro-bind", "/dev/null", path])
        cmd += ["--size", str(self.limits.tmp_bytes), "--tmpfs", WORK]  # in memory: no host disk is written
        if self.spec.grader_dir is not None:
            cmd += ["--ro-bind", str(self.spec.grader_dir), GRADER]
        if self.spec.use_cuda:
            devices = sorted(glob.glob("/dev/nvidia[0-9]*")) + [d for d in NVIDIA_DEVICES if os.path.exists(d)]
            for dev in devices:
                cmd += ["--dev-bind", dev, dev]
            cmd += ["--ro-bind", "/sys", "/sys"]  # the driver reads PCI topology there
        if self.seccomp_fd is not None:
            cmd += ["--seccomp", str(self.seccomp_fd)]
        for key, value in (env or {}).items():
            cmd += ["--setenv", key, value]
        cmd += ["--chdir", chdir, "--", *argv]
        return cmd

    def preexec(self) -> None:
        """In the forked process before exec: limits, the cgroup, and the unprivileged uid."""
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limits.file_bytes, self.limits.file_bytes))
        if not self.spec.use_cuda and self.limits.memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (self.limits.memory_bytes, self.limits.memory_bytes))
        if self.cgroup is not None:
            (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))
        elif os.getuid() != 0 or self.confined:  # without a cgroup, the per-user limit (which binds a root
            # grader's sandbox too: the child has no capabilities there)
            soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
            running = sum(1 for p in os.listdir("/proc") if p.isdigit())
            cap = running + self.limits.processes
            if hard == resource.RLIM_INFINITY or cap < hard:
                resource.setrlimit(resource.RLIMIT_NPROC, (cap, hard))
        if self.separate_user:
            os.setgroups([])
            os.setgid(SANDBOX_UID)
            os.setuid(SANDBOX_UID)

    def kill_all(self, pgid: int | None) -> None:
        """Kill the sandbox: bwrap's process group (its PID namespace dies with it) and the cgroup."""
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        if self.cgroup is not None:  # processes that left the group (setsid) are still in the cgroup
            for pid in _cgroup_pids(self.cgroup):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        if self.cgroup is not None:
            _remove_cgroup(self.cgroup)
            self.cgroup = None
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
