"""Issue 22, claim 000-tap-beats-unet-divisions: does a frame pair (t, t + 1) as input change the \
verdict?

    python scripts/dense_input_context.py   # cpu profile, divisions, 1 labelled frame, 3 seeds
    python scripts/dense_input_context.py --budgets 1 5 --seeds 3 --out runs/dense_context.json

Notebook 08's protocol and settings (`course.configure(profile)`, its `segmentation` section: steps,
lr grid, validation frames, the same labelled frames per seed for every row) on the course movie,
four rows: frozen TAP features + conv head from one frame and from the pair (features of t and t + 1
side by side), and the U-Net from scratch from one frame and from the pair (one encoder on each
frame, shared weights). Prints each row's test Dice and the paired differences with their 95 %
intervals and verdicts (tapkit.course.claims' rule); writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tapkit.course import config as course
from tapkit.downstream.protocol import paired_difference, verdict
from tapkit.downstream.segmentation import experiments, masks, tables
from tapkit.downstream.segmentation.fit import feature_inputs, frame_inputs, stack_frames

PAIR = " (t, t+1)"


def run(profile: str, task: str, budgets: list, n_runs: int, seed: int) -> dict:
    """The four rows at `budgets` on the profile's course movie; {row: [scores per run]} and the
    paired differences."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = course.configure(
            dict(profile=profile, seed=seed, device="cpu", out_dir=tmp), notebook="08"
        )
        S = cfg.segmentation
        movie = course.load_data(cfg)
        tap = course.get_pretext_model(cfg, "tap", movie=movie)
    split = masks.split_frames(len(movie.images), S["n_test"], S["n_val"])
    target = masks.task_masks(movie, task)
    train = {k: S[k] for k in experiments.TRAIN_KEYS}
    common = dict(n_runs=n_runs, seed=seed, device="cpu")
    t0, runs = time.perf_counter(), []
    features = feature_inputs(tap, movie, torch.device("cpu"))  # (T, F, Y, X)
    runs += experiments.frozen_sweep(
        "tap", features, target, split, budgets, ("conv",), **common, **train
    )
    pair = stack_frames(features).contiguous(memory_format=torch.channels_last)  # (T, 2F, Y, X)
    runs += experiments.frozen_sweep(
        "tap" + PAIR, pair, target, split, budgets, ("conv",), **common, **train
    )
    images = frame_inputs(movie)  # (T, 1, Y, X)
    runs += experiments.end_to_end_sweep(
        experiments.SCRATCH,
        tap,
        images,
        target,
        split,
        budgets,
        pretrained=False,
        **common,
        **train,
    )
    runs += experiments.end_to_end_sweep(
        experiments.SCRATCH + PAIR,
        tap,
        images,
        target,
        split,
        budgets,
        pretrained=False,
        offsets=(0, 1),
        **common,
        **train,
    )
    out = {
        "profile": profile,
        "task": task,
        "n_runs": n_runs,
        "minutes": round((time.perf_counter() - t0) / 60, 1),
        "rows": {},
        "differences": {},
    }
    for r in runs:
        out["rows"].setdefault(f"{r.row} @ {r.budget}", []).append(round(r.scores["dice"], 4))
    for b in budgets:
        for a, c in [
            ("tap · conv", experiments.SCRATCH),
            (f"tap{PAIR} · conv", experiments.SCRATCH + PAIR),
            (f"tap{PAIR} · conv", "tap · conv"),
            (experiments.SCRATCH + PAIR, experiments.SCRATCH),
        ]:
            diff = paired_difference(*map(np.asarray, tables.paired(runs, a, c, b)))
            out["differences"][f"{a} - {c} @ {b}"] = dict(
                mean=diff.mean, low=diff.low, high=diff.high, n=diff.n, verdict=verdict(diff, 0.0)
            )
    return out


def main() -> None:
    """Command line: profile, task, budgets, runs; prints and writes the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--task", default="divisions")
    parser.add_argument("--budgets", nargs="+", default=["1"])
    parser.add_argument(
        "--seeds", type=int, default=3, help="paired runs per row (seeds 0, 1, ...)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/dense_input_context.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budgets = [b if b == "all" else int(b) for b in args.budgets]
    out = run(args.profile, args.task, budgets, args.seeds, 0)
    for row, scores in out["rows"].items():
        print(f"{row:32s} Dice {np.mean(scores):.3f} ± {np.std(scores):.3f}  {scores}")
    for name, d in out["differences"].items():
        print(f"{name:48s} {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] -> {d['verdict']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=float))
    print(f"{out['minutes']} min; written to {args.out}")


if __name__ == "__main__":
    main()
