"""Event-recognition heads on TAP features and the training strategies A0-C1 of Chen et al. 2024.

    crop pair (B, 2, S, S) --encoder (U-Net + projection)--> z (B, 2, F, S, S) --head--> logits (B, 2)

Strategies (paper Table 2): the letter picks the features, the digit the head.
    A = TAP backbone, frozen       B = random backbone, frozen       C = random backbone, trained end to end
    0 = linear head                1 = ResNet head (one conv layer + one residual block, App. C / Fig. 7)

For frozen backbones (A, B) the features of every crop are computed once (batched, no gradients,
stored as float16) and only the head is trained on them; C trains the whole network on the images.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from tapkit.downstream.events.crops import CropPairs, Split, as_split, split_pairs
from tapkit.runtime import autocast, pick_device
from tapkit.data.movie import InputError

STRATEGIES = ("A0", "A1", "B0", "B1", "C0", "C1")
FEATURES = {"A": "TAP (frozen)", "B": "random (frozen)", "C": "random (trained)"}
HEADS = {"0": "linear", "1": "ResNet"}
PAPER_EPOCHS = {"linear": 10, "resnet": 30}  # the paper's schedule (Table 2 caption)
# Adam learning rates (the paper gives none): a linear probe on standardised features needs larger
# steps to converge in a few epochs; anything that trains convolutions uses the usual 1e-3.
LEARNING_RATES = {"linear": 1e-2, "resnet": 1e-3, "end_to_end": 1e-3}

# Paper 001, Table 2: mean and std over 10 runs, classes (0 = no event, 1 = event).
PAPER_TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "A0": dict(precision=(0.98, 0.50), precision_std=(0.00, 0.04), recall=(0.87, 0.85), recall_std=(0.03, 0.03)),
    "A1": dict(precision=(0.98, 0.70), precision_std=(0.00, 0.03), recall=(0.94, 0.89), recall_std=(0.01, 0.03)),
    "B0": dict(precision=(0.95, 0.34), precision_std=(0.04, 0.20), recall=(0.60, 0.67), recall_std=(0.32, 0.36)),
    "B1": dict(precision=(0.97, 0.50), precision_std=(0.01, 0.08), recall=(0.87, 0.80), recall_std=(0.07, 0.05)),
    "C0": dict(precision=(0.97, 0.60), precision_std=(0.00, 0.02), recall=(0.92, 0.82), recall_std=(0.01, 0.01)),
    "C1": dict(precision=(0.98, 0.57), precision_std=(0.01, 0.08), recall=(0.90, 0.86), recall_std=(0.04, 0.05)),
}
# Paper 001, Table 5: (criterion, head) -> precision / recall means per class, and (train, test) positives.
PAPER_TABLE5: dict[tuple[str, str], dict[str, tuple]] = {
    ("any-both", "linear"): dict(precision=(0.98, 0.39), recall=(0.85, 0.87), positives=(5858, 1867)),
    ("any-both", "ResNet"): dict(precision=(0.99, 0.52), recall=(0.91, 0.89), positives=(5858, 1867)),
    ("any-either", "linear"): dict(precision=(0.96, 0.47), recall=(0.80, 0.83), positives=(9946, 3284)),
    ("any-either", "ResNet"): dict(precision=(0.97, 0.72), recall=(0.93, 0.86), positives=(9946, 3284)),
    ("size-either", "linear"): dict(precision=(0.98, 0.50), recall=(0.87, 0.85), positives=(7467, 2470)),
    ("size-either", "ResNet"): dict(precision=(0.98, 0.70), recall=(0.94, 0.89), positives=(7467, 2470)),
}


# ----------------------------------------------------------------------------- modules


class Encoder(nn.Module):
    """The dense feature map f: U-Net backbone + 1x1 projection, (N, 1, S, S) -> (N, F, S, S)."""

    def __init__(self, backbone: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.backbone, self.projection = backbone, projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) -> (N, F, S, S)."""
        return self.projection(self.backbone(x))


