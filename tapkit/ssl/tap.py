"""The time-arrow pretext task (TAP): a time-equivariant head on the U-Net, and its loss.

    x (B, T, 1, Y, X) --U-Net--> (B*T, C, Y, X) --1x1 conv + BN--> z (B, T, F, Y, X)
      --TimeArrowHead (permutation-equivariant over T)--> logits (B, T)

    L = CE(logits, slot of the earliest frame) + lam * L_decorr(z)
        (TAP, paper 000; written as eq. 4 in paper 001)
    L_decorr(z) = -1/C sum_i log a_ii,  a_ij = softmax_j(z_i . z_j / tau)    (paper 001, eq. 5)

with z_i the i-th feature channel (over all pixels), normalised to unit length.
The dense projections `z` are the self-supervised features used downstream.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.stats import binomtest

from tapkit.data.movie import InputError, Movie
from tapkit.runtime import autocast, pick_device
from tapkit.ssl.pretext import PretextModel
from tapkit.ssl.sampler import PairSampler, normalize_crops, region_fits

__all__ = [
    "EquivariantLayer",
    "TimeArrowHead",
    "TAPNet",
    "flip_pairs",
    "decorrelation_loss",
    "tap_loss",
    "evaluate_tap",
    "held_out_checks",
    "checks_warnings",
    "accuracy_warnings",
    "train_with_flip",
]


class EquivariantLayer(nn.Module):
    """Permutation-equivariant 1x1 layer over frame slots: y_t = L(x_t) + mean_s G(x_s)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.local = nn.Conv2d(in_features, out_features, 1)
        self.shared = nn.Conv2d(in_features, out_features, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C_in, Y, X) -> (B, T, C_out, Y, X)."""
        b, t = x.shape[:2]
        flat = x.flatten(0, 1)  # (B*T, C_in, Y, X)
        loc = self.local(flat).unflatten(0, (b, t))  # (B, T, C_out, Y, X)
        glob = self.shared(flat).unflatten(0, (b, t)).mean(1, keepdim=True)  # (B, 1, C_out, Y, X)
        return loc + glob


class TimeArrowHead(nn.Module):
    """Time-equivariant classifier: (B, T, F, Y, X) -> logits (B, T); swapping frames swaps
    logits."""

    def __init__(self, in_features: int, features: int = 64, n_depth: int = 1) -> None:
        super().__init__()
        layers, prev = [], in_features
        for _ in range(n_depth):
            layers.append(
                nn.ModuleDict(
                    dict(eq=EquivariantLayer(prev, features), norm=nn.BatchNorm2d(features))
                )
            )
            prev = features
        self.blocks = nn.ModuleList(layers)
        self.act = nn.LeakyReLU(0.1)
        self.last = EquivariantLayer(prev, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T, F, Y, X) -> (B, T) logits, one per frame slot."""
        h = z
        for block in self.blocks:
            h = block["eq"](h)  # (B, T, C, Y, X)
            # batch norm with statistics pooled over all B*T slots keeps the layer equivariant
            h = self.act(block["norm"](h.flatten(0, 1)).unflatten(0, h.shape[:2]))
        h = h.mean(dim=(-2, -1), keepdim=True)  # (B, T, C, 1, 1) spatial average pooling
        return self.last(h).flatten(2).squeeze(2)  # (B, T)


