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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tapkit-course/tapkit/blob/main/notebooks/04_head_comparison.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/tapkit-course/tapkit/HEAD?labpath=notebooks%2F04_head_comparison.ipynb)
#
# *This copy shows the exercise solutions (the cell right after each answer cell). For a copy without
# them, run `tapkit course student` in the repository (locally or in Binder's terminal): README, Set-up.*
#
# # 04 · Do TAP features help? Six strategies for event recognition
#
# Self-supervised pretraining is only worth it if its features make a downstream task easier. Chen et al. (2024, Table 2) tested this for recognising divisions and deaths in crop pairs: frozen TAP features versus a frozen *random* network versus a network trained end to end, each with a linear or a small ResNet head. We repeat that comparison, put our numbers next to theirs, and ask how many labelled pairs each approach needs.
#
# **Learning goals**
# - build the two event heads (linear, ResNet) on pairs of dense features `(B, 2, F, S, S)`
# - explain strategies A (TAP, frozen), B (random, frozen) and C (random, trained end to end), and write
#   the code that makes the difference: what is frozen and what the optimiser trains
# - run each strategy several times and report per-class precision and recall as mean ± std
# - read a confusion matrix (the paper's Table 3) and a label-budget curve
#
# **Estimated runtime**
#
# | profile | time |
# | --- | --- |
# | smoke | ~2.5 min (155 s measured in the test suite on 2 idle cores) |
# | cpu (2 cores) | 28 min measured (1702 s, 2026-12-07, run cpu3, the 2 cores nearly alone; 59 min with test runs beside it): 11 end-to-end C1 runs (~1 min each) and 26 ResNet-head runs of 1000 steps (~45 s each); fewer `heads_n_runs` or a shorter `heads_lr_grid` to shorten |
# | gpu | ~10 min |

# %%
# Set-up: on Colab, install tapkit without touching Colab's torch or numpy (--no-deps); elsewhere nothing to do.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run("pip install -q 'tifffile>=2023.1' 'pooch>=1.7' && pip install -q --no-deps 'tapkit-course @ git+https://github.com/tapkit-course/tapkit'", shell=True, check=True)

# %% tags=["parameters"]
profile = "auto"  # sizes crop pairs, head epochs, runs and label budgets: "smoke" (CI), "cpu" (2 cores), "gpu" or "auto" (gpu with a GPU)
data = "simulated"  # a dataset name ("simulated", "hela-subset") or the path of an annotated movie
seed = 0  # one number fixes crops, splits and head weights: same seed -> same table
device = "auto"  # "auto", "cpu", "cuda" or "mps"
out_dir = "runs/latest"  # where results.json and the TAP checkpoint of notebook 01 live
channel = None  # the channel to use of a multi-channel TIFF in `data` (None: single-channel data)
crops_n_pairs = None  # number of crop pairs cut from the movie (None: from the profile)
heads_n_runs = None  # paired runs (seeds) per strategy; the paper uses 10 (None: from the profile)
heads_steps_linear = None  # optimiser steps of a linear head, the same at every label budget (None: from the profile)
heads_steps_resnet = None  # optimiser steps of a ResNet head (None: from the profile)
heads_steps_end_to_end = None  # optimiser steps of strategies C, whole network trained (None: from the profile)
heads_lr_grid = None  # Adam learning rates tried for every strategy, chosen on validation (None: from the profile)
criterion = "size-either"  # labelling criterion from notebook 03 (the paper's default)
real_data = "hela-subset"  # section 7: a real movie with masks; its divisions are derived from them (None: skip)

# %%
import numpy as np
import matplotlib.pyplot as plt
import torch
import tapkit, tapkit.course, tapkit.course.claims, tapkit.downstream.protocol, tapkit.course.results, tapkit.course.saved_heads
import tapkit.plot as tplot
from tapkit.downstream.events import criteria, crops, experiments, heads, strategies, tables
from tapkit.ssl.backbone import count_parameters

cfg = tapkit.course.configure(globals(), notebook="04")

# %% [markdown]
# ## 1 · Data, TAP model and labelled crop pairs
#
# The annotated movie, the TAP model of notebook 01 (or a shipped / quickly trained one), crop pairs
# labelled with the criterion of notebook 03, and one train / val / test split shared by all strategies.

