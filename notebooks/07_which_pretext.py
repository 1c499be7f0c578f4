# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tapkit-course/tapkit/blob/main/notebooks/07_which_pretext.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/tapkit-course/tapkit/HEAD?labpath=notebooks%2F07_which_pretext.ipynb)
#
# *This copy shows the exercise solutions (the cell right after each answer cell). For a copy without
# them, run `tapkit course student` in the repository (locally or in Binder's terminal): README, Set-up.*
#
# # 07 · Which pretext task? TAP, masked image modelling and contrastive learning on the same movie
#
# The course's papers describe several self-supervised systems: time arrow prediction (TAP, paper 000; its features for events: paper 001),
# masked image modelling (MIM, paper 002) and contrastive + generative pretraining (TOWER, paper 003).
# Which one suits *your* movie? We pretrain each on the same simulated movie, with the same U-Net, the
# same crops and the same number of steps, look at what each learned, and measure how well its frozen
# features recognise divisions and deaths (the protocol of notebook 04).
#
# **Learning goals**
# - say what each pretext task sees and what it must predict (and so what it can learn)
# - write the masked-pixel loss of MIM and compute NT-Xent, the contrastive loss, by hand
# - compare frozen features of several pretext tasks on one downstream task, with baselines, several
#   runs and a label-budget curve, and read the result against the papers' claims
#
# **Estimated runtime**
#
# | profile | time |
# | --- | --- |
# | smoke | ~3 min (171 s measured in the test suite on 2 idle cores) |
# | cpu (2 cores) | not yet measured with the fair protocol; it loads notebook 04's TAP heads and baselines when 04 ran first (before the protocol: 165-181 s after 04, ~8.5 min without) |
# | gpu | ~15 min |

# %%
# Set-up: on Colab, install tapkit without touching Colab's torch or numpy (--no-deps); elsewhere nothing to do.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run("pip install -q 'tifffile>=2023.1' 'pooch>=1.7' && pip install -q --no-deps 'tapkit-course @ git+https://github.com/tapkit-course/tapkit'", shell=True, check=True)

# %% tags=["parameters"]
profile = "auto"  # sizes pretraining of each task and the event heads: "smoke" (CI), "cpu" (2 cores), "gpu" or "auto" (gpu with a GPU)
data = "simulated"  # a dataset name ("simulated", "hela-subset") or the path of an annotated movie
seed = 0  # one number fixes movies, crops, pretraining and heads: same seed -> same table
device = "auto"  # "auto", "cpu", "cuda" or "mps"
out_dir = "runs/latest"  # where notebook 01's TAP checkpoint and this notebook's checkpoints live
channel = None  # the channel to use of a multi-channel TIFF in `data` (None: single-channel data)
crops_n_pairs = None  # number of crop pairs cut from the movie (None: from the profile)
heads_n_runs = None  # paired runs (seeds) per head and features; the paper uses 10 (None: from the profile)
heads_steps_linear = None  # optimiser steps of the linear heads, the same at every budget (None: from the profile)
heads_steps_resnet = None  # optimiser steps of the ResNet heads (None: from the profile)
heads_steps_end_to_end = None  # optimiser steps of the end-to-end baseline (None: from the profile)
criterion = "size-either"  # labelling criterion from notebook 03 (the paper's default)

# %%
import numpy as np
import torch
import tapkit, tapkit.course, tapkit.course.claims, tapkit.course.results
import tapkit.plot as tplot
from tapkit.course.config import training_steps
from tapkit.data.movie import normalize
from tapkit.data.simulate import simulate_two_channel
from tapkit.downstream.events import compare_pretext as pretext_events, criteria, crops, strategies
from tapkit.ssl import contrastive, mim
from tapkit.ssl.pretext import build_model
from tapkit.ssl.sampler import PairSampler
from tapkit.ssl.trainer import load_model, train

cfg = tapkit.course.configure(globals(), notebook="07")

