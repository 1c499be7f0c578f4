"""Issue 22: do the event heads of notebook 04 need more optimiser steps? One row at several step \
counts.

    python scripts/event_head_steps.py --tap runs/cpu4/tap_simulated.pt --strategy A1 \
        --steps 1000 3000
    python scripts/event_head_steps.py --strategy B1 --steps 1000 3000 --seeds 3 \
        --out runs/head_steps.json

Notebook 04's cpu protocol (its crops, size-either labels, split, lr grid chosen on validation by
the first seed, the cosine schedule, n_evals validation points) for one strategy, with only the
number of steps changed. Prints, per step count, the test class-1 F1 of each seed, how many runs
count as converged (protocol.converged) and the paired difference to the first step count with its
95 % interval: if more steps do not change the test F1, the "not converged" mark of the shorter run
is the noise of the rule.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


from tapkit.course import config as course
from tapkit.downstream.events import criteria, crops
from tapkit.downstream.events.experiments import run_sweep
from tapkit.downstream.events.strategies import sweep_settings
from tapkit.downstream.protocol import paired_difference, verdict


# every row kind's step count; strategy_settings (steps_for) reads the one of the strategy
STEP_KEYS = ("steps_linear", "steps_resnet", "steps_end_to_end")


def run(
    tap_path: "str | None",
    strategy: str,
    steps: list[int],
    n_runs: int,
    seed: int,
    lr: "float | None" = None,
) -> dict:
    """{steps: {test_f1, val_f1, converged, lr, minutes}} for `strategy` on notebook 04's cpu
    data."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = course.configure(
            dict(profile="cpu", seed=seed, device="cpu", out_dir=tmp), notebook="04"
        )
        movie = course.load_data(cfg)
        if tap_path:
            from tapkit.ssl.trainer import load_tap

            tap = load_tap(tap_path, device="cpu")
        else:
            tap = course.get_tap_model(cfg, movie=movie)
    pairs = crops.crop_pairs(movie, seed=cfg.seed, **cfg.crops)
    labels = criteria.label_pairs(pairs, "size-either")
    split = crops.split_pairs(labels, seed=cfg.seed)
    train = sweep_settings(cfg.heads)
    n_runs = n_runs or train.pop("n_runs")  # default: the profile's
    train.pop("n_runs", None)
    if lr is not None:  # one rate for every step count (what the protocol chose at the shortest)
        train["lr_grid"] = (lr,)
    out: dict = {"strategy": strategy, "n_runs": n_runs, "rows": {}}
    for n in steps:
        t0 = time.perf_counter()
        jobs = [(strategy, labels, split, seed + i) for i in range(n_runs)]
        results = run_sweep(
            jobs,
            pairs,
            tap,
            "cpu",
            desc=f"{strategy} {n} steps",
            **train,
            **dict.fromkeys(STEP_KEYS, n),
        )
        out["rows"][n] = {
            "test_f1": [round(float(r.f1[1]), 4) for r in results],
            "converged": [bool(r.converged) for r in results],
            "lr": results[0].lr,
            "minutes": round((time.perf_counter() - t0) / 60, 1),
        }
        print(n, out["rows"][n], flush=True)
    first = out["rows"][steps[0]]["test_f1"]
    for n in steps[1:]:
        d = paired_difference(out["rows"][n]["test_f1"], first)
        out["rows"][n]["minus_first"] = {"diff": str(d), "verdict": verdict(d)}
    return out


def main() -> None:
    """Parse the arguments, run, print and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--tap", default=None, help="TAP checkpoint (default: the course's, as notebook 04)"
    )
    p.add_argument("--strategy", default="A1", help="A0, A1, B0, B1, C1 (default A1)")
    p.add_argument("--steps", type=int, nargs="+", default=[1000, 3000])
    p.add_argument(
        "--seeds", type=int, default=3, help="runs per step count (seeds seed, seed+1, ...)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None, help="one learning rate (default: the grid)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    a = p.parse_args()
    res = run(a.tap, a.strategy, a.steps, a.seeds, a.seed, a.lr)
    print(json.dumps(res, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