# %%
movie = tapkit.course.load_data(cfg)
tap_model = tapkit.course.get_tap_model(cfg, movie=movie)
event_pairs = crops.crop_pairs(movie, seed=cfg.seed, **cfg.crops)  # n_pairs, size, event_fraction
labels = criteria.label_pairs(event_pairs, criterion)
split = crops.split_pairs(labels, seed=cfg.seed)
print(crops.format_table(crops.dataset_table({criterion: labels}, split)))

# %% [markdown]
# ## 2 · Two heads on a pair of dense features
#
# The frozen TAP network turns each crop into dense features `z` of shape `(F, S, S)`; a pair gives
# `(2, F, S, S)`. The event head maps that to 2 logits (no event / event):
#
# - **linear**: average the features over both frames and all pixels, then one linear map (F + 1
#   weights per class). Flattening instead would give ~150 000 weights per class and learn *where* in
#   the crop an event sits.
# - **ResNet** (paper App. C): one 3x3 convolution and one residual block per frame, then the mean over
#   the two frames ("temporal mean pooling"), a global average and a linear layer.
#
# Both heads give the same answer if the two frames are swapped: whether an event happens does not
# depend on the direction of time (unlike TAP itself). Let us check that on random features.

# %%
F = tap_model.n_features
for head in (heads.LinearHead(F), heads.ResNetHead(F)):
    z = torch.randn(4, 2, F, 48, 48)  # (B, 2, F, S, S)
    same = torch.allclose(head.eval()(z), head(z.flip(1)))
    print(f"{type(head).__name__:<11} {count_parameters(head):>6} parameters | frame swap gives same logits: {same}")

# %% [markdown]
# ## 3 · Three strategies: what is frozen, what is trained
#
# | | features | trained |
# | --- | --- | --- |
# | **A** | TAP backbone (frozen) | head only |
# | **B** | randomly initialised backbone (frozen, Kaiming-uniform) | head only |
# | **C** | randomly initialised backbone | backbone *and* head, end to end |
#
# with a linear (`0`) or ResNet (`1`) head. An event classifier is an `encoder` (the TAP network, used
# through `encoder.embed`) plus a `head`. The only code that differs between A/B and C is *what is
# frozen* and *which parameters the optimiser sees*. "Frozen" means two things: no gradients
# (`requires_grad_(False)`) and evaluation mode (`.eval()`), so that batch-norm statistics stay fixed too.
#
# ## Exercise 1 · Freeze or train?
#
# Write `trainable_parameters(model, kind)`: for `kind` `"A"` or `"B"` freeze `model.encoder` and return
# the head's parameters; for `"C"` return every parameter of the model. The checker builds a small
# classifier, calls your function, takes one optimiser step and checks that the encoder's weights stay
# the same for A and B and change for C, and that the optimiser sees exactly the right parameters. The cell
# after it trains a head with your function, so the checker stops the notebook until your answer is right.

# %%
def trainable_parameters(model, kind):
    """Freeze what strategy `kind` keeps fixed; return the list of parameters the optimiser trains."""
    ...  # your code


# %% tags=["solution"]
def trainable_parameters(model, kind):
    """Freeze what strategy `kind` keeps fixed; return the list of parameters the optimiser trains."""
    if kind == "C":
        return list(model.parameters())
    model.encoder.requires_grad_(False).eval()
    return list(model.head.parameters())


