"""Which TAP training recipe learns real cells and not a frame-level cue? (issue 23; \
docs/MEASUREMENT_NOTES.md)

Trains TAP with each option set on a real movie (default: the HeLa subset, binned as
`datasets.recommended` says), seeds 0-2, and evaluates every model three ways, each with every crop
normalised on its own: held-out frames (the last `val_fraction`), the held-out region of the
training frames (`val_region`), and both frames and crops as the notebook normalises them (per
frame). Prints a table and writes JSON lines.

    python scripts/real_data_recipe.py --options profile,per-crop --seeds 0,1,2 \
        --out runs/recipe.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from tapkit.course.profiles import PROFILES
from tapkit.data import datasets
from tapkit.ssl.tap import evaluate_tap
from tapkit.ssl.trainer import train_tap

VAL_REGION = 0.25  # the right quarter of every frame is never trained on

# option set -> settings over the cpu profile's `tap` section (800 steps of 16 pairs of 64 px, lr
# 3e-3)
OPTIONS: dict[str, dict] = {
    "profile": {},
    "per-crop": dict(per_crop=True),
    "per-crop+aug": dict(per_crop=True, augment="default"),
    "per-crop+exact": dict(per_crop=True, augment="exact"),
    "per-crop+lr1e-3": dict(per_crop=True, lr=1e-3),
    "per-crop+3x": dict(per_crop=True, epochs=24),
    "per-crop+aug+3x": dict(per_crop=True, augment="default", epochs=24),
    "per-crop+p96": dict(per_crop=True, patch=96),
    "per-crop+bg": dict(per_crop=True, reject_background=0.05),
}


def load_movie(name: str):
    """The movie `name`, binned as recommended."""
    movie = datasets.load(name)
    factor = datasets.recommended(name)["binning"]
    return movie.bin(factor) if factor > 1 else movie


def run_one(movie, option: str, seed: int, n_pairs: int, steps: "int | None" = None) -> dict:
    """Train one model with `option` and `seed` (`steps`: steps per epoch, for a quick check);
    accuracies, minutes."""
    settings = {
        **PROFILES["cpu"]["tap"],
        "val_at": "end",
        "val_region": VAL_REGION,
        **OPTIONS[option],
    }
    # the measured baseline is the profile's 8 epochs; options set their own
    settings.pop("real_epochs")
    settings["steps_per_epoch"] = steps or settings["steps_per_epoch"]
    t0 = time.perf_counter()
    model, history = train_tap([movie], seed=seed, progress=False, **settings)
    minutes = (time.perf_counter() - t0) / 60
    common = dict(
        n_pairs=n_pairs, patch=settings["patch"], seed=seed, val_at="end", val_region=VAL_REGION
    )
    frames = evaluate_tap(model, [movie], split="val", per_crop=True, **common)
    region = evaluate_tap(model, [movie], split="region", per_crop=True, **common)
    plain = evaluate_tap(model, [movie], split="val", **common)
    return dict(
        option=option,
        seed=seed,
        minutes=round(minutes, 2),
        frames=frames["accuracy"],
        frames_ci=frames["accuracy_ci"],
        frames_by_t=frames["accuracy_by_t"],
        region=region["accuracy"],
        region_by_t=region["accuracy_by_t"],
        frames_per_frame_norm=plain["accuracy"],
        frames_per_frame_norm_by_t=plain["accuracy_by_t"],
        train_accuracy=history["train_accuracy"][-1],
    )


def main() -> None:
    """Run the grid of option sets x seeds; print one line per run and a summary per option."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="hela-subset")
    parser.add_argument(
        "--options", default="profile,per-crop", help=f"comma-separated, of {', '.join(OPTIONS)}"
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n-pairs", type=int, default=1024)
    parser.add_argument("--out", default="runs/real_data_recipe.jsonl")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps per epoch (default: the profile's; a quick check)",
    )
    args = parser.parse_args()
    movie = load_movie(args.data)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for option in args.options.split(","):
        for seed in map(int, args.seeds.split(",")):
            row = dict(
                run_one(movie, option, seed, args.n_pairs, args.steps),
                data=args.data,
                threads=torch.get_num_threads(),
            )
            rows.append(row)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(
                f"{option:18s} seed {seed}: frames {row['frames']:.3f} region {row['region']:.3f} "
                f"per-frame-norm {row['frames_per_frame_norm']:.3f} "
                f"train {row['train_accuracy']:.3f} "
                f"({row['minutes']:.1f} min)",
                flush=True,
            )
    for option in dict.fromkeys(r["option"] for r in rows):
        mine = [r for r in rows if r["option"] == option]
        worst = min(min(r["frames_by_t"].values()) for r in mine)
        print(
            f"{option:18s} frames {np.mean([r['frames'] for r in mine]):.3f} region "
            f"{np.mean([r['region'] for r in mine]):.3f} worst frame pair {worst:.2f} "
            f"minutes {np.mean([r['minutes'] for r in mine]):.1f} (n={len(mine)})"
        )


if __name__ == "__main__":
    main()
