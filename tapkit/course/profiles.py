"""Course profiles: how big each notebook's data and training are (smoke / cpu / gpu)."""

from __future__ import annotations

import copy
import os

PROFILE_ENV = "TAPKIT_PROFILE"
# "1": every count cut to a minimum (--dry-run); "short": steps only (--short)
DRY_RUN_ENV = "TAPKIT_DRY_RUN"
# "1": a resumed run (`tapkit course run --resume`): pretraining continues from its checkpoint
RESUME_ENV = "TAPKIT_RESUME"

# What a dry run keeps of a profile: its architecture, crop and region sizes, learning rates and
# schedules' shapes; what it cuts: every count (frames, steps, pairs, runs, budgets) and the batch.
DRY_RUN = {
    "sim": dict(n_frames=16, size=(128, 128)),
    "tap": dict(epochs=1, steps_per_epoch=2, batch_size=4, val_steps=1),
    # notebook 01's fresh-pair evaluation (1024 pairs of the full U-Net: minutes on a CPU)
    "evaluation": dict(n_pairs=64),
    "gradcam": dict(n_frames=1),
    # enough pairs of each class for every split and budget
    "crops": dict(n_pairs=240, event_fraction=0.3),
    "heads": dict(
        n_runs=1,
        steps_linear=4,
        steps_resnet=4,
        steps_end_to_end=4,
        n_evals=4,
        lr_grid=(1e-3,),
        budgets=(32, 64),
        real_n_pairs=200,
    ),
    "pretext": dict(budgets=(32, 64)),  # notebook 07's label-budget curves
    "own": dict(nucleus_frames=1, export_frames=2),  # notebook 09
    # notebook 08: one run, the smallest budgets, a few steps (the architecture and crop sizes stay)
    "segmentation": dict(
        n_test=4,
        n_val=3,
        n_runs=1,
        budgets=(1, "all"),
        end_to_end_budgets=(1, "all"),
        steps_head=4,
        steps_end_to_end=4,
        n_evals=4,
        lr_grid=(1e-3,),
        lr_grid_end_to_end=None,
        batch_size=4,
        pretrain_steps=2,
        rounds=1,
        steps_per_epoch=1,
        real_n_test=4,
        real_n_val=1,
        real_budgets=(1,),
        real_end_to_end_budgets=(1,),
        real_frames=8,
    ),
}

# What a short run keeps: EVERYTHING of the profile's sizes (movie, batch, patch, crop pairs,
# architecture); what it cuts: steps, epochs, runs and budgets.
# `tapkit course run --profile gpu --short` runs every notebook at the gpu profile's real sizes for
# a few steps each: the GPU check's memory and speed test (numbers mean nothing).
SHORT_RUN = {
    "tap": dict(epochs=1, steps_per_epoch=5, val_steps=2),
    "gradcam": dict(n_frames=2),
    "heads": dict(
        n_runs=1,
        steps_linear=4,
        steps_resnet=4,
        steps_end_to_end=4,
        n_evals=4,
        lr_grid=(1e-3,),
        budgets=(50, 200),
    ),
    "pretext": dict(budgets=(50,)),
    "own": dict(nucleus_frames=1, export_frames=2),
    "segmentation": dict(
        n_runs=1,
        budgets=(1, "all"),
        end_to_end_budgets=(1,),
        steps_head=5,
        steps_end_to_end=4,
        n_evals=4,
        lr_grid=(1e-3,),
        lr_grid_end_to_end=None,
        pretrain_steps=5,
        rounds=1,
        steps_per_epoch=2,
        real_budgets=(1,),
        real_end_to_end_budgets=(1,),
    ),
}