# %% [markdown]
# ## 1 · Four tasks on one slide
#
# Every task uses the same sampler (crops of frames t and t + 1 at the same place, augmented as the
# profile's `tap['augment']` says: not at all in the cpu profile, see notebook 01) and the
# same encoder (U-Net + 1x1 projection to `F` dense features); only what the network sees and what it
# must predict differ:
#
# | task | sees | predicts | loss |
# | --- | --- | --- | --- |
# | **TAP** | the two frames, in random order | which one came first | cross-entropy (+ decorrelation) |
# | **MIM random** | frame t with 60 % of its 8 px patches hidden | the hidden intensities | L1 on hidden pixels only |
# | **MIM intensity** | the same, bright (cell) patches hidden more often | the hidden intensities | L1 on hidden pixels only |
# | **contrastive** | two random views of frame t (flips, intensity, noise), and a masked copy | which views belong together; the hidden pixels | NT-Xent + λ · L1 |
#
# Only TAP ever compares two time points. Here is one batch of each (the models are untrained: making
# a batch needs no training).

# %%
movie = tapkit.course.load_data(cfg)
TASKS = ["tap", *cfg.pretext["tasks"]]  # tap, mim, mim-intensity, contrastive
# reject_background: crops with < 10 % foreground are redrawn, so that every crop shows cells
sampler = PairSampler([movie], patch=cfg.tap["patch"], batch_size=4, seed=cfg.seed, augment=cfg.tap["augment"],
                      reject_background=0.1)
pair_crops, _ = sampler.sample()  # (4, 2, 1, P, P) frames t and t + 1
options = lambda task: {**cfg.tap.get("model_kwargs", {}), **cfg.pretext["tasks"].get(task, {})}  # noqa: E731
g = torch.Generator().manual_seed(cfg.seed)
batches = {task: build_model(task.split("-")[0], **options(task)).make_batch(pair_crops, g) for task in TASKS}
tplot.pretext.plot_task_batches(batches);

# %% [markdown]
# ## 2 · Pretraining: same movie, same U-Net, same step budget
#
# TAP reuses notebook 01's model (`out_dir/tap_<data>.pt`, else the shipped checkpoint). The others load
# `out_dir/<task>_<data>.pt` from an earlier run of this notebook, else the checkpoint shipped in
# `tapkit/checkpoints/` (made by `scripts/make_checkpoints.py` with the cpu profile's settings), else
# they are trained here with the profile's `tap` sizes and step budget plus their own options
# (`cfg.pretext["tasks"]`). Each line below says which happened; the table says how many steps each
# model was trained for (a comparison is fair only when these agree).

# %%
models = {task: tapkit.course.get_pretext_model(cfg, task, movie=movie) for task in TASKS}
steps = {task: training_steps(model.checkpoint) for task, model in models.items()}
steps.update({"random (frozen)": 0, "end to end": 0})  # baselines: no pretraining
for task, model in models.items():
    print(f"{task:<15} {steps[task]!s:>6} steps | F = {model.n_features} | options {cfg.pretext['tasks'].get(task, {})}")

# %% [markdown]
# ## 3 · What each task learned
#
# **Reconstructions.** The MIM models rebuild the hidden patches of crops from the first frames (the
# validation frames, never trained on). A model that learned about nuclei draws nuclei where they were
# hidden; one that did not draws a blur of the background level.

# %%
val_crops, _ = PairSampler([movie], patch=cfg.tap["patch"], batch_size=8, split="val", seed=cfg.seed,
                           device=cfg.device).sample()  # (8, 2, 1, P, P) first frames, no augmentation
recon = {}
for task in (t for t in TASKS if t.startswith("mim")):
    batch = models[task].make_batch(val_crops, torch.Generator(device=cfg.device).manual_seed(cfg.seed))
    with torch.no_grad():
        recon[task] = (batch["x"], batch["mask"], models[task](batch["x"], batch["mask"]))
    print(f"{task:<15} masked-pixel PSNR {float(mim.masked_psnr(recon[task][2], batch['x'], batch['mask'])):.1f} dB")
tplot.pretext.plot_reconstructions(recon, n=2);

# %% [markdown]
# **Pooled features.** Each crop pair becomes one point: its dense features of frame t averaged over
# the crop, projected on their first two principal axes. The contrastive model was trained to make
# exactly these pooled vectors similar for views of the same crop and different for other crops. Points
# with an event (the criterion of notebook 03) are red for divisions and cyan for deaths: if a task's
# features separate them, a head will have an easy job.

