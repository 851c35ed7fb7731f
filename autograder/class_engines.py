"""Where a class's gradings run: on this machine (the default, no service to start) or on a Dask cluster.

Both engines run ``class_worker.run_job`` and hand back its result record; neither writes the gradebook.

- ``LocalEngine``: N gradings at once, each in its own grader process with its own sandbox, from a thread pool
  of the coordinator. With CUDA, ``gpu_slots`` gradings share each visible GPU (``CUDA_VISIBLE_DEVICES``).
- ``DaskEngine`` (``pip install -e ".[dask]"``): a running ``distributed`` scheduler's workers grade; each worker
  runs the same grader process and sandbox, and sends back the result record only. A worker lost mid-grading
  has its task run elsewhere by the scheduler; the coordinator retries what still failed.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import uuid
from dataclasses import asdict, replace

from .class_worker import Job, run_job

log = logging.getLogger(__name__)

BYTES_PER_GRADING = 3 << 30  # a grader process and its child, training included (measured peak about 2 GiB)


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch CUDA at all: no GPU
        return 0


def default_workers(device: str | None, gpu_slots: int = 1) -> int:
    """How many gradings this machine runs at once: one per core, as many as its memory holds; with CUDA,
    ``gpu_slots`` per visible GPU."""
    if device == "cuda":
        return max(1, gpu_slots * max(1, visible_gpus()))
    return max(1, min(os.cpu_count() or 1, available_memory() // BYTES_PER_GRADING))


def _failure(reason: str) -> dict:
    return {"failure": reason, "worker": ""}


class LocalEngine:
    """Gradings on this machine: ``workers`` at once."""

    name = "local"

    def __init__(self, workers: int, device: str | None = None, gpu_slots: int = 1):
        self.workers = workers
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grading")
        self.slots: queue.Queue | None = None
        if device == "cuda":
            self.slots = queue.Queue()
            for i in range(max(1, visible_gpus())):
                for _ in range(gpu_slots):
                    self.slots.put(str(i))

    def describe(self) -> str:
        return f"{self.workers} gradings at once on this machine"

    def check_confinement(self, confine: bool) -> list[str]:
        from .sandbox import probe

        features = probe()
        return [] if features.confined or not confine else [f"this machine: {features.reason}"]

    def _run(self, job: Job) -> dict:
        if self.slots is None:
            return run_job(job)
        slot = self.slots.get()
        try:
            return run_job(replace(job, env=(*job.env, ("CUDA_VISIBLE_DEVICES", slot))))
        finally:
            self.slots.put(slot)

    def submit(self, job: Job):
        return self.pool.submit(self._run, job)

    def wait_any(self, futures) -> set:
        done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
        return done

    def result(self, future) -> dict:
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - the coordinator's own thread failed: a grader failure
            log.exception("a grading thread failed")
            return _failure(f"the grading thread failed ({type(exc).__name__}: {exc})")

    def close(self, wait: bool = True) -> None:
        """Stop; ``wait=False`` (interrupted) leaves the running gradings to die with this process."""
        self.pool.shutdown(wait=wait, cancel_futures=True)


def _probe_worker() -> dict:
    """Run on each Dask worker: can it confine submissions?"""
    from .sandbox import probe

    features = probe()
    return {"confined": features.confined, "reason": features.reason}


class DaskEngine:
    """Gradings on a Dask cluster: ``DaskEngine(address)`` for a running scheduler, or ``DaskEngine(client=...)``."""

    name = "dask"

    def __init__(self, address: str | None = None, client=None):
        try:
            import distributed
        except ImportError:
            raise RuntimeError('the Dask engine needs the dask extra: pip install -e ".[dask]"') from None
        self.distributed = distributed
        self.own_client = client is None
        self.client = client or distributed.Client(address, timeout="60s")

    def describe(self) -> str:
        workers = self.client.scheduler_info().get("workers", {})
        return f"{len(workers)} Dask workers at {self.client.scheduler.address}"

    def check_confinement(self, confine: bool) -> list[str]:
        """One probe task per worker; the workers that cannot confine, each with its reason."""
        found = self.client.run(_probe_worker)
        if not found:
            return ["the cluster has no workers"]
        return [f"worker {address}: {r['reason']}" for address, r in sorted(found.items())
                if confine and not r["confined"]]

    def submit(self, job: Job):
        key = f"grade-{uuid.uuid4().hex}"
        return self.client.submit(run_job, asdict(job), key=key, pure=False)

    def wait_any(self, futures) -> set:
        return set(self.distributed.wait(list(futures), return_when="FIRST_COMPLETED").done)

    def result(self, future) -> dict:
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - a worker lost (KilledWorker) or the task failed: a grader failure
            return _failure(f"the Dask task failed ({type(exc).__name__}: {str(exc)[:300]})")
        finally:
            future.release()
        return result if isinstance(result, dict) else _failure("the Dask task returned no result record")

    def close(self, wait: bool = True) -> None:
        if self.own_client:
            self.client.close()