def segmentation(**sizes) -> dict:
    """Notebook 08's settings: label budgets (frames, or 'all' of the pool), runs, head / end-to-end
    training (keywords of segmentation.experiments.budget_sweep), the Siamese U-Net (paper 004) and
    the real-data part."""
    # the fair protocol (tapkit.downstream.protocol): steps per row kind, the same for every budget;
    # validation Dice on n_val held-out frames n_evals times per run (best state kept); lr from
    # lr_grid (= protocol.LR_GRID, the same for every row) chosen on the first seed per row, task
    # and budget; n_runs paired seeds
    base = dict(
        n_test=10,
        n_val=4,
        budgets=(1, 5, "all"),
        end_to_end_budgets=(1, "all"),
        n_runs=3,
        heads=("linear", "conv"),
        steps_head=600,
        steps_end_to_end=200,
        crop=48,
        batch_size=8,
        positive_fraction=0.5,
        train_missing=False,
        n_evals=20,
        lr_grid=(3e-4, 1e-3, 3e-3),
        lr_grid_end_to_end=None,  # None: lr_grid (a shorter grid for both end-to-end rows alike)
        # Siamese consistency: a small U-Net from scratch; paper 004 lrs are 1e-4 / 1e-5, we keep
        # the 10x ratio
        unet=dict(n_depth=2, base_filters=8),
        pretrain_steps=150,
        rounds=3,
        steps_per_epoch=20,
        lr_segmentation=1e-3,
        lr_consistency=1e-4,
        consistency_budget=2,
        deltas=(1,),
        kind="dice",
        real_n_test=5,
        real_n_val=2,
        real_budgets=(1, "all"),
        real_end_to_end_budgets=(1, "all"),
        # frames of the real movie used (None: all; the first N: smoke and dry runs)
        real_frames=None,
        # the pretext tasks whose frozen features are compared (None: tap + every pretext task)
        sources=None,
        fine_tune=True,  # the 'tap fine-tuned' row next to 'from scratch' (no claim needs it)
        frame_pair=True,
    )  # divisions also from frames (t, t+1): 'tap (t, t+1) · <head>', 'from scratch (t, t+1)'
    return {**base, **sizes}


def pretext_tasks(warmup_steps: int) -> dict[str, dict]:
    """Notebook 07's tasks besides TAP: name -> model options (MaskedModel / ContrastiveModel
    keywords)."""
    return {
        "mim": dict(masking="random", mask_patch=8, mask_ratio=0.6),
        "mim-intensity": dict(masking="intensity", mask_patch=8, mask_ratio=0.6),
        "contrastive": dict(temperature=0.2, lam=1.0, warmup_steps=warmup_steps),
    }