# %%
def _one_step_changes(fn, kind):
    """(encoder changed, head changed, optimiser sees the right parameters) after one Adam step with fn."""
    model = heads.EventClassifier(strategies.make_encoder("B", tap_model, 0), heads.LinearHead(F)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = fn(model, kind)
    right = list(model.parameters()) if kind == "C" else list(model.head.parameters())
    opt = torch.optim.Adam(params, lr=0.1)
    torch.nn.functional.cross_entropy(model(torch.randn(4, 2, 32, 32)), torch.tensor([0, 1, 0, 1])).backward()
    opt.step()
    changed = lambda part: any(not torch.equal(v, before[k]) for k, v in model.state_dict().items() if k.startswith(part))
    return changed("encoder."), changed("head."), {id(p) for p in params} == {id(p) for p in right}

tapkit.course.check(trainable_parameters, lambda fn: [_one_step_changes(fn, k) for k in "ABC"] ==
                    [(False, True, True), (False, True, True), (True, True, True)], name="trainable_parameters",
                    stop=True, exercise="Exercise 1 · Freeze or train?",
                    hint="frozen means both things named above, for the encoder only; and the optimiser should get "
                         "exactly the parameters that are meant to change (a list)");

# %% [markdown]
# Your function now trains a linear head on the frozen TAP features (strategy A0): a plain loop of 30 Adam steps
# on batches of 16 training pairs. The encoder's weights and batch-norm statistics must come out unchanged.

# %%
mine = heads.EventClassifier(strategies.make_encoder("A", tap_model, cfg.seed), heads.make_head("linear", F, cfg.seed))
mine.to(cfg.device)
encoder_before = {k: v.clone() for k, v in mine.encoder.state_dict().items()}
opt = torch.optim.Adam(trainable_parameters(mine, "A"), lr=3e-3)  # your choice of what trains
pair_x, pair_y = torch.from_numpy(event_pairs.images).to(cfg.device), torch.as_tensor(labels, device=cfg.device).long()
rng, losses = np.random.default_rng(cfg.seed), []
for step in range(30):
    b = torch.from_numpy(rng.choice(split.train, 16))
    loss = torch.nn.functional.cross_entropy(mine(pair_x[b]), pair_y[b])
    opt.zero_grad(), loss.backward(), opt.step()
    losses.append(loss.item())
unchanged = all(torch.equal(v, encoder_before[k]) for k, v in mine.encoder.state_dict().items())
print(f"training loss {np.mean(losses[:5]):.3f} (first 5 steps) -> {np.mean(losses[-5:]):.3f} (last 5); "
      f"encoder unchanged: {unchanged}")
fig, ax = plt.subplots(figsize=(5, 2.4))
ax.plot(losses), ax.set(xlabel="step", ylabel="cross entropy", title="A0 with your trainable_parameters");

# %% [markdown]
# > **Checkpoint.** Freezing is two switches: `requires_grad_(False)` keeps the optimiser from moving the weights,
# > `.eval()` keeps batch normalisation from moving its running statistics. **Question:** which of the two would
# > the line "encoder unchanged" above still catch if you forgot it, and why does a frozen encoder make A and B
# > so much cheaper to train than C?

# %% [markdown]
# `tapkit.downstream.events.strategies.trainable_parameters` does the same for the course. Per strategy,
# how many parameters does the optimiser train, and how many stay frozen?

# %%
counts = {}  # strategy -> (trained, frozen) parameters
print(f"{'strategy':<9}{'encoder':<18}{'head':<8}{'trained':>10}{'frozen':>10}")
for name in strategies.STRATEGIES:
    kind, head_kind = strategies.parse_strategy(name)
    encoder = strategies.make_encoder(kind, tap_model, cfg.seed)
    model = heads.EventClassifier(encoder, heads.make_head(head_kind, F, cfg.seed))
    n_trained = sum(p.numel() for p in strategies.trainable_parameters(model, kind))
    counts[name] = (n_trained, count_parameters(model, trainable_only=False) - n_trained)
    print(f"{name:<9}{strategies.FEATURES[kind]:<18}{strategies.HEADS[name[1]]:<8}{counts[name][0]:>10}"
          f"{counts[name][1]:>10}")
fig, ax = plt.subplots(figsize=(6, 2.6))
x = np.arange(len(counts))
ax.bar(x - 0.2, [c[0] for c in counts.values()], 0.4, label="trained")
ax.bar(x + 0.2, [max(c[1], 1) for c in counts.values()], 0.4, label="frozen (drawn at 1 when none)")
ax.set(xticks=x, xticklabels=list(counts), yscale="log", ylabel="parameters", title="what the optimiser sees")
ax.legend(frameon=False, fontsize=8);

# %% [markdown]
# ## 4 · Six strategies, several runs each (paper Table 2)
#
# A comparison is only as fair as its protocol. Every strategy here is trained the same way
# (`tapkit.downstream.protocol`):
#
# - a fixed number of **optimiser steps** per row kind (linear head, ResNet head, end to end), the same
#   at every label budget in section 6;
# - the class-1 F1 on the **validation** pairs is measured `n_evals` times during training and the best
#   weights are kept (validation pairs are never trained on, test pairs never looked at before the end);
# - the **learning rate** is chosen on validation from one grid, the same for every strategy, on the first
#   seed of each strategy; its other runs reuse it;
# - `n_runs` **paired** runs: run *i* of every strategy uses the same split and seed `seed + i`.
#
# For the frozen strategies the features of every crop are computed once and cached, so their heads
# cost seconds; only C runs the backbone during training (the slowest rows). Every run is kept in
# `out_dir/event_runs` under a key of everything its numbers depend on: a run that notebook 03 already
# trained is loaded (the line `tapkit: ... runs loaded` says how many), and notebooks 07 and 09 load
# these runs in turn. The paper's numbers are in brackets; our movie is simulated and our training
# shorter, so the values differ: what can be compared is the verdicts below.

# %%
schedule = strategies.sweep_settings(cfg.heads)  # n_runs, steps_*, n_evals, lr_grid
budgets = cfg.heads["budgets"]  # for section 6
print("protocol:", ", ".join(f"{k}={v}" for k, v in schedule.items()))
run_strategies = cfg.heads["strategies"]  # the cpu profile leaves out C0: an end-to-end row costs minutes per run
results = experiments.compare_strategies(event_pairs, labels, tap_model, run_strategies, seed=cfg.seed,
                                         device=cfg.device, split=split, runs_dir=cfg.out_dir / "event_runs",
                                         **schedule)
table = tables.results_table(results)
print(tables.format_results(table))

# %% [markdown]
# Converged, not assumed: the validation F1 of every run during training (one panel per strategy, a dot at
# the step whose weights were kept). A run counts as converged when its best validation F1 rose by less than
# 2 % during the last quarter of its steps; the table above marks any run that did not with `*`.

# %%
tplot.events.plot_val_curves(results);

# %%
tplot.events.plot_results(table);

# %% [markdown]
# The paper's findings: A1 (TAP + ResNet) has the best precision and recall of class 1; a ResNet head
# beats a linear one for the same features; frozen TAP features beat frozen random ones. Each claim gets a
# verdict computed from the paired runs above: the mean paired difference of class-1 F1 with its 95 %
# interval; **holds** when the whole interval is above zero, **fails** when it is below, **inconclusive**
# at this number of runs otherwise (`tapkit.course.claims`). Read the verdicts, not the prose: they are
# recomputed on every run and every profile. Class-1 precision is the hard number: the test set has many
# more negatives than positives, so even a small false-positive *rate* gives many false positives.

# %%
f1_1 = {name: np.array([r.f1[1] for r in runs]) for name, runs in results.items()}  # (n_runs,) class-1 F1
tapkit.course.claims.assess("001-a1-best", None, measured="class-1 F1, A1 minus",
                            parts={name: (f1_1["A1"], f1_1[name]) for name in f1_1 if name != "A1"},
                            missing=[f"A1 - {name} (not run in this profile)" for name in strategies.STRATEGIES
                                     if name not in f1_1])
tapkit.course.claims.assess("001-resnet-beats-linear", f1_1["A1"], f1_1["A0"], measured="class-1 F1, A1 - A0")
tapkit.course.claims.assess("001-tap-beats-random", None, measured="class-1 F1",
                            parts={"A0 - B0": (f1_1["A0"], f1_1["B0"]), "A1 - B1": (f1_1["A1"], f1_1["B1"])});

# %% [markdown]
# ## 5 · The confusion matrix of A1 (paper Table 3)

# %%
best_a1 = results["A1"][0]
print(tables.format_confusion(best_a1))

# %% [markdown]
# ## Exercise 2 · Precision and recall by hand
#
# From the confusion matrix `cm = best_a1.confusion` (rows: actual 0/1, columns: predicted 0/1)
# compute the precision and recall of class 1 (event): `precision_1 = TP / (TP + FP)`,
# `recall_1 = TP / (TP + FN)`.

# %%
cm = best_a1.confusion
precision_1, recall_1 = ..., ...  # your answer: two numbers

# %% tags=["solution"]
tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
precision_1, recall_1 = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
print(f"precision_1 = {precision_1:.3f}, recall_1 = {recall_1:.3f}")

# %%
tapkit.course.check((precision_1, recall_1), (best_a1.precision[1], best_a1.recall[1]), tol=1e-6,
                    name="(precision_1, recall_1)",
                    hint="rows are the actual class, columns the predicted one: a false positive is actually 0 "
                         "and predicted 1; guard against dividing by zero");

# %% [markdown]
# ## Exercise 3 · Which strategy is best at finding events?
#
# Precision and recall pull in different directions; the F1 score (their harmonic mean) sums them up.
# Find `best`, the name of the strategy with the highest mean class-1 F1 in `table`
# (`table[name]["f1"]` holds the mean F1 of class 0 and class 1). Is it the paper's winner, A1?

# %%
best = ...  # your answer: a strategy name such as "A1"

# %% tags=["solution"]
best = max(table, key=lambda name: table[name]["f1"][1])
print(best, "with class-1 F1", round(table[best]["f1"][1], 3))

# %%
_f1 = {name: np.mean([2 * r.precision[1] * r.recall[1] / max(r.precision[1] + r.recall[1], 1e-12)
                      for r in runs]) for name, runs in results.items()}
tapkit.course.check(best, max(_f1, key=_f1.get), name="best", hint="max over the names in `table`, comparing their class-1 F1 (a `key=` function)");

# %% [markdown]
# > **Checkpoint.** With rare events, a classifier that never says "event" is right for almost every test pair;
# > precision and recall of class 1 are the numbers that see it fail. **Question:** which of the two does a head
# > that says "event" too often lose, and which would the person reviewing its events care about more?

# %% [markdown]
# ## 6 · How many labels do you need?
#
# The promise of self-supervised features is label efficiency. We retrain A1 (frozen TAP + ResNet head)
# and C1 (everything trained end to end) with only a few labelled training pairs (half events, half
# not) and measure the F1 score of class 1 on the same test split, selecting on the same validation pairs.

# %%
lrs = experiments.selected_lrs(results)  # each strategy keeps the learning rate it chose on the full training set
curve = experiments.label_budget_curve(event_pairs, labels, tap_model, budgets, strategies=("A1", "C1"), seed=cfg.seed,
                                       device=cfg.device, split_seed=cfg.seed, runs_dir=cfg.out_dir / "event_runs",
                                       **{**schedule, "lr": lrs})
tplot.events.plot_budget_curve(curve);

# %% [markdown]
# Every budget trains the same number of steps with the same validation and test pairs, so the curve
# measures labels, not training length. Two checks on it: more labels should never hurt a row (its F1 at
# the largest budget at least its F1 at the smallest minus 0.02), and the paper's central claim, frozen TAP
# beats end-to-end training *with limited annotation*, is tested at the smallest budget, paired by run.

# %%
for name in ("A1", "C1"):
    small, large = curve[name][0].mean(), curve[name][-1].mean()
    print(f"{name}: F1 {small:.3f} at {curve['n_train'][0]} pairs -> {large:.3f} at {curve['n_train'][-1]}: more labels "
          f"{'never hurt' if large >= small - 0.02 else 'HURT (the largest budget scores lower)'}"
          f"{'' if curve['converged'][name].all() else '; some runs did not converge'}")
tapkit.course.claims.assess("001-tap-beats-end-to-end", curve["A1"][0], curve["C1"][0],
                            measured=f"class-1 F1 at {curve['n_train'][0]} labelled pairs, A1 - C1");

# %% [markdown]
# ## 7 · Real events on real frames: HeLa divisions derived from masks
#
# The simulator gives perfect event labels; a real movie rarely comes with a lineage. The HeLa subset
# (20 frames of Cell Tracking Challenge Fluo-N2DL-HeLa) has a segmentation mask of every nucleus but no
# lineage, so we derive its divisions from the masks (`tapkit.data.divisions`): nuclei are linked between
# consecutive frames by overlap, and a division is a nucleus of frame t-1 that (1) is linked to two nuclei
# of frame t, (2) shrinks by more than 30 % while a new nucleus appears next to it, or (3) vanishes while
# two new nuclei appear next to it. **Limits:** it reads masks, not images, so a nucleus that the
# segmentation cuts in two looks like a division, daughters that stay merged are missed, and nothing is
# found in the first frame. Check a few by eye below (mother at t-1 solid, daughters at t dashed): most
# should show a condensed mitotic mother and two small bright daughters.

# %%
if real_data is not None:
    real = tapkit.course.load_data(cfg, real_data, divisions_from_masks=True)
    tplot.divisions.plot_divisions(real, real.meta["divisions"], k=6, size=40)
else:
    print("real_data=None: section 7 skipped")

# %% [markdown]
# The same protocol on crop pairs of the real movie, with the TAP model trained on it (yours from notebook
# 01 with `data=hela-subset`, else the shipped one): `real_strategies` of the profile (in the cpu profile the
# frozen strategies A1 and B1 only: an end-to-end row on these frames would cost minutes per run), the
# learning rate chosen again on this movie's validation pairs.

# %%
if real_data is not None:
    real_tap = tapkit.course.get_pretext_model(cfg, "tap", data=real_data, movie=real)
    real_pairs = crops.crop_pairs(real, seed=cfg.seed, n_pairs=cfg.heads["real_n_pairs"], size=cfg.crops["size"],
                                  event_fraction=0.3)  # divisions are rare: a third of the crops centred on one
    real_labels = criteria.label_pairs(real_pairs, criterion)
    real_split = crops.split_pairs(real_labels, seed=cfg.seed)
    print(crops.format_table(crops.dataset_table({criterion: real_labels}, real_split)))
    real_results = experiments.compare_strategies(real_pairs, real_labels, real_tap, cfg.heads["real_strategies"],
                                                  seed=cfg.seed, device=cfg.device, split=real_split,
                                                  runs_dir=cfg.out_dir / "event_runs", **schedule)
    real_table = tables.results_table(real_results)
    print(f"{real.name}, divisions from masks:\n" + tables.format_results(real_table, paper=None))
    real_f1 = {name: np.array([r.f1[1] for r in runs]) for name, runs in real_results.items()}
    if {"A1", "B1"} <= set(real_f1):
        print("real data, frozen TAP vs frozen random (A1 - B1, class-1 F1):",
              tapkit.downstream.protocol.paired_difference(real_f1["A1"], real_f1["B1"]))

# %% [markdown]
# ## Results
#
# Precision and recall per class (mean and std over runs) of each strategy, and the label-budget curve,
# go into `results.json`.

# %%
tapkit.course.results.record("heads", **{name: {k: row[k] for k in ("precision", "recall", "precision_std", "recall_std",
                                                                     "n_runs", "converged", "lr")}
                                          for name, row in table.items()});
if real_data is not None:
    tapkit.course.results.record("heads_real", data=str(real_data), n_divisions=len(real.meta["divisions"]),
                                 **{name: {k: row[k] for k in ("precision", "recall", "f1", "f1_std", "n_runs", "converged")}
                                    for name, row in real_table.items()})
tapkit.course.results.record("label_budget", n_train=curve["n_train"],
                             **{s: np.asarray(curve[s]).mean(axis=1) for s in ("A1", "C1")},
                             converged={s: bool(curve["converged"][s].all()) for s in ("A1", "C1")});

# %% [markdown]
# ## Saved for notebooks 05 and 06
#
# Notebooks 05 and 06 study the A0 and A1 heads of the first run (seed `seed`) on the *size filter,
# either* labels. We save them (weights, validation and test logits, scores) with the settings they were
# trained with in the run folder, so 05 and 06 load them instead of training again.

# %%
if criterion == "size-either":
    _settings = tapkit.course.saved_heads.heads_settings(cfg, tap_model, event_pairs, labels, split, criterion)
    print("saved", tapkit.course.saved_heads.save_event_heads(cfg, {s: results[s] for s in ("A0", "A1")}, _settings))
else:
    print(f"criterion {criterion!r}: notebooks 05 and 06 use 'size-either', so nothing is saved for them")

# %% [markdown]
# ## Summary
#
# - A fair comparison trains every row the same way: the same steps at every budget, the best weights and
#   the learning rate chosen on validation, paired runs. Without that, a table measures training length.
# - Whether frozen TAP features beat frozen random ones, whether a ResNet head beats a linear one and whether
#   TAP beats end-to-end training with few labels: the verdicts under the tables say, for this movie, this
#   profile and this number of runs. An *inconclusive* verdict is an answer too: more runs are needed.
# - Report paired differences with an interval, not single runs: small heads vary a lot with few labels.
#
# **Next:** notebook 05 looks at *when* and *why* the classifier errs; notebook 06 asks whether its
# probabilities can be trusted (calibration).