class LinearHead(nn.Module):
    """One linear map on features averaged over time and space: (B, 2, F, S, S) -> (B, 2) logits.

    Why pooled, not flattened: a flattened map would have 2*F*S*S (~150k) weights per class and learn
    *where* in the crop an event sits, overfitting small label sets; the average keeps F + 1 weights
    per class and, like the ResNet head, is invariant to swapping the frames. The features are
    standardised first (a fixed affine map at inference), so the whole head stays one linear map.
    """

    def __init__(self, n_features: int = 32) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_features, affine=False)
        self.fc = nn.Linear(n_features, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 2, F, S, S) -> (B, 2)."""
        pooled = z.mean(dim=(1, 3, 4))  # (B, F) mean over time and space
        return self.fc(self.norm(pooled))


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the identity shortcut, then ReLU: (N, C, Y, X) -> (N, C, Y, X)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, Y, X) -> (N, C, Y, X)."""
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(h)))


def _batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 64) -> None:
    """Recompute every trainable BatchNorm's running statistics for the final weights, on inputs x.

    The running averages collected during training mix statistics of old weights; after a short
    fine-tuning they can be far off and the model then predicts one class in eval mode.
    """
    norms = [m for m in _batchnorms(module) if m.training or any(p.requires_grad for p in m.parameters())]
    if not norms or len(x) < 2:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # exact average over the batches below
    module.train()
    for i in range(0, len(x) - 1, batch_size):
        with autocast(device):
            module(x[i:i + batch_size].to(device).float())
    for m in norms:
        m.momentum = 0.1