# One dict per profile, one section per notebook topic. Notebooks read their section; a teacher
# overrides single values with papermill parameters. Numbers are tuned so that
#   smoke: all notebooks together run in < 10 min on 2 CPU cores (CI),
#   cpu:   meaningful results on 2 idle cores with bf16 instructions: TAP accuracy 0.87-0.95 (seeds
#          0 and 3; docs/MEASUREMENT_NOTES.md); the whole course took 19.4-19.8 min before the fair
#          protocol of the downstream comparisons (bf29446); with it (3 paired runs, lr grid, steps
#          to a plateau) ~2 h (cpu3: 128.7 min for 00-08 at 3959336; 04 28 min, 07 70 min, 08 19
#          min: docs/RESULTS.md): far above its 25-minute target,
#   gpu:   results comparable to the papers on one GPU.
PROFILES: dict[str, dict] = {
    "smoke": {
        "sim": dict(n_frames=24, size=(128, 128)),
        # a small U-Net (same architecture, fewer filters) so CI stays fast; the science needs
        # cpu/gpu
        "tap": dict(
            epochs=2,
            steps_per_epoch=4,
            batch_size=8,
            patch=32,
            val_steps=1,
            augment="default",
            model_kwargs=dict(n_depth=2, base_filters=8),
        ),
        "gradcam": dict(n_frames=2, k=8, inset=32),
        "evaluation": dict(n_pairs=1024),  # notebook 01: TAP accuracy on fresh validation pairs
        "crops": dict(n_pairs=400, size=48, event_fraction=0.3),
        # the fair protocol (downstream/protocol.py) at toy sizes: numbers only show that the code
        # runs
        "heads": dict(
            n_runs=2,
            steps_linear=30,
            steps_resnet=20,
            steps_end_to_end=8,
            n_evals=4,
            lr_grid=(1e-3, 3e-3),
            budgets=(32, 64),
            strategies=("A0", "A1", "B0", "B1", "C0", "C1"),
            criteria_strategies=("A0", "A1"),
            real_n_pairs=200,
            real_strategies=("A1", "B1"),
        ),
        # notebook 07: the other pretext tasks, trained with the `tap` section's sizes and step
        # budget; tasks: name -> model options (keyword names of MaskedModel / ContrastiveModel);
        # strategies: the baselines of compare_strategies (frozen random, end to end); budgets:
        # label_budget_curve's
        "pretext": dict(
            tasks=pretext_tasks(warmup_steps=1), strategies=("B0", "B1", "C1"), budgets=(32, 64)
        ),
        # notebook 09 (your own movie): frames used to estimate the nucleus size, frames whose dense
        # features are exported (None: all), event heads on a movie with a lineage: strategies A0/A1
        "own": dict(nucleus_frames=2, export_frames=4, strategies=("A1",)),
        # notebook 08: tiny sweeps; quick tiny pretext models are trained when no checkpoint exists
        # (smoke: the protocol's code paths with 2 lrs and 4 validation points; nothing converges,
        # numbers mean nothing)
        "segmentation": segmentation(
            n_test=4,
            n_val=3,
            budgets=(1, 2, "all"),
            end_to_end_budgets=(1,),
            n_runs=2,
            steps_head=6,
            steps_end_to_end=4,
            n_evals=4,
            lr_grid=(1e-3, 3e-3),
            crop=32,
            batch_size=4,
            train_missing=True,
            unet=dict(n_depth=2, base_filters=4),
            pretrain_steps=6,
            rounds=1,
            steps_per_epoch=2,
            real_n_test=4,
            real_n_val=1,
            real_budgets=(1, "all"),
            real_end_to_end_budgets=(1,),
            real_frames=8,
        ),
    },
    "cpu": {
        "sim": dict(n_frames=64, size=(256, 256)),
        # the reference U-Net with half the filters (~4x fewer FLOPs) and batch 16 (on 2 cores a
        # step of 16 pairs takes 0.57 s in float32, 0.28-0.33 s in bfloat16 (the default on CPUs
        # with bf16 instructions), one of 32 pairs 1.7 s); lr 3e-3 (1e-3 and 6e-3 learn less in this
        # budget) and NO augmentation: in 800-1000 steps the augmentations cost more than they
        # protect (1024 fresh pairs, seeds 0 and 3: default augmentations 0.73 / 0.76 at 1000 steps,
        # only flips / 90-degree rotations / intensity ('exact') 0.86 / 0.84, none 0.95 / 0.87 at
        # 800 steps); all options: docs/MEASUREMENT_NOTES.md
        # real movies (datasets.REAL_DATA_TAP: every crop normalised on its own) learn more slowly:
        # 20 epochs (HeLa subset, seed 0, per-crop accuracy on the held-out frames: 0.63 after 800
        # steps, 0.73 after 2400; docs/MEASUREMENT_NOTES.md), ~10 min on 2 idle cores
        "tap": dict(
            epochs=8,
            steps_per_epoch=100,
            batch_size=16,
            patch=64,
            val_steps=8,
            lr=3e-3,
            augment="none",
            model_kwargs=dict(base_filters=16),
            real_epochs=20,
        ),
        # regions half as wide as the training crops (about two nuclei): 48 px boxes dilute the
        # score
        "gradcam": dict(n_frames=8, k=8, inset=32),
        "evaluation": dict(n_pairs=1024),  # notebook 01: TAP accuracy on fresh validation pairs
        "crops": dict(n_pairs=3000, size=48, event_fraction=0.0),
        # event heads by the fair protocol: fixed steps per row kind at every budget
        # (lr on a cosine to 0), best on validation, lr from one grid chosen on validation
        # (first seed), 3 paired runs. ResNet heads 1000 steps (at 400 their validation F1 still
        # rose by 2-4 % in the last quarter; ~40 ms a step; at 2000, A1 test F1 +0.022
        # [-0.039, +0.083] and still not converged by the 2 % rule: docs/MEASUREMENT_NOTES.md). C0
        # is left out here (a C run is 240 steps of the whole U-Net on 32 crop pairs, ~70-100 s on 2
        # cores; C1 is the paper's end-to-end row of the label-budget claim); 001-a1-best then says
        # that part is missing
        "heads": dict(
            n_runs=3,
            steps_linear=300,
            steps_resnet=1000,
            steps_end_to_end=240,
            n_evals=10,
            lr_grid=(3e-4, 1e-3, 3e-3),
            budgets=(20, 200),
            strategies=("A0", "A1", "B0", "B1", "C1"),
            criteria_strategies=(
                "A0",
            ),  # notebook 03's Table 5: the linear head (a ResNet run: ~40 s)
            real_n_pairs=600,
            real_strategies=("A1", "B1"),
        ),  # section 7: HeLa divisions from masks
        # shipped checkpoints tapkit/checkpoints/<task>_simulated.pt are made with exactly these
        # settings (scripts/make_checkpoints.py); warm-up: the first 10 % of the 800 steps
        "pretext": dict(
            tasks=pretext_tasks(warmup_steps=80), strategies=("B0", "B1", "C1"), budgets=(50, 200)
        ),
        "own": dict(nucleus_frames=4, export_frames=16, strategies=("A0", "A1", "B1")),
        # notebook 08: pretext tasks without a checkpoint are skipped, not trained. The fair
        # protocol at the smallest scope that tests the claims (000, 002 x3): the conv head only on
        # the features of TAP, MIM, MIM-intensity and a random encoder (contrastive: notebook 07),
        # budgets 1 / 12 (~25 % of the 50-frame pool) / all; heads 200 steps (~30 ms each on 2 idle
        # cores), the from-scratch U-Net 300 steps (~55 ms each on crops of 48 px, batch 8; no
        # fine-tuned row), the SAME lr grid for every row (chosen at the first budget); validation
        # 10 times per run
        "segmentation": segmentation(
            heads=("conv",),
            budgets=(1, 12, "all"),
            steps_head=200,
            steps_end_to_end=300,
            n_evals=10,
            real_end_to_end_budgets=(1,),
            sources=("tap", "mim", "mim-intensity"),
            fine_tune=False,
        ),
    },
    "gpu": {
        "sim": dict(n_frames=100, size=(512, 512)),
        "tap": dict(
            epochs=40,
            steps_per_epoch=200,
            batch_size=128,
            patch=96,
            val_steps=20,
            augment="default",
        ),
        "gradcam": dict(n_frames=8, k=8, inset=48),
        "evaluation": dict(n_pairs=1024),  # notebook 01: TAP accuracy on fresh validation pairs
        "crops": dict(n_pairs=20000, size=48, event_fraction=0.0),
        "heads": dict(
            n_runs=10,
            steps_linear=2000,
            steps_resnet=2000,
            steps_end_to_end=2000,
            n_evals=20,
            lr_grid=(3e-4, 1e-3, 3e-3),
            budgets=(20, 50, 100, 200, 500, 1000, 2000),
            strategies=("A0", "A1", "B0", "B1", "C0", "C1"),
            criteria_strategies=("A0", "A1"),
            real_n_pairs=2000,
            real_strategies=("A1", "B1", "C1"),
        ),
        "pretext": dict(
            tasks=pretext_tasks(warmup_steps=800),
            strategies=("B0", "B1", "C0", "C1"),
            budgets=(50, 200, 1000),
        ),
        "own": dict(nucleus_frames=8, export_frames=None, strategies=("A0", "A1", "B1")),
        # the full protocol (every lr of the grid for every row); 5 runs, not 10: not yet measured
        # on a GPU
        "segmentation": segmentation(
            n_test=25,
            n_val=8,
            budgets=(1, 2, 5, 10, 25, "all"),
            end_to_end_budgets=(1, 2, 5, 10, "all"),
            n_runs=5,
            steps_head=1000,
            steps_end_to_end=1500,
            crop=96,
            batch_size=16,
            train_missing=True,
            real_n_val=2,
            unet=dict(n_depth=3, base_filters=32),
            pretrain_steps=1000,
            rounds=10,
            steps_per_epoch=100,
            lr_segmentation=1e-4,
            lr_consistency=1e-5,
        ),
    },
}


