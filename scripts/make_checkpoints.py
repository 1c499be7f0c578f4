"""Train the small pretext-task checkpoints shipped in the package, tapkit/checkpoints \
(cpu-profile settings, fixed seed).

    python scripts/make_checkpoints.py                                 # every task on its datasets
    python scripts/make_checkpoints.py --tasks mim contrastive         # only these tasks
    python scripts/make_checkpoints.py --tasks tap --only simulated --epochs 4
    python scripts/make_checkpoints.py --tasks tap --only simulated \
        --from-run runs/cpu   # no retraining
    python scripts/make_checkpoints.py --tasks tap --only hela-subset --epochs 80 \
        --from-checkpoint full.pt

Each checkpoint is trained exactly as the notebooks train it in the cpu profile (`course.configure`,
`course.load_data`, `course.config.train_pretext_model` on CPU): TAP as notebook 01 does, the other
pretext tasks of notebook 07 ('mim', 'mim-intensity', 'contrastive') with the same sizes and step
budget plus their options from the profile's `pretext` section. Each is stored compactly (float16
weights, no optimizer state) as tapkit/checkpoints/<task>_<data>.pt, checked to load with
`tapkit.ssl.trainer.load_model` and to give the same dense features as the float32 model, and listed
with its SHA-256 in tapkit/checkpoints/SHA256SUMS. `tapkit.course.get_pretext_model` finds them
there (`tapkit.course.config.shipped_checkpoint`); the wheel ships them as package data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from tapkit.course import config as course
from tapkit.ssl.checkpoint import load_checkpoint, save_checkpoint
from tapkit.ssl.trainer import load_model

# = course.config.shipped_folder() in a checkout
OUT = Path(__file__).resolve().parents[1] / "tapkit" / "checkpoints"
SEED = 0
PLAN = {
    "tap": ("simulated", "hela-subset"),
    "mim": ("simulated",),
    "mim-intensity": ("simulated",),
    "contrastive": ("simulated",),
}  # task -> the datasets it is shipped for
DATASETS = ("simulated", "hela-subset")
KEEP = (
    "pretext",
    "config",
    "model",
    "epoch",
    "history",
    "binning",
    "normalization",
)  # optimizer, scheduler, sampler, RNG dropped


def to_half(state: dict) -> dict:
    """A copy of a checkpoint dict with float16 weights, keeping only what `load_model` and a reader
    need."""

    def convert(obj):
        if isinstance(obj, torch.Tensor):
            return obj.half() if obj.is_floating_point() else obj
        if isinstance(obj, dict):
            return {k: convert(v) for k, v in obj.items()}
        return obj

    out = {k: convert(v) for k, v in state.items() if k in KEEP}
    # wall-clock seconds would make every remake a different file
    if isinstance(out.get("history"), dict):
        out["history"] = {k: v for k, v in out["history"].items() if k != "seconds"}
    return out


def same_features(a: torch.nn.Module, b: torch.nn.Module, patch: int) -> float:
    """Largest |difference| of the dense features of two models on the same random crops (4, C, P,
    P)."""
    x = torch.randn(4, a.in_channels, patch, patch, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return float((a.eval().embed(x) - b.eval().embed(x)).abs().max())


def make_one(
    task: str,
    name: str,
    overrides: dict,
    from_run: "Path | None" = None,
    from_checkpoint: "Path | None" = None,
) -> Path:
    """Train `task` as the notebooks do (cpu profile, data=name), compact, verify, write
    <task>_<name>.pt.

    With `from_run`, take the checkpoint that a `tapkit course run --profile cpu` (default seed and
    sizes) wrote instead of training again: the same training, already done. With `from_checkpoint`,
    take a finished full checkpoint of exactly this training (e.g. a long run made with resume),
    checked by its recipe.
    """
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        params = dict(profile="cpu", data=name, seed=SEED, device="cpu", out_dir=tmp, **overrides)
        # binning, val_at, profile
        cfg = course.configure(params, notebook="01" if task == "tap" else "07")
        full = Path(tmp) / "full.pt" if from_run is None else run_checkpoint(from_run, task, name)
        if from_checkpoint is not None:
            full = same_recipe_checkpoint(from_checkpoint, cfg.tap)
        elif from_run is None:
            movie = course.load_data(cfg)
            print(
                f"== {task} on {name}: {movie!r}; training {cfg.tap}, options "
                f"{course.task_options(cfg, task)[1]}",
                flush=True,
            )
            course.train_pretext_model(cfg, movie, full, task)
        model = load_model(full, "cpu")
        state = to_half(load_checkpoint(full))
    state["meta"] = dict(
        data=name, seed=SEED, settings=cfg.tap, task=task, script="scripts/make_checkpoints.py"
    )
    path = OUT / f"{task}_{name}.pt"
    save_checkpoint(state, path)
    diff = same_features(model, load_model(path, "cpu"), cfg.tap["patch"])
    print(
        f"   {time.perf_counter() - start:.0f} s, {path.stat().st_size / 1e6:.1f} MB, "
        "max |feature diff| "
        f"float16 vs float32: {diff:.2e}, last history: {last_entry(state['history'])}",
        flush=True,
    )
    return path


def run_checkpoint(run: Path, task: str, name: str) -> Path:
    """<task>_<name>.pt of a course run folder, refused unless the run used the cpu profile, seed 0
    and no overrides."""
    summary = json.loads((run / "summary.json").read_text())
    sizes = {k: v for k, v in summary.get("params", {}).items() if k not in ("device", "data")}
    if (
        summary.get("profile") != "cpu"
        or summary.get("dry_run")
        or sizes.get("seed", SEED) != SEED
        or any(k != "seed" for k in sizes)
    ):
        raise SystemExit(
            f"{run} is not a plain cpu-profile run with seed {SEED} "
            f"(profile {summary.get('profile')}, "
            f"dry run {summary.get('dry_run')}, parameters {sizes}): "
            "its checkpoints are not the shipped ones."
        )
    path = run / f"{task}_{name}.pt"
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: run the notebook that trains it first.")
    return path


def same_recipe_checkpoint(path: Path, settings: dict) -> Path:
    """`path` if it holds a finished training with these `settings` (epochs, steps, lr, ... and
    seed), else exit."""
    recipe = load_checkpoint(path).get("recipe") or {}
    wanted = {**{k: v for k, v in settings.items() if k != "model_kwargs"}, "seed": SEED}
    differ = {
        k: (recipe.get(k, "missing"), v)
        for k, v in wanted.items()
        if recipe.get(k, "missing") not in (v, repr(v))
    }
    if differ:
        raise SystemExit(
            f"{path} was not trained with these settings (its value, wanted): {differ}"
        )
    if len(load_checkpoint(path)["history"].get("train_accuracy", [])) != settings["epochs"]:
        raise SystemExit(
            f"{path} has not finished its {settings['epochs']} epochs: resume its training first."
        )
    return path


def last_entry(history) -> str:
    """The last epoch's numbers of a training history (dict of lists or list of dicts)."""
    if isinstance(history, dict):
        return str(
            {
                k: round(v[-1], 4)
                for k, v in history.items()
                if isinstance(v, list) and v and isinstance(v[-1], (int, float))
            }
        )
    return str(history[-1]) if history else "-"