class TAPNet(PretextModel):
    """Time arrow prediction: the shared encoder (dense features z) + a time-equivariant head on
    frame pairs."""

    name = "tap"

    def __init__(
        self,
        n_depth: int = 3,
        base_filters: int = 32,
        n_features: int = 32,
        backbone_features: int = 32,
        head_features: int = 64,
        head_depth: int = 1,
        in_channels: int = 1,
        seed: int | None = None,
        lam: float = 0.01,
        tau: float = 0.2,
    ) -> None:
        if not (0 <= lam < float("inf") and 0 < tau < float("inf")):  # NaN and inf too
            raise InputError(
                f"TAPNet: lam={lam} must be >= 0 (the decorrelation weight; the paper uses 0.01) "
                f"and tau={tau} > 0 (the paper uses 0.2)."
            )
        super().__init__(
            n_depth,
            base_filters,
            n_features,
            backbone_features,
            in_channels,
            seed,
            head_features=head_features,
            head_depth=head_depth,
            lam=lam,
            tau=tau,
        )

    def build_head(self, head_features: int, head_depth: int, **_: Any) -> None:
        """The time-equivariant classifier on (B, T, F, Y, X)."""
        self.head = TimeArrowHead(self.n_features, head_features, head_depth)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C, Y, X) -> (logits (B, T), z (B, T, F, Y, X))."""
        if x.ndim != 5:
            raise InputError(
                f"TAPNet expects (B, T, C, Y, X) frame stacks, got shape {tuple(x.shape)}; "
                "a pair of (Y, X) frames becomes torch.stack([f0, f1])[None, :, None]."
            )
        b, t = x.shape[:2]
        z = self.embed(x.flatten(0, 1)).unflatten(0, (b, t))  # (B, T, F, Y, X)
        return self.head(z), z

    def make_batch(
        self, crops: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Swap the two frames of each pair with probability 0.5; the target is the slot of the
        earlier frame."""
        flip = torch.rand(len(crops), generator=generator, device=generator.device) < 0.5  # (B,)
        return {"x": flip_pairs(crops, flip), "y": flip.long()}

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """CE on the time arrow + lam * decorrelation of z; metrics: accuracy and decorr."""
        logits, z = self(batch["x"])  # (B, 2), (B, 2, F, P, P)
        total, _, decorr = tap_loss(
            logits.float(), batch["y"], z.float(), lam=self.config["lam"], tau=self.config["tau"]
        )
        accuracy = (logits.argmax(1) == batch["y"]).float().mean()
        return total, {"accuracy": accuracy, "decorr": decorr.detach()}