# %%
event_pairs = crops.crop_pairs(movie, seed=cfg.seed, **cfg.crops)  # n_pairs, size, event_fraction
labels = criteria.label_pairs(event_pairs, criterion)
some = np.random.default_rng(cfg.seed).choice(len(event_pairs), min(400, len(event_pairs)), replace=False)
first_frames = torch.as_tensor(event_pairs.images[some, 0, None])  # (N, 1, S, S)
with torch.no_grad():
    points = {task: tplot.pretext.pooled_pca(m.embed(first_frames.to(cfg.device))) for task, m in models.items()}
tplot.pretext.plot_pooled_pca(points, labels[some], events=tplot.pretext.event_classes(event_pairs)[some]);

# %% [markdown]
# **Feature maps.** The four most varied of the `F` feature channels of each model on the same frame.

# %%
frame = normalize(movie.images[movie.shape[0] // 2][None])[0, :128, :128]  # (128, 128) top-left corner
with torch.no_grad():
    maps = {task: m.embed(torch.as_tensor(frame)[None, None].to(cfg.device))[0] for task, m in models.items()}
tplot.pretext.plot_feature_maps(frame, maps);

# %% [markdown]
# ## 4 · Downstream: event recognition with frozen features
#
# The fair protocol of notebook 04: crop pairs labelled with `criterion`, one train / val / test split,
# a linear and a ResNet head trained on the *frozen* features of each pretrained model for the same
# number of steps, the best weights and the learning rate (one grid for every row) chosen on validation,
# `n_runs` paired seeds, class-1 (event) precision, recall and F1 as mean ± std on the test split. Next
# to them: frozen *random* features (B) and a network trained end to end (C). Each model's features are
# computed once and shared by its heads and its label-budget runs. The TAP heads and the baselines are
# the runs of notebook 04 (same crops, split, seeds and settings): they are loaded from
# `out_dir/event_runs` when notebook 04 ran, not trained again.

# %%
split = crops.split_pairs(labels, seed=cfg.seed)
print(crops.format_table(crops.dataset_table({criterion: labels}, split)))
schedule = strategies.sweep_settings(cfg.heads)  # n_runs, steps_*, n_evals, lr_grid (not budgets, real_*)
results, curves = pretext_events.compare_pretext(event_pairs, labels, split, models, cfg.pretext["strategies"],
                                                 cfg.pretext["budgets"], seed=cfg.seed, device=cfg.device,
                                                 runs_dir=cfg.out_dir / "event_runs", **schedule)
table = pretext_events.pretext_table(results)
print(pretext_events.format_pretext_table(table, steps))
if cfg.profile == "smoke":
    print(f"smoke profile: {len(event_pairs)} crop pairs, {schedule['steps_linear']} / {schedule['steps_resnet']} steps of "
          "the linear / ResNet heads: these numbers only show that the code runs, whatever the pretraining steps above.")

# %%
tplot.pretext.plot_pretext_table(table);

# %% [markdown]
# Paper 003's claim: contrastive + generative pretraining beats either alone. Our `contrastive` task is
# that combination (NT-Xent plus masked reconstruction); `mim` is the generative part alone. A
# contrastive-only model is not pretrained in these profiles, so that half of the claim is not measured
# and the verdict can at best be *inconclusive* (the line says which part is missing).

# %%
f1_1 = {row: np.array([r.f1[1] for r in runs]) for row, runs in results.items()}  # (n_runs,) class-1 F1
if "contrastive · ResNet" in f1_1 and "mim · ResNet" in f1_1:
    tapkit.course.claims.assess("003-contrastive-generative", None, measured="class-1 F1 of the ResNet heads",
                                parts={"contrastive+generative - generative (mim)": (f1_1["contrastive · ResNet"],
                                                                                   f1_1["mim · ResNet"])},
                                missing=["contrastive+generative - contrastive alone (not pretrained here)"])
else:
    print("003-contrastive-generative: needs the contrastive and mim models; not measured in this run")

# %% [markdown]
# **Label budget.** The linear head (a *linear probe*, the usual measure of frozen features) on each
# model's frozen features, and on frozen random features, trained on fewer labelled pairs (half events),
# tested on the same test split, with the same steps at every budget.

# %%
tplot.pretext.plot_budget_curves(curves);

# %% [markdown]
# **How to read these numbers.** In the smoke profile the crops and the head training are tiny, and so
# is the pretraining of a model trained in that profile (the `steps` column: a shipped checkpoint has the
# cpu profile's 800): the numbers only show that the code runs and mean nothing. In the cpu and gpu
# profiles, ask (1) does every pretext task's ResNet row beat `random (frozen) · ResNet` on F1 of class
# 1 (the features carry knowledge, not the head)? (2) where does TAP stand? An event is a *change*
# between two frames, and TAP is the only task trained on two time points, so the papers' reasoning
# predicts TAP ahead; MIM and contrastive features describe single frames (their pairs are compared by
# the head only). (3) Are the gaps larger than the std over runs? (4) Do the budget curves separate at
# few labels, where the pretrained features should matter most? The verdict above answers one such
# question with an interval; the others you can test the same way with `tapkit.course.claims.assess`.
#
# ## 5 · Channel-separated MIM on a two-channel movie
#
# With two channels (nuclei and a cell-body marker, `simulate_two_channel`), every channel gets its own
# mask: where one channel is hidden the other may be visible, so the network learns how the channels
# relate. Taken to the end: hide *all* of channel 1 and rebuild it from channel 0 (cell bodies from nuclei).
#
# The sampler serves `(T, C, Y, X)` movies (each channel normalised on its own), so the one trainer
# trains it like every other task; for this demonstration one epoch of the profile's steps
# (`out_dir/mim-channel_simulated-two-channel.pt` is loaded instead when it exists).

# %%
two, _ = simulate_two_channel(seed=cfg.seed, progress=False, **cfg.sim)  # (T, 2, Y, X) nuclei, cell bodies
channel_file = cfg.out_dir / "mim-channel_simulated-two-channel.pt"
if channel_file.is_file():
    channel_model = load_model(channel_file, cfg.device)
    print(f"loaded {channel_file}")
else:
    settings = {**{k: v for k, v in cfg.tap.items() if k != "model_kwargs"}, "epochs": 1}
    channel_model, history = train("mim", [two], **settings, device=cfg.device, seed=cfg.seed, checkpoint=channel_file,
                                   model_kwargs={**cfg.tap.get("model_kwargs", {}), "in_channels": 2, "masking": "channel"})
    print(f"trained {cfg.tap['steps_per_epoch']} steps: validation masked-pixel L1 {history['val_loss'][-1]:.3f}")

# %%
test_x = PairSampler([two], patch=cfg.tap["patch"], batch_size=4, split="val", seed=cfg.seed,
                     device=cfg.device).sample()[0][:, 0]  # (4, 2, P, P) frame t, both channels
hide_1 = torch.zeros_like(test_x)
hide_1[:, 1] = 1  # channel 1 hidden everywhere, channel 0 visible
with torch.no_grad():
    pred = channel_model.eval()(test_x, hide_1)
print(f"channel-1 L1 from channel 0 alone: {float(mim.masked_loss(pred, test_x, hide_1)):.3f} | "
      f"predicting the mean: {float((test_x[:, 1] - test_x[:, 1].mean()).abs().mean()):.3f}")
tplot.pretext.plot_reconstructions({"cell bodies from nuclei": (test_x, hide_1, pred)}, n=2, channel=1);

# %% [markdown]
# Compare the two numbers above: a model that learned how cell bodies sit around nuclei beats
# predicting the mean intensity; one that did not, does not. One epoch of steps is short (in smoke
# only a handful), so the picture is rough; a real comparison trains as long as the other tasks.
#
# ## Exercise 1 · The masked-pixel loss
#
# Write `my_masked_loss(pred, target, mask)`: the mean absolute error over the *hidden* pixels only
# (`mask` 1 = hidden, shape `(B, 1, Y, X)`, broadcast over the channels of `pred` and `target`
# `(B, C, Y, X)`). The checker compares it with the course's version and checks that changing a
# visible pixel changes nothing.

# %%
def my_masked_loss(pred, target, mask):
    """Mean |pred - target| over the pixels where mask == 1."""
    ...  # your code


# %% tags=["solution"]
def my_masked_loss(pred, target, mask):
    """Mean |pred - target| over the pixels where mask == 1."""
    mask = mask.expand_as(pred)
    return ((pred - target).abs() * mask).sum() / mask.sum()


# %%
def _masked_loss_ok(fn):
    """Same value as mim.masked_loss on random data, and blind to the visible pixels."""
    gen = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 16, 16, generator=gen), torch.rand(2, 3, 16, 16, generator=gen)
    mask = mim.random_mask(2, 16, 4, 0.5, gen)  # (2, 1, 16, 16)
    changed = pred + 5 * (1 - mask)  # only visible pixels change
    value = float(fn(pred, target, mask))
    return abs(value - float(mim.masked_loss(pred, target, mask))) < 1e-5 and abs(float(fn(changed, target, mask)) - value) < 1e-5

tapkit.course.check(my_masked_loss, _masked_loss_ok, name="my_masked_loss",
                    hint="a mean over the hidden pixels only: visible pixels must count neither in the sum nor in "
                         "the number you divide by; the mask has one channel, pred has C");

# %% [markdown]
# > **Checkpoint.** MIM learns only from what it could not see. **Question:** if the loss also counted the
# > visible pixels, what could the network learn to do that costs nothing and teaches it nothing?

# %% [markdown]
# ## Exercise 2 · NT-Xent by hand
#
# Two crops, two views each: projections `z1 = [[1, 0], [0, 1]]` (view 1 of crops a and b) and
# `z2 = [[1, 1], [0, 1]]` (view 2), temperature `T = 0.5`. NT-Xent normalises the 4 vectors to unit
# length, takes the cosine similarities `s`, and for each vector `i` computes
# `-log(exp(s_i,partner / T) / sum over the 3 others k of exp(s_ik / T))`; the loss is the mean over the 4.
# Compute it with numpy (no tapkit).

# %%
z1, z2, T = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [0.0, 1.0]]), 0.5
nt_xent_by_hand = ...  # your answer: one number