def tap_for_data(tap: dict, recipe: dict) -> dict:
    """A profile's `tap` section for one movie: `recipe` (datasets.recommended(data)['tap']) on top
    and, for a real movie (a recipe), the profile's `real_epochs` as its epochs (not in a dry or
    short run); `real_epochs` removed."""
    out = {**tap, **recipe}
    real_epochs = out.pop("real_epochs", None)
    if recipe and real_epochs is not None and not is_dry_run():
        out["epochs"] = real_epochs
    return out


def resolve_profile(profile: str = "auto") -> str:
    """Turn 'auto' into a concrete profile: $TAPKIT_PROFILE if set, else 'gpu' with CUDA, else
    'cpu'."""
    name = (profile or "auto").lower()
    if name == "auto":
        name = os.environ.get(PROFILE_ENV, "").lower() or "auto"
    if name == "auto":
        import torch

        name = "gpu" if torch.cuda.is_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {profile!r}. Choose one of: auto, {', '.join(PROFILES)} "
            f"(or set the environment variable {PROFILE_ENV})."
        )
    return name


def is_dry_run() -> bool:
    """True when $TAPKIT_DRY_RUN asks for a dry or short run
    (`tapkit course run --dry-run` / `--short`)."""
    return os.environ.get(DRY_RUN_ENV, "") not in ("", "0")


def is_short_run() -> bool:
    """True when $TAPKIT_DRY_RUN asks for a short run (`tapkit course run --short`: real sizes, few
    steps)."""
    return os.environ.get(DRY_RUN_ENV, "") == "short"


def dry_run(settings: dict) -> dict:
    """A profile's settings with counts cut: DRY_RUN (counts and batch) or, when
    $TAPKIT_DRY_RUN=short, SHORT_RUN."""
    out = copy.deepcopy(settings)
    cuts = SHORT_RUN if is_short_run() else DRY_RUN
    for section, cut in cuts.items():
        if section in out:
            out[section].update(cut)
    return out


def get_profile(profile: str = "auto") -> dict:
    """A deep copy of the settings of a profile ('auto' resolved first; counts cut in a dry run)."""
    settings = copy.deepcopy(PROFILES[resolve_profile(profile)])
    return dry_run(settings) if is_dry_run() else settings
