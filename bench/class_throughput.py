"""Class grading throughput: the same class graded with 1 and 2 local workers and on a 2-worker Dask LocalCluster,
side by side in one run, with the ratios and the gradebook's own share of the time.

    .venv/bin/python bench/class_throughput.py [--exercise cnn_attention] [--students 8] [--skip-training]

The class: the exercise's reference and its flawed sample, alternately, each copy made distinct by a comment
(so every student has their own file and hash). Targets on a 2-core machine: 2 workers at least 1.6x one worker;
the gradebook's own cost (its writes) under 2% of the grading time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.class_engines import DaskEngine, LocalEngine, visible_gpus  # noqa: E402
from autograder.class_grading import ClassOptions, grade_class  # noqa: E402
from autograder.exercises import get_exercise  # noqa: E402


def make_class(folder: Path, exercise, students: int) -> None:
    folder.mkdir(parents=True)
    sources = [(ROOT / exercise.solution).read_text(), (ROOT / exercise.demo_sample).read_text()]
    for i in range(students):
        (folder / f"student{i:03d}.py").write_text(sources[i % 2] + f"\n# student {i}\n")


def run(label: str, source: Path, book: Path, options: dict, engine) -> dict:
    start = time.perf_counter()
    summary = grade_class(source, ClassOptions(gradebook=book, **options), engine=engine)
    wall = time.perf_counter() - start
    share = summary.recording_seconds / max(wall, 1e-9)
    print(f"{label:<22} {wall:7.1f} s wall  {summary.graded} graded, {summary.grader_failures} grader failures; "
          f"gradebook writes {summary.recording_seconds * 1000:.0f} ms ({share:.2%} of the wall time)", flush=True)
    return {"wall": wall, "share": share}


def gpu_slots(exercise, args, options: dict) -> int:
    """The class graded with G gradings per GPU, for each G asked for."""
    with tempfile.TemporaryDirectory(prefix="class-throughput-") as tmp:
        source = Path(tmp) / "class"
        make_class(source, exercise, args.students)
        walls = {}
        for slots in args.gpu_slots:
            engine = LocalEngine(slots * max(1, visible_gpus()), "cuda", slots)
            try:
                walls[slots] = run(f"{slots} gradings per GPU", source, Path(tmp) / f"g{slots}.sqlite", options,
                                   engine)["wall"]
            finally:
                engine.close()
    first = args.gpu_slots[0]
    print(", ".join(f"{s} per GPU: {walls[first] / w:.2f}x" for s, w in walls.items()) + f" (vs {first} per GPU)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exercise", default="cnn_attention")
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--gpu-slots", type=int, nargs="*", default=[],
                        help="with cuda: grade the class once per number of gradings sharing each GPU (e.g. 1 2 4), "
                             "instead of the CPU comparison")
    args = parser.parse_args()
    exercise = get_exercise(args.exercise)
    options = dict(exercise=exercise.name, skip_training=args.skip_training, device=args.device, progress=False,
                   seed=1)
    if args.gpu_slots:
        return gpu_slots(exercise, args, options)
    with tempfile.TemporaryDirectory(prefix="class-throughput-") as tmp:
        source = Path(tmp) / "class"
        make_class(source, exercise, args.students)
        print(f"{args.students} students of {exercise.name}, training {'skipped' if args.skip_training else 'included'}")
        engines = [LocalEngine(1), LocalEngine(2)]
        one = run("local, 1 worker", source, Path(tmp) / "one.sqlite", options, engines[0])
        two = run("local, 2 workers", source, Path(tmp) / "two.sqlite", options, engines[1])
        for engine in engines:
            engine.close()
        import distributed

        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            dask = run("Dask LocalCluster, 2", source, Path(tmp) / "dask.sqlite", options, DaskEngine(client=client))
    print(f"speed-up, 2 local workers vs 1: {one['wall'] / two['wall']:.2f}x (target at least 1.6x)")
    print(f"speed-up, Dask 2 workers vs 1 local: {one['wall'] / dask['wall']:.2f}x")
    worst = max(one["share"], two["share"], dask["share"])
    print(f"gradebook's own cost: at most {worst:.2%} of the wall time (target under 2%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
