"""Find the training recipe for the trajectory transformer (``solutions/seq2seq.py``): train it with the grader's
loop (``autograder.training.fit``, teacher forcing, MSE) on the real Edinburgh tracks of 01 Jul, then score
``predict(source, 25)`` (eval mode, its own outputs fed back) on those of 01 Aug against the two baselines: standing
still (the last observed point repeated) and constant velocity (the last observed step's velocity held).

    OMP_NUM_THREADS=1 .venv/bin/python bench/seq2seq_recipe.py --epochs 30 60 --schedule linear --seeds 5

One line per (configuration, seed): test MSE of ``predict``, of the teacher-forced forward, the wall time of the
training on one thread; then per configuration min / mean / max over the seeds and how many seeds beat constant
velocity. ``--jsonl`` appends every run to a file. The windowing is the course's (see
``../shared/data/edinburgh-forum/README.md``), parsed here on its own so that this script stands alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "edinburgh-forum"

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from autograder.training import SCHEDULES, fit  # noqa: E402

TRACK = re.compile(r"TRACK\.R\d+=\[(.*)\];")  # one line per track: [[x y t];...;[x y t]]


def read_tracks(path: Path) -> list[np.ndarray]:
    """Every ``TRACK.R<k>`` line of a database text file as an (n, 3) float array of x, y, frame."""
    tracks = []
    for match in TRACK.finditer(path.read_text()):
        rows = [r.strip(" []") for r in match.group(1).split(";")]
        tracks.append(np.array([[float(v) for v in r.split()] for r in rows if r], dtype=np.float64))
    return tracks


def windows(tracks: list[np.ndarray], step: int = 10, length: int = 100, threshold: float = 0.005):
    """The course's windows: (N, 25, 2) inputs and (N, 25, 2) outputs, float32, x / 640 and y / 480."""
    xs, ys = [], []
    half = length // 2
    for track in tracks:
        points = track[:, :2] / np.array([640.0, 480.0])  # (n, 2)
        for start in range(0, len(points) - length + 1, step):
            x = points[start : start + half : 2]  # (25, 2)
            y = points[start + half : start + length : 2]  # (25, 2)
            if (np.abs(x[-1] - x[0]).sum() / 25 > threshold) and (np.abs(y[-1] - y[0]).sum() / 25 > threshold):
                xs.append(x)
                ys.append(y)
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