class ResNetHead(nn.Module):
    """Paper App. C: one conv layer, one residual block per frame, temporal mean, global pool, 2 logits.

    (B, 2, F, S, S) -> conv 3x3 stride 2 -> residual block -> mean over the 2 frames (time invariant)
    -> global average pool -> linear -> (B, 2). Stride 2 halves S to keep the head cheap.
    """

    def __init__(self, n_features: int = 32, width: int = 32, stride: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(n_features, width, 3, stride=stride, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.block = ResidualBlock(width)
        self.fc = nn.Linear(width, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 2, F, S, S) -> (B, 2)."""
        b, t = z.shape[:2]
        h = self.block(self.stem(z.flatten(0, 1)))  # (B*2, W, S/2, S/2)
        h = h.unflatten(0, (b, t)).mean(dim=1)  # (B, W, S/2, S/2) temporal mean pooling
        return self.fc(h.mean(dim=(-2, -1)))  # (B, W) -> (B, 2)


class EventClassifier(nn.Module):
    """Encoder + head on a crop pair: images (B, 2, S, S) -> logits (B, 2)."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 2, S, S) -> z (B, 2, F, S, S)."""
        b, t = images.shape[:2]
        return self.encoder(images.flatten(0, 1)[:, None]).unflatten(0, (b, t))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 2, S, S) -> (B, 2)."""
        return self.head(self.features(images))


@dataclass
class StrategyResult:
    """One trained strategy: test/val logits, per-class precision/recall, the model and its history."""

    strategy: str
    precision: np.ndarray  # (2,) class 0, class 1 on the test set
    recall: np.ndarray  # (2,)
    confusion: np.ndarray  # (2, 2) rows = actual, columns = predicted
    val_logits: np.ndarray  # (Nv, 2)
    val_labels: np.ndarray  # (Nv,)
    test_logits: np.ndarray  # (Nt, 2)
    test_labels: np.ndarray  # (Nt,)
    test_index: np.ndarray  # (Nt,) indices into the CropPairs
    model: EventClassifier
    history: dict[str, list[float]]
    val_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    seed: int = 0
    n_train: int = 0

    def __repr__(self) -> str:
        p, r = np.round(self.precision, 3).tolist(), np.round(self.recall, 3).tolist()
        return f"StrategyResult({self.strategy}, seed={self.seed}, n_train={self.n_train}, precision={p}, recall={r})"


# ----------------------------------------------------------------------------- building blocks


def parse_strategy(strategy: str) -> tuple[str, str]:
    """'A1' -> ('A', 'resnet'); raise InputError for anything but A0..C1."""
    name = str(strategy).upper()
    if name not in STRATEGIES:
        raise InputError(f"Unknown strategy {strategy!r}. Choose one of: {', '.join(STRATEGIES)} "
                         "(A = TAP frozen, B = random frozen, C = random trained; 0 = linear, 1 = ResNet head).")
    return name[0], "linear" if name[1] == "0" else "resnet"


def make_encoder(kind: str, tap_model: nn.Module | None, seed: int) -> Encoder:
    """A: a frozen copy of the TAP encoder; B/C: the same architecture, Kaiming-uniform init from seed."""
    from tapkit.ssl.tap import TAPNet

    if kind == "A":
        if tap_model is None:
            raise InputError("Strategy A needs the pretrained TAP model: pass tap_model=... "
                             "(tapkit.course.get_tap_model(cfg) or tapkit.ssl.trainer.load_tap(path)).")
        src = tap_model
    else:
        config = dict(getattr(tap_model, "config", {}) or {})
        src = TAPNet(**{**config, "seed": int(seed)})  # PyTorch default init, reproducible
    encoder = Encoder(copy.deepcopy(src.backbone), copy.deepcopy(src.projection)).float()
    encoder = encoder.to(memory_format=torch.channels_last)  # ~1.5x faster convolutions on CPU
    if kind in "AB":
        encoder.requires_grad_(False).eval()
    return encoder


def make_head(head: str, n_features: int, seed: int) -> nn.Module:
    """A LinearHead or ResNetHead with weights drawn from `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return LinearHead(n_features) if head == "linear" else ResNetHead(n_features)


def n_features_of(encoder: Encoder) -> int:
    """Number of feature channels F the encoder produces."""
    convs = [m for m in encoder.projection.modules() if isinstance(m, nn.Conv2d)]
    return int(convs[-1].out_channels)


@torch.inference_mode()
def compute_features(encoder: nn.Module, images: np.ndarray, device: "str | torch.device" = "auto",
                     batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """Features of crop pairs, (N, 2, S, S) -> (N, 2, F, S, S) float16, kept on the device."""
    device = pick_device(device, verbose=False) if not isinstance(device, torch.device) else device
    encoder = encoder.to(device).eval()
    model = EventClassifier(encoder, nn.Identity())
    out = []
    for i in tqdm(range(0, len(images), batch_size), desc="features", disable=not progress, leave=False):
        x = torch.as_tensor(images[i:i + batch_size], device=device)  # (b, 2, S, S)
        with autocast(device):
            out.append(model.features(x).half())  # (b, 2, F, S, S)
    return torch.cat(out)


def cached_features(cache: dict | None, key: Any, encoder: nn.Module, pairs: CropPairs, index: np.ndarray,
                    device: torch.device) -> torch.Tensor:
    """Features of pairs[index]; cache[key] = (sorted indices, features) grows by the missing pairs only."""
    have, feats = cache.get(key, (np.zeros(0, np.int64), None)) if cache is not None else (np.zeros(0, np.int64), None)
    missing = np.setdiff1d(index, have)
    if len(missing):
        new = compute_features(encoder, pairs.images[missing], device)
        have, order = np.unique(np.concatenate([have, missing]), return_index=True)
        feats = new if feats is None else torch.cat([feats, new])
        feats = feats[torch.as_tensor(order, device=feats.device)]
        if cache is not None:
            cache[key] = (have, feats)
    return feats[torch.as_tensor(np.searchsorted(have, index), device=feats.device)]


# ----------------------------------------------------------------------------- training


def epochs_for(strategy: str, epochs: "int | Mapping[str, int] | None" = None) -> int:
    """Epochs of a strategy: None = paper (linear 10, ResNet 30); an int; or a dict linear/resnet/end_to_end."""
    kind, head = parse_strategy(strategy)
    if epochs is None:
        n = PAPER_EPOCHS[head]
    elif isinstance(epochs, Mapping):
        keys = (["end_to_end", "epochs_end_to_end"] if kind == "C" else []) + [head, f"epochs_{head}"]
        found = [epochs[k] for k in keys if k in epochs]
        n = found[0] if found else PAPER_EPOCHS[head]
    else:
        n = epochs
    if int(n) < 1:
        raise InputError(f"epochs must be at least 1 for strategy {strategy}, got {n}.")
    return int(n)


def _check_inputs(pairs: CropPairs, labels: Any, split: Any) -> tuple[np.ndarray, Split]:
    """Labels as int64 matching the pairs, a valid split with both classes in train; InputError otherwise."""
    if not isinstance(pairs, CropPairs):
        raise InputError(f"pairs must be a tapkit.downstream.events.crops.CropPairs (from crop_pairs), got {type(pairs).__name__}.")
    lab = np.asarray(labels).astype(np.int64)
    if lab.shape != (len(pairs),):
        raise InputError(f"labels have shape {lab.shape} but there are {len(pairs)} pairs; label the same "
                         "pairs with tapkit.downstream.events.crops.label_pairs(pairs, criterion).")
    sp = as_split(split)
    for part in ("train", "val", "test"):
        idx = sp[part]
        if len(idx) == 0 or idx.min() < 0 or idx.max() >= len(pairs):
            raise InputError(f"split['{part}'] must hold indices 0..{len(pairs) - 1} and not be empty; "
                             "make the split with tapkit.downstream.events.crops.split_pairs(labels).")
    if lab[sp.train].min() == lab[sp.train].max():
        raise InputError("The training set holds one class only. Cut more pairs, use a looser criterion "
                         "('any-either') or a lower size threshold, or a movie with more events.")
    return lab, sp


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches; a last batch of one sample is dropped (batch norm needs two)."""
    perm = torch.randperm(n, generator=generator)
    out = list(perm.split(batch_size))
    return out[:-1] if len(out) > 1 and len(out[-1]) == 1 else out


@torch.inference_mode()
def predict(module: nn.Module, inputs: torch.Tensor, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Logits (N, 2) float32 of a head (on features) or a classifier (on images), batched."""
    module.eval()
    out = []
    for i in range(0, len(inputs), batch_size):
        with autocast(device):
            out.append(module(inputs[i:i + batch_size].to(device).float()).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 2), np.float32)


def train_module(module: nn.Module, x: torch.Tensor, y: np.ndarray, x_val: torch.Tensor, y_val: np.ndarray,
                 epochs: int, seed: int, device: torch.device, batch_size: int = 32, lr: float = 1e-3,
                 track_val: bool = False) -> tuple[dict, np.ndarray]:
    """Adam + cross-entropy for `epochs`; returns the history and the final validation logits.

    track_val: evaluate on the validation set after every epoch (else only after the last one).
    """
    module.to(device)
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr)
    gen, yt = torch.Generator().manual_seed(int(seed)), torch.as_tensor(y, device=device)
    hist: dict[str, list[float]] = {"train_loss": [], "val_epoch": [], "val_loss": [], "val_accuracy": []}
    for epoch in range(epochs):
        module.train()
        losses = []
        for b in _batches(len(x), batch_size, gen):
            with autocast(device):
                loss = F.cross_entropy(module(x[b.to(x.device)].to(device).float()).float(), yt[b.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        hist["train_loss"].append(float(np.mean(losses)))
        if not track_val and epoch < epochs - 1:
            continue
        recalibrate_batchnorm(module, x, device)  # running statistics of the current weights
        val = predict(module, x_val, device)
        hist["val_epoch"].append(epoch + 1)
        hist["val_loss"].append(float(F.cross_entropy(torch.as_tensor(val), torch.as_tensor(y_val))))
        hist["val_accuracy"].append(float((val.argmax(1) == y_val).mean()))
    return hist, val


def scores(labels: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision (2,), recall (2,) and confusion matrix (2, 2) of argmax predictions (sklearn)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    pred = np.asarray(logits).argmax(1)
    p, r, _, _ = precision_recall_fscore_support(labels, pred, labels=[0, 1], zero_division=0)
    return p, r, confusion_matrix(labels, pred, labels=[0, 1])


def _inputs(kind: str, pairs: CropPairs, index: np.ndarray, encoder: Encoder, tap_model: Any, seed: int,
            device: torch.device, cache: dict | None) -> torch.Tensor:
    """Cached float16 features (A, B) or the images (C) of pairs[index]."""
    if kind == "C":
        return torch.as_tensor(pairs.images[index]).to(device)  # (N, 2, S, S)
    config = tuple(sorted((getattr(tap_model, "config", None) or {}).items()))
    key = ("A", id(tap_model)) if kind == "A" else ("B", int(seed), config)
    return cached_features(cache, key, encoder, pairs, index, device)  # (N, 2, F, S, S)


def run_strategy(strategy: str, pairs: CropPairs, labels: Any, split: "Split | Mapping", tap_model: Any = None,
                 epochs: "int | Mapping | None" = None, seed: int = 0, device: "str | torch.device" = "auto",
                 batch_size: int = 32, lr: float | None = None, cache: dict | None = None,
                 track_val: bool = False) -> StrategyResult:
    """Train one strategy (A0..C1) on split['train'] and evaluate on val and test.

    cache: a dict shared between calls to reuse frozen features (compare_strategies does this).
    track_val: validation loss/accuracy after every epoch in history (costs time), else after the last.
    lr: Adam learning rate; None picks LEARNING_RATES by head (C: end_to_end).
    """
    kind, head_kind = parse_strategy(strategy)
    lr = LEARNING_RATES["end_to_end" if kind == "C" else head_kind] if lr is None else float(lr)
    lab, sp = _check_inputs(pairs, labels, split)
    n_epochs = epochs_for(strategy, epochs)
    device = pick_device(device, verbose=False) if not isinstance(device, torch.device) else device
    encoder = make_encoder(kind, tap_model, seed)
    head = make_head(head_kind, n_features_of(encoder), seed)
    index = np.concatenate([sp.train, sp.val, sp.test])
    x_all = _inputs(kind, pairs, index, encoder, tap_model, seed, device, cache)
    x_tr, x_val, x_te = torch.split(x_all, [len(sp.train), len(sp.val), len(sp.test)])
    model = EventClassifier(encoder, head)
    module = model if kind == "C" else head  # frozen backbones: train the head on cached features
    history, val_logits = train_module(module, x_tr, lab[sp.train], x_val, lab[sp.val], n_epochs, seed, device,
                                       batch_size, lr, track_val)
    test_logits = predict(module, x_te, device)
    p, r, cm = scores(lab[sp.test], test_logits)
    return StrategyResult(str(strategy).upper(), p, r, cm, val_logits, lab[sp.val], test_logits, lab[sp.test],
                          sp.test.copy(), model.cpu().eval(), history, sp.val.copy(), int(seed), len(sp.train))


def compare_strategies(pairs: CropPairs, labels: Any, tap_model: Any = None, strategies: Sequence[str] = STRATEGIES,
                       n_runs: int = 10, seeds: Sequence[int] | None = None, epochs: "int | Mapping | None" = None,
                       device: "str | torch.device" = "auto", split: "Split | Mapping | None" = None,
                       split_seed: int = 0, **kw: Any) -> dict[str, list[StrategyResult]]:
    """Run each strategy n_runs times (seeds 0..n_runs-1) on one split: {strategy: [StrategyResult, ...]}."""
    for s in strategies:
        parse_strategy(s)
    if any(parse_strategy(s)[0] == "A" for s in strategies) and tap_model is None:
        raise InputError("Strategies A0/A1 need the pretrained TAP model: pass tap_model=...")
    seeds = list(range(n_runs)) if seeds is None else list(seeds)
    sp = split_pairs(labels, seed=split_seed) if split is None else as_split(split)
    _check_inputs(pairs, labels, sp)
    dev = pick_device(device)
    cache: dict = {}
    results: dict[str, list[StrategyResult]] = {str(s).upper(): [] for s in strategies}
    with tqdm(total=len(strategies) * len(seeds), desc="strategies") as bar:
        for seed in seeds:
            for s in results:
                bar.set_postfix_str(f"{s} seed {seed}")
                results[s].append(run_strategy(s, pairs, labels, sp, tap_model, epochs, seed, dev, cache=cache, **kw))
                bar.update()
            cache = {k: v for k, v in cache.items() if k[0] == "A"}  # B features belong to one seed
    return results


# ----------------------------------------------------------------------------- tables and figures


def _mean_std(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean and sample std (ddof=1; 0 for a single run) over runs (axis 0)."""
    values = np.asarray(values, dtype=float)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1:])
    return values.mean(axis=0).tolist(), std.tolist()


def results_table(results: Mapping[str, Sequence[StrategyResult]]) -> dict[str, dict[str, Any]]:
    """Per strategy: precision/recall/F1 per class, mean and std over runs (Table 2), from the test logits."""
    from sklearn.metrics import precision_recall_fscore_support

    table = {}
    for name, runs in results.items():
        if not runs:
            continue
        prf = np.array([precision_recall_fscore_support(r.test_labels, r.test_logits.argmax(1), labels=[0, 1],
                                                        zero_division=0)[:3] for r in runs])  # (runs, 3, 2)
        row: dict[str, Any] = {"n_runs": len(runs)}
        for k, metric in enumerate(("precision", "recall", "f1")):
            row[metric], row[f"{metric}_std"] = _mean_std(prf[:, k])
        table[name] = row
    return table


def _pm(mean: float, std: float) -> str:
    return f"{mean:.2f}±{std:.2f}"


def format_results(table: Mapping[str, Mapping], paper: Mapping[str, Mapping] | None = PAPER_TABLE2) -> str:
    """Table 2 as text: mean ± std per class, with the paper's numbers in brackets."""
    cols = [("precision", 0), ("recall", 0), ("precision", 1), ("recall", 1)]
    head = f"{'group':<6}{'feature':<18}{'head':<8}" + "".join(f"{m[:4]} {c:<19}" for m, c in cols)
    lines = [head, "-" * len(head)]
    for name, row in table.items():
        kind, h = name[0], HEADS.get(name[1], "?")
        cells = []
        for m, c in cols:
            cell = _pm(row[m][c], row[f"{m}_std"][c])
            if paper and name in paper:
                cell += f" ({_pm(paper[name][m][c], paper[name][f'{m}_std'][c])})"
            cells.append(f"{cell:<24}")
        lines.append(f"{name:<6}{FEATURES.get(kind, '?'):<18}{h:<8}" + "".join(cells))
    if paper:
        lines.append("(in brackets: Chen et al. 2024, Table 2, 10 runs on their HeLa-like movie)")
    return "\n".join(lines)


def plot_results(table: Mapping[str, Mapping], paper: Mapping[str, Mapping] | None = PAPER_TABLE2) -> Any:
    """Four panels (precision/recall of class 0/1): bars = mean ± std per strategy, dots = the paper."""
    import matplotlib.pyplot as plt

    names = list(table)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3), sharey=True)
    for ax, (m, c) in zip(axes, [("precision", 0), ("recall", 0), ("precision", 1), ("recall", 1)]):
        mean = [table[n][m][c] for n in names]
        ax.bar(names, mean, yerr=[table[n][f"{m}_std"][c] for n in names], color="tab:blue", capsize=3, label="ours")
        if paper:
            ax.plot([n for n in names if n in paper], [paper[n][m][c] for n in names if n in paper],
                    "ko", ms=4, label="paper")
        ax.set_title(f"{m} class {c}")
        ax.set_ylim(0, 1.05)
    axes[0].legend(frameon=False, fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def confusion(result: StrategyResult) -> np.ndarray:
    """Test-set confusion matrix (2, 2), rows = actual 0/1, columns = predicted 0/1 (Table 3)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(result.test_labels, result.test_logits.argmax(1), labels=[0, 1])


def format_confusion(result: StrategyResult) -> str:
    """Table 3 as text: the confusion matrix plus per-class precision and recall."""
    cm = confusion(result)
    p, r, _ = scores(result.test_labels, result.test_logits)
    return "\n".join([f"{result.strategy} (seed {result.seed}) on {cm.sum()} test pairs",
                      f"{'':<10}{'pred 0':>9}{'pred 1':>9}",
                      f"{'actual 0':<10}{cm[0, 0]:>9}{cm[0, 1]:>9}", f"{'actual 1':<10}{cm[1, 0]:>9}{cm[1, 1]:>9}",
                      f"{'':<10}{'prec':>9}{'recall':>9}",
                      f"{'class 0':<10}{p[0]:>9.2f}{r[0]:>9.2f}", f"{'class 1':<10}{p[1]:>9.2f}{r[1]:>9.2f}"])


# ----------------------------------------------------------------------------- label budget


def label_budget_curve(pairs: CropPairs, labels: Any, tap_model: Any, budgets: Sequence[int],
                       strategies: Sequence[str] = ("A1", "C1"), n_runs: int = 3, epochs: "int | Mapping | None" = None,
                       device: "str | torch.device" = "auto", split_seed: int = 0, **kw: Any) -> dict[str, Any]:
    """Class-1 F1 on one test set vs number of labelled training pairs: {'budgets', 'n_train', strategy: f1 (B, runs)}."""
    from sklearn.metrics import f1_score

    for s in strategies:
        parse_strategy(s)
    splits = [split_pairs(labels, seed=split_seed, budget=int(b)) for b in budgets]
    dev, cache = pick_device(device), {}
    curve: dict[str, Any] = {"budgets": [int(b) for b in budgets], "n_train": [len(s.train) for s in splits]}
    with tqdm(total=len(strategies) * len(budgets) * n_runs, desc="label budget") as bar:
        for s in strategies:
            f1 = np.zeros((len(budgets), n_runs))
            for i, sp in enumerate(splits):
                for seed in range(n_runs):
                    res = run_strategy(s, pairs, labels, sp, tap_model, epochs, seed, dev, cache=cache, **kw)
                    f1[i, seed] = f1_score(res.test_labels, res.test_logits.argmax(1), zero_division=0)
                    bar.update()
            curve[str(s).upper()] = f1
    return curve


def plot_budget_curve(curve: Mapping[str, Any]) -> Any:
    """Class-1 F1 (mean ± std over runs) vs number of labelled training pairs, one line per strategy."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    x = np.asarray(curve["n_train"])
    for name, f1 in curve.items():
        if name in ("budgets", "n_train"):
            continue
        f1 = np.asarray(f1)
        mean, std = f1.mean(1), f1.std(1)
        ax.plot(x, mean, "o-", label=f"{name}: {FEATURES[name[0]]}, {HEADS[name[1]]}")
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training pairs")
    ax.set_ylabel("F1 of class 1 (event), test set")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- labelling criteria


def compare_criteria(pairs: CropPairs, tap_model: Any, criteria: Sequence[str] = ("any-both", "any-either", "size-either"),
                     strategies: Sequence[str] = ("A0", "A1"), n_runs: int = 1, threshold: int = 40,
                     epochs: "int | Mapping | None" = None, device: "str | torch.device" = "auto",
                     split_seed: int = 0, **kw: Any) -> dict[str, dict[str, list[StrategyResult]]]:
    """Train the strategies on labels from each criterion (Table 5): {criterion: {strategy: [results]}}."""
    from tapkit.downstream.events.crops import label_pairs

    labels = {c: label_pairs(pairs, c, threshold=threshold) for c in criteria}  # checks names first
    for s in strategies:
        parse_strategy(s)
    dev, cache = pick_device(device), {}  # one TAP feature cache: same pairs for every criterion
    out: dict[str, dict[str, list[StrategyResult]]] = {c: {str(s).upper(): [] for s in strategies} for c in criteria}
    with tqdm(total=len(criteria) * len(strategies) * n_runs, desc="criteria") as bar:
        for c in criteria:
            split = split_pairs(labels[c], seed=split_seed)  # same seed: same val/test pairs for all
            for seed in range(n_runs):
                for s in out[c]:
                    out[c][s].append(run_strategy(s, pairs, labels[c], split, tap_model, epochs, seed, dev,
                                                  cache=cache, **kw))
                    bar.update()
    return out


def criteria_table(results: Mapping[str, Mapping[str, Sequence[StrategyResult]]]) -> list[dict[str, Any]]:
    """Rows like Table 5: criterion, head, train/test positives, precision/recall per class (mean, std)."""
    rows = []
    for crit, by_strategy in results.items():
        for name, row in results_table(by_strategy).items():
            first = by_strategy[name][0]
            n_pos_test = int(first.test_labels.sum())
            rows.append(dict(criterion=crit, strategy=name, head=HEADS[name[1]], train_positives=first.n_train // 2,
                             test_positives=n_pos_test, **row))
    return rows


def format_criteria_table(rows: Sequence[Mapping[str, Any]], paper: Mapping | None = PAPER_TABLE5) -> str:
    """Table 5 as text, with the paper's class-1 precision/recall in brackets."""
    head = f"{'criterion':<13}{'head':<8}{'pos train, test':<17}{'prec 0':<12}{'rec 0':<12}{'prec 1':<22}{'rec 1':<22}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ref = (paper or {}).get((r["criterion"], r["head"]))
        cells = [_pm(r["precision"][0], r["precision_std"][0]), _pm(r["recall"][0], r["recall_std"][0])]
        c1 = [_pm(r[m][1], r[f"{m}_std"][1]) + (f" ({ref[m][1]:.2f})" if ref else "") for m in ("precision", "recall")]
        lines.append(f"{r['criterion']:<13}{r['head']:<8}{str(r['train_positives']) + ', ' + str(r['test_positives']):<17}"
                     + "".join(f"{c:<12}" for c in cells) + "".join(f"{c:<22}" for c in c1))
    if paper:
        lines.append("(in brackets: Chen et al. 2024, Table 5)")
    return "\n".join(lines)