# %% tags=["solution"]
z = np.concatenate([z1, z2]) / np.linalg.norm(np.concatenate([z1, z2]), axis=1, keepdims=True)  # (4, 2)
s = z @ z.T / T
partner = [2, 3, 0, 1]
nt_xent_by_hand = np.mean([-s[i, partner[i]] + np.log(sum(np.exp(s[i, k]) for k in range(4) if k != i)) for i in range(4)])
print(f"NT-Xent = {nt_xent_by_hand:.4f}")

# %%
tapkit.course.check(nt_xent_by_hand, float(contrastive.nt_xent(torch.tensor(z1), torch.tensor(z2), T)), tol=1e-4,
                    name="nt_xent_by_hand", hint="normalise rows first; leave out k == i; vector i's partner is i +- 2");

# %% [markdown]
# ## What the papers leave open, and what we chose
#
# Papers 002 (MIM) and 003 (TOWER) are abstracts without code, so these are our choices (the module
# docstrings of `tapkit/ssl/mim.py` and `tapkit/ssl/contrastive.py` give the details):
#
# - **MIM**: square 8 px patches, 60 % hidden, L1 loss on the hidden pixels only (SimMIM); hidden
#   pixels get a learned value per channel; the image is frame t of each sampler pair. *Intensity*
#   masking draws patches with probability ∝ exp(2 · standardised patch brightness), keeping the ratio
#   exact; *channel* masking draws an independent mask per channel.
# - **Contrastive + generative**: views are flips / 90° rotations, intensity scale and shift and noise of
#   frame t (or, as an option, frames t and t + 1 as positives); pooled features go through an MLP
#   projector into NT-Xent at temperature 0.2; the generative term rebuilds a masked view (8 px, 60 %,
#   L1) with weight λ = 1; the reconstruction-only warm-up ("sample space diversification") lasts the
#   first `warmup_steps` steps (10 % of the step budget in the cpu and gpu profiles).
#
# ## Results
#
# Class-1 precision, recall and F1 (mean and std over runs) per features and head, with the number of
# pretraining steps, go into `results.json` under `pretext`.

# %%
tapkit.course.results.record("pretext", **pretext_events.record_entries(table, steps));

# %% [markdown]
# ## Summary
#
# - Four pretext tasks on one encoder differ only in what the network sees and must predict; that
#   decides what the features know. TAP compares two time points, MIM and contrastive learning read one frame.
# - A fair comparison fixes the data, the network, the crops and the step budget, and reports several
#   runs with their spread next to frozen random features and end-to-end training.
# - Event recognition is about change over time: read the table above with that in mind, and test the
#   pretext task on *your* downstream task before you trust a paper's ranking.
#
# **Next:** change a task's options in the profile's `pretext` section (mask ratio, intensity masking,
# temperature, temporal positives) and see whether the ranking moves.