def load_solution():
    spec = importlib.util.spec_from_file_location("seq2seq_solution", ROOT / "solutions" / "seq2seq.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class NoisyTargets(nn.Module):
    """Training-time wrapper: adds N(0, sigma^2) to the decoder's teacher-forced inputs (not to the first one, the
    last observed point, which ``predict`` also reads exactly), so that the decoder learns to read an imperfect
    previous point, as it will when it feeds back its own outputs. In eval mode it is the model itself."""

    def __init__(self, model: nn.Module, sigma: float):
        super().__init__()
        self.model = model
        self.sigma = sigma

    def forward(self, source, target_in):
        if self.training and self.sigma > 0:
            noise = torch.randn_like(target_in) * self.sigma  # (B, T, 2)
            noise[:, 0] = 0
            target_in = target_in + noise
        return self.model(source, target_in)


class EpochProbe(nn.Module):
    """Training-time wrapper that scores ``predict`` on the test windows at every epoch's end (at the first
    forward of the next epoch, after the last batch's optimiser step, and once more after training), to report
    the best epoch as the course did. Its evaluations count in the wall time."""

    def __init__(self, model: nn.Module, steps_per_epoch: int, score):
        super().__init__()
        self.model = model
        self.steps_per_epoch = steps_per_epoch
        self.score = score
        self.calls = 0
        self.curve = []

    def forward(self, source, target_in):
        if self.training:
            if self.calls and self.calls % self.steps_per_epoch == 0:
                self.record()
            self.calls += 1
        return self.model(source, target_in)

    def record(self):
        training = self.model.training
        self.model.eval()
        self.curve.append(self.score(self.model))
        self.model.train(training)


def baselines(source: np.ndarray, target: np.ndarray) -> dict:
    last, velocity = source[:, -1:], source[:, -1:] - source[:, -2:-1]  # (N, 1, 2) each
    steps = np.arange(1, target.shape[1] + 1, dtype=np.float32)[None, :, None]  # (1, T, 1)
    return {"still": float(((last - target) ** 2).mean()),
            "constant_velocity": float(((last + steps * velocity - target) ** 2).mean())}


def build(solution, kind: str, model_kwargs: dict) -> nn.Module:
    """The transformer of ``solutions/seq2seq.py``, or one of the course's LSTM baselines (hidden 300)."""
    if kind == "transformer":
        return solution.TrajectoryTransformer(**model_kwargs)
    from autograder.exercises.seq2seq.baselines import LSTMEncoderDecoder

    return LSTMEncoderDecoder(hidden=300, bidirectional=kind == "bilstm")


def run(solution, data, *, kind="transformer", seed, epochs, batch, lr, schedule, noise, model_kwargs,
        curve=False) -> dict:
    (xtr, ytr), (xte, yte) = data
    torch.manual_seed(seed)
    model = build(solution, kind, model_kwargs)
    src, tgt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    tin = solution.decoder_inputs(src, tgt).numpy()
    src_te, tgt_te = torch.from_numpy(xte), torch.from_numpy(yte)

    def score(m):
        return float(((m.predict(src_te, tgt_te.size(1)) - tgt_te) ** 2).mean())

    trained = NoisyTargets(model, noise) if noise else model
    if curve:
        trained = EpochProbe(trained, -(-len(xtr) // batch), lambda m: score(model))
    start = time.perf_counter()
    history = fit(trained, [xtr, tin], ytr, epochs=epochs, batch_size=batch, lr=lr, seed=seed, loss="mse",
                  schedule=schedule)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        forced = model(src_te, solution.decoder_inputs(src_te, tgt_te))
    result = {"predict_mse": score(model), "forced_mse": float(((forced - tgt_te) ** 2).mean()),
              "train_loss": history.epoch_losses[-1], "seconds": seconds}
    if curve:
        result["curve"] = trained.curve + [result["predict_mse"]]  # test MSE of predict after each epoch
        result["best_mse"] = min(result["curve"])
        result["best_epoch"] = result["curve"].index(result["best_mse"]) + 1
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="transformer", choices=["transformer", "lstm", "bilstm"],
                        help="lstm, bilstm: the course's baselines (hidden 300; the model size flags are ignored)")
    parser.add_argument("--curve", action="store_true", help="score predict after every epoch (best epoch)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[30])
    parser.add_argument("--schedule", nargs="+", default=["linear"], choices=SCHEDULES)
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-3])
    parser.add_argument("--batch", type=int, nargs="+", default=[32])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0],
                        help="std of Gaussian noise on target_in in training (normalised units)")
    parser.add_argument("--embed", type=int, nargs="+", default=[64])
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ff", type=int, nargs="+", default=[128], help="feed-forward width (0: 2 * embed)")
    parser.add_argument("--blocks", type=int, nargs="+", default=[2], help="encoder blocks = decoder blocks")
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.1])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jsonl", help="append every run to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = windows(read_tracks(DATA / "tracks.01Jul.txt"))
    test = windows(read_tracks(DATA / "tracks.01Aug.txt"))
    base = baselines(*test)
    print(f"windows: train {len(train[0])}, test {len(test[0])}; test MSE still {base['still']:.5f}, "
          f"constant velocity {base['constant_velocity']:.5f}", flush=True)
    solution = load_solution()
    grid = itertools.product(args.epochs, args.schedule, args.lr, args.batch, args.noise, args.embed, args.ff,
                             args.blocks, args.dropout)
    for epochs, schedule, lr, batch, noise, embed, ff, blocks, dropout in grid:
        model_kwargs = dict(embed_dim=embed, num_heads=args.heads, ff_dim=ff or 2 * embed,
                            num_encoder_blocks=blocks, num_decoder_blocks=blocks, dropout=dropout)
        config = dict(model=args.model, epochs=epochs, schedule=schedule, lr=lr, batch=batch, noise=noise,
                      **model_kwargs)
        label = f"e{epochs} {schedule} lr{lr:g} b{batch} noise{noise:g} "
        label += (f"E{embed} ff{model_kwargs['ff_dim']} blk{blocks} do{dropout:g}" if args.model == "transformer"
                  else f"{args.model} hidden 300")
        results = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            result = run(solution, (train, test), kind=args.model, curve=args.curve, seed=seed, epochs=epochs,
                         batch=batch, lr=lr, schedule=schedule, noise=noise, model_kwargs=model_kwargs)
            results.append(result)
            print(f"{label} seed {seed}: predict {result['predict_mse']:.5f} forced {result['forced_mse']:.5f} "
                  f"train {result['train_loss']:.5f} {result['seconds']:.1f} s"
                  + (f"; best {result['best_mse']:.5f} at epoch {result['best_epoch']}" if args.curve else ""),
                  flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps({**config, "seed": seed, **result, **base}) + "\n")
        scores = [r["predict_mse"] for r in results]
        wins = sum(s < base["constant_velocity"] for s in scores)
        print(f"== {label}: predict min {min(scores):.5f} mean {statistics.mean(scores):.5f} max {max(scores):.5f}; "
              f"beats constant velocity {wins}/{len(scores)}, still {sum(s < base['still'] for s in scores)}"
              f"/{len(scores)}; {statistics.mean(r['seconds'] for r in results):.1f} s a run", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
