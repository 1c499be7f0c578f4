"""Train the small TAP checkpoints shipped in data/checkpoints (cpu-profile settings, fixed seed).

    python scripts/make_checkpoints.py                       # both: simulated and hela-subset
    python scripts/make_checkpoints.py --only simulated --epochs 4

Each checkpoint is trained exactly as notebook 01 trains it in the cpu profile (`course.configure`,
`course.load_data`, `tapkit.ssl.trainer.train_tap` on CPU), then stored compactly (float16
weights, no optimizer state) as data/checkpoints/tap_<data>.pt, checked to load with
`tapkit.ssl.trainer.load_tap` and to give the same logits as the float32 model, and listed with its
SHA-256 in data/checkpoints/SHA256SUMS. `tapkit.course.get_tap_model` finds them there.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import torch

from tapkit.course import config as course
from tapkit.ssl.checkpoint import load_checkpoint, save_checkpoint
from tapkit.ssl.trainer import load_tap, train_tap

OUT = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
SEED = 0
DATASETS = ("simulated", "hela-subset")
KEEP = ("config", "model", "epoch", "history", "binning")  # optimizer, scheduler, sampler, RNG state dropped


def to_half(state: dict) -> dict:
    """A copy of a checkpoint dict with float16 weights, keeping only what `load_tap` and a reader need."""
    def convert(obj):
        if isinstance(obj, torch.Tensor):
            return obj.half() if obj.is_floating_point() else obj
        if isinstance(obj, dict):
            return {k: convert(v) for k, v in obj.items()}
        return obj

    out = {k: convert(v) for k, v in state.items() if k in KEEP}
    if isinstance(out.get("history"), dict):  # wall-clock seconds would make every remake a different file
        out["history"] = {k: v for k, v in out["history"].items() if k != "seconds"}
    return out


def same_logits(a: torch.nn.Module, b: torch.nn.Module, patch: int) -> float:
    """Largest |logit difference| of two models on the same random pair batch (B, 2, 1, P, P)."""
    x = torch.randn(4, 2, 1, patch, patch, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return float((a.eval()(x)[0] - b.eval()(x)[0]).abs().max())


def make_one(name: str, overrides: dict) -> Path:
    """Train as notebook 01 does (cpu profile, data=name), compact, verify and write data/checkpoints/tap_<name>.pt."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        params = dict(profile="cpu", data=name, seed=SEED, device="cpu", out_dir=tmp, **overrides)
        cfg = course.configure(params, notebook="01")  # the notebook's settings: binning, val_at, profile
        movie = course.load_data(cfg)
        print(f"== {name}: {movie!r}; training {cfg.tap}", flush=True)
        full = Path(tmp) / "full.pt"
        model, history = train_tap([movie], **cfg.tap, device=cfg.device, seed=cfg.seed, checkpoint=full)
        state = to_half(load_checkpoint(full))
    state["meta"] = dict(data=name, seed=SEED, settings=cfg.tap, script="scripts/make_checkpoints.py")
    path = OUT / f"tap_{name}.pt"
    save_checkpoint(state, path)
    diff = same_logits(model, load_tap(path, "cpu"), cfg.tap["patch"])
    print(f"   {time.perf_counter() - start:.0f} s, {path.stat().st_size / 1e6:.1f} MB, "
          f"max |logit diff| float16 vs float32: {diff:.2e}, last history: {last_entry(history)}", flush=True)
    return path


def last_entry(history) -> str:
    """The last epoch's numbers of a training history (dict of lists or list of dicts)."""
    if isinstance(history, dict):
        return str({k: round(v[-1], 4) for k, v in history.items() if isinstance(v, list) and v
                    and isinstance(v[-1], (int, float))})
    return str(history[-1]) if history else "-"


def write_sums() -> None:
    """data/checkpoints/SHA256SUMS for every tap_*.pt (sha256sum -c compatible)."""
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(OUT.glob("tap_*.pt"))]
    (OUT / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    print((OUT / "SHA256SUMS").read_text())


def main(argv: "list[str] | None" = None) -> int:
    """Command line: which datasets, and optionally fewer epochs than the cpu profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--epochs", type=int, default=None, help="override the cpu profile's TAP epochs")
    parser.add_argument("--steps", type=int, default=None, help="override the cpu profile's steps per epoch")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    overrides = {"tap_epochs": args.epochs, "tap_steps_per_epoch": args.steps}  # None keeps the profile's
    OUT.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        make_one(name, overrides)
    write_sums()
    return 0


if __name__ == "__main__":
    sys.exit(main())