def write_sums() -> None:
    """tapkit/checkpoints/SHA256SUMS for every shipped *.pt (sha256sum -c compatible)."""
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(OUT.glob("*.pt"))
    ]
    (OUT / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    print((OUT / "SHA256SUMS").read_text())


def main(argv: "list[str] | None" = None) -> int:
    """Command line: which tasks and datasets, and optionally fewer epochs / steps than the cpu
    profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(PLAN), choices=list(PLAN))
    parser.add_argument("--only", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument(
        "--epochs", type=int, default=None, help="override the cpu profile's epochs"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="override the cpu profile's steps per epoch"
    )
    parser.add_argument(
        "--from-run",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="take the checkpoints a `tapkit course run --profile cpu` wrote instead of training",
    )
    parser.add_argument(
        "--from-checkpoint",
        type=Path,
        default=None,
        metavar="FULL_PT",
        help="take this finished full checkpoint of the same training (one task and dataset)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch CPU threads (1 on a busy machine: 2 threads collapse when a core is taken)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {
        "tap_epochs": args.epochs,
        "tap_steps_per_epoch": args.steps,
    }  # None keeps the profile's
    OUT.mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        for name in (n for n in PLAN[task] if n in args.only):
            make_one(task, name, overrides, args.from_run, args.from_checkpoint)
    write_sums()
    return 0


if __name__ == "__main__":
    sys.exit(main())