def flip_pairs(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Pairs (B, 2, ...) with the two frames swapped where flip (B,) is True."""
    return torch.where(flip.view(-1, *[1] * (x.ndim - 1)), x.flip(1), x)


def decorrelation_loss(z: torch.Tensor, tau: float = 0.2) -> torch.Tensor:
    """Mean over samples of -mean_i log softmax_j(z_i . z_j / tau)_ii for z (..., F, Y, X); minimal
    if channels orthogonal."""
    if z.ndim < 3:
        raise InputError(
            f"decorrelation_loss expects features (..., F, Y, X), got shape {tuple(z.shape)}."
        )
    if tau <= 0:
        raise InputError(f"decorrelation_loss: tau must be > 0, got {tau} (the paper uses 0.2).")
    zf = z.float().flatten(-2)  # (..., F, N) channels over pixels, float32 even under autocast
    zf = zf.reshape(-1, *zf.shape[-2:])  # (S, F, N) one matrix per sample (and frame)
    zf = F.normalize(zf, dim=-1)  # unit-length channels
    corr = zf @ zf.transpose(-1, -2) / tau  # (S, F, F)
    log_a = F.log_softmax(corr, dim=-1)
    return -torch.diagonal(log_a, dim1=-2, dim2=-1).mean()


def tap_loss(
    logits: torch.Tensor, target: torch.Tensor, z: torch.Tensor, lam: float = 0.01, tau: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, ce, decorr) for logits (B, T), target (B,) = slot of the earliest frame, z
    (B, T, F, Y, X)."""
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise InputError(
            f"tap_loss: logits must be (B, T) and target (B,), got {tuple(logits.shape)} "
            f"and {tuple(target.shape)}."
        )
    ce = F.cross_entropy(logits.float(), target.long())
    decorr = decorrelation_loss(z, tau=tau)
    return ce + lam * decorr, ce, decorr


@torch.no_grad()
def evaluate_tap(
    model: TAPNet,
    movies: "Movie | np.ndarray | Sequence",
    n_pairs: int = 1024,
    patch: int = 96,
    split: str = "val",
    delta: "int | Sequence[int]" = (1,),
    val_fraction: float = 0.1,
    val_at: str = "start",
    batch_size: int = 64,
    seed: int = 0,
    device: "str | torch.device | None" = None,
    per_frame: bool = True,
    per_crop: bool = False,
    val_region: float = 0.0,
) -> dict:
    """TAP accuracy on fresh pairs: overall (with a 95 % interval), on crops with / without events,
    per frame pair.

    `split`: "val" (the frames held out by val_fraction / val_at), "train" or "region" (the region
    of the training frames held out by `val_region`, as `train(..., val_region=...)` used).
    `accuracy_by_t` maps each earlier frame t to the accuracy on its pairs: crops of one frame pair
    share frame-level quirks, so look at how many frame pairs are above chance
    (`pairs_above_chance`), not only the mean; `accuracy_ci` is the Wilson interval over crop pairs,
    too narrow when the frame pairs disagree. `per_crop=True` rescales every crop by its own
    percentiles first: no frame-wide intensity cue is left.
    """
    device = (
        next(model.parameters()).device if device is None else pick_device(device, verbose=False)
    )
    sampler = PairSampler(
        movies,
        patch=patch,
        delta=delta,
        batch_size=batch_size,
        split=split,
        val_fraction=val_fraction if split != "train" else 0.0,
        val_at=val_at,
        augment=False,
        device=device,
        seed=seed,
        per_frame=per_frame,
        val_region=val_region,
    )
    model.eval()
    flips = torch.Generator(device=device).manual_seed(seed)
    correct, events, times = [], [], []
    for _ in range(max(1, -(-n_pairs // batch_size))):
        crops, info = sampler.sample(with_events=True)
        batch = model.make_batch(crops, flips)
        x = normalize_crops(batch["x"]) if per_crop else batch["x"]
        # the precision of training (bfloat16 on a GPU or a CPU with bf16 instructions)
        with autocast(device):
            correct.append((model(x)[0].argmax(1) == batch["y"]).cpu())
        events.append(
            info["has_event"].cpu()
            if "has_event" in info
            else torch.zeros(len(crops), dtype=torch.bool)
        )
        times.append(info["t"].cpu())
    correct, events, times = (torch.cat(v)[:n_pairs] for v in (correct, events, times))
    by_t = {int(t): correct[times == t].float().mean().item() for t in times.unique()}
    ci = binomtest(int(correct.sum()), len(correct)).proportion_ci(
        confidence_level=0.95, method="wilson"
    )
    out = {
        "accuracy": correct.float().mean().item(),
        "n_pairs": len(correct),
        "n_event_pairs": int(events.sum()),
        "accuracy_ci": (float(ci.low), float(ci.high)),
        "accuracy_by_t": by_t,
        "pairs_above_chance": (sum(v > 0.5 for v in by_t.values()), len(by_t)),
    }
    if events.any():
        out["accuracy_event"] = correct[events].float().mean().item()
    if (~events).any():
        out["accuracy_no_event"] = correct[~events].float().mean().item()
    return out


def held_out_checks(
    model: TAPNet,
    movie: Movie,
    val_region: float = 0.0,
    frames: "dict | None" = None,
    **evaluate: Any,
) -> dict[str, dict]:
    """{'held-out frames': ..., 'held-out region': ...}: `evaluate_tap` results with every crop
    normalised on its own.

    The region is checked when `val_region` > 0 and fits the frames (`sampler.region_fits`, as
    training decided); `frames`: the held-out frames' result when already computed with
    per_crop=True. `evaluate`: evaluate_tap's n_pairs, patch, seed, val_at.
    """
    checks = {"held-out frames": frames or evaluate_tap(model, [movie], per_crop=True, **evaluate)}
    if val_region > 0 and region_fits(movie.shape[-1], evaluate.get("patch", 96), val_region):
        checks["held-out region"] = evaluate_tap(
            model, [movie], split="region", per_crop=True, val_region=val_region, **evaluate
        )
    return checks


def checks_warnings(checks: dict[str, dict]) -> list[str]:
    """The `accuracy_warnings` of every check of `held_out_checks`, each line once."""
    found = list(
        dict.fromkeys(w for name, res in checks.items() for w in accuracy_warnings(res, name))
    )
    return sorted(found, key=lambda w: w == WHAT_TO_TRY)  # the advice once, last


WHAT_TO_TRY = (
    "What to try: normalise every crop on its own (tap_per_crop=True, the default for real data), "
    "intensity augmentations (tap_augment='default'), a larger content view "
    "(binning or tap_patch), more steps (tap_epochs); notebook 01, section 8 (frame-level cues, "
    "and a recipe for real movies)."
)
# a frame pair scored below this is wrong as a whole: a frame-level cue, not cells
CUE_PAIR_ACCURACY = 0.2


def accuracy_warnings(scores: dict, what: str = "held-out pairs") -> list[str]:
    """Plain warnings for an `evaluate_tap` result: not above chance, or whole frame pairs scored
    (almost) all wrong."""
    found = []
    low, high = scores["accuracy_ci"]
    if low <= 0.5:
        found.append(
            f"TAP accuracy on {what} is {scores['accuracy']:.2f} (95 % interval "
            f"{low:.2f}-{high:.2f}): not clearly above chance (0.5), so the network has not "
            "learned the time arrow of these cells."
        )
    wrong = {t: a for t, a in scores["accuracy_by_t"].items() if a < CUE_PAIR_ACCURACY}
    if wrong:
        listed = ", ".join(f"t={t}: {a:.2f}" for t, a in sorted(wrong.items()))
        found.append(
            f"on {what}, the frame pair(s) from frame {listed} are scored almost all wrong. Cells "
            "cannot make a whole frame pair wrong; a cue shared by the whole frame can "
            "(brightness, focus, density): a shortcut."
        )
    if found:
        found.append(WHAT_TO_TRY)
    return found


def train_with_flip(
    movies: "Movie | np.ndarray | Sequence",
    flip_fn: Callable,
    steps: int = 40,
    patch: int = 32,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    val_at: str = "start",
    n_val: int = 256,
    eval_every: int = 10,
    device: "str | torch.device" = "cpu",
    model_kwargs: "dict | None" = None,
) -> tuple[TAPNet, dict[str, list]]:
    """A short TAP training whose batches `flip_fn(x, flip) -> (x_flipped, labels)` makes
    (notebook 01's exercise).

    Training pairs come unaugmented in time order from `PairSampler`; `flip_fn` swaps them and
    labels them. The validation pairs are flipped and labelled by the course (`TAPNet.make_batch`),
    so labels that do not say which slot holds the earlier frame show as a validation accuracy at or
    below chance, whatever the training accuracy.
    history: 'step', 'loss', 'accuracy' (training, per step), 'val_step', 'val_accuracy'
    (every `eval_every` steps).
    """
    device = pick_device(device, verbose=False)
    sampler = PairSampler(
        movies,
        patch=patch,
        batch_size=batch_size,
        val_at=val_at,
        augment=False,
        device=device,
        seed=seed,
    )
    model = TAPNet(seed=seed, **(model_kwargs or {})).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    flips = torch.Generator(device=device).manual_seed(seed + 1)
    history: dict[str, list] = {
        "step": [],
        "loss": [],
        "accuracy": [],
        "val_step": [],
        "val_accuracy": [],
    }
    for step in range(1, int(steps) + 1):
        crops, _ = sampler.sample()
        flip = torch.rand(len(crops), generator=flips, device=device) < 0.5
        x, y = flip_fn(crops, flip)
        model.train()
        # the precision of training (bfloat16 on a GPU or a CPU with bf16 instructions)
        with autocast(device):
            logits, z = model(x)
        loss, _, _ = tap_loss(logits.float(), y, z.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history["step"].append(step)
        history["loss"].append(loss.item())
        history["accuracy"].append(float((logits.argmax(1) == y).float().mean()))
        if step % eval_every == 0 or step == steps:
            history["val_step"].append(step)
            history["val_accuracy"].append(
                evaluate_tap(
                    model,
                    movies,
                    n_pairs=n_val,
                    patch=patch,
                    seed=seed,
                    val_at=val_at,
                    device=device,
                )["accuracy"]
            )
    return model.eval(), history
