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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tapkit-course/tapkit/blob/main/notebooks/05_error_timing.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/tapkit-course/tapkit/HEAD?labpath=notebooks%2F05_error_timing.ipynb)
#
# *This copy shows the exercise solutions (the cell right after each answer cell). For a copy without
# them, run `tapkit course student` in the repository (locally or in Binder's terminal): README, Set-up.*
#
# # 05 · When and how does the event classifier get it wrong?
#
# A precision of 0.7 tells you *how often* a classifier is wrong, not *when* or *why*. Following
# Chen et al. (2024, Figs. 3-4), we take the best strategy of notebook 04 (A1: frozen TAP features
# + ResNet head) and a linear head (A0), as notebook 04 trained and saved them, then look at **when** in the movie the mistakes happen and
# **what** the most confident mistakes look like. Knowing the failure modes tells you which crops a
# person should double-check and how to improve labels or training data.
#
# **Learning goals**
# - count true/false positives and negatives per frame and read the paper's error-timing plots
# - rank mistakes by the model's confidence and inspect them as a gallery of crop pairs
# - name typical causes of false positives (cells at the crop edge, bright debris, changes of contrast,
#   events just below the labelling threshold) and of false negatives
# - compare the mistakes of a linear and a ResNet head
#
# **Estimated runtime**
#
# | profile | time |
# | --- | --- |
# | smoke | < 2 min |
# | cpu (2 cores) | ~1 min |
# | gpu | ~2 min |

# %%
# Set-up: on Colab, install tapkit without touching Colab's torch or numpy (--no-deps); elsewhere nothing to do.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run("pip install -q 'tifffile>=2023.1' 'pooch>=1.7' && pip install -q --no-deps 'tapkit-course @ git+https://github.com/tapkit-course/tapkit'", shell=True, check=True)

# %% tags=["parameters"]
profile = "auto"  # sizes crop pairs and head training (used if notebook 04's heads are not there): "smoke" (CI), "cpu" (2 cores), "gpu" or "auto" (gpu with a GPU)
data = "simulated"  # a dataset name ("simulated", "hela-subset") or the path of an annotated movie
seed = 0  # one number fixes crops, splits and (if trained here) head weights
device = "auto"  # "auto", "cpu", "cuda" or "mps"
out_dir = "runs/latest"  # the run folder: reads 01's TAP checkpoint and 04's heads, writes results.json
channel = None  # the channel to use of a multi-channel TIFF in `data` (None: single-channel data)
crops_n_pairs = None  # number of crop pairs cut from the movie (None: from the profile)
heads_steps_linear = None  # optimiser steps for the linear head (None: from the profile)
heads_steps_resnet = None  # optimiser steps for the ResNet head (None: from the profile)
n_mistakes = 8  # how many confident mistakes to show per gallery

# %%
import numpy as np
import tapkit, tapkit.course, tapkit.course.results, tapkit.course.saved_heads
import tapkit.plot as tplot
from tapkit.downstream.events import criteria, crops
from tapkit.downstream.events import error_timing as et

cfg = tapkit.course.configure(globals(), notebook="05")

# %% [markdown]
# ## 1 · Data, TAP model and crop pairs
#
# As in notebook 04: an annotated movie, the TAP model from notebook 01 (or a shipped / quickly
# trained one), crop pairs labelled with the paper's best criterion (*size filter, either*: an event
# of at least 40 pixels in either crop), and a train/val/test split with a balanced training set.

# %%
movie = tapkit.course.load_data(cfg)
tap_model = tapkit.course.get_tap_model(cfg, movie=movie)
event_pairs, labels, split = tapkit.course.saved_heads.event_dataset(cfg, movie, "size-either")  # as in 04
print(event_pairs, f"| events: {labels.sum()} of {len(labels)} pairs")
print(crops.format_table(crops.dataset_table({"size-either": labels}, split)))

# %% [markdown]
# ## 2 · The ResNet head (A1) and the linear head (A0) of notebook 04
#
# Both heads sit on the same frozen TAP features; only the head was trained. Notebook 04 saved its runs in
# the run folder and we take the first (seed `seed`); if it has not been run with these settings (data,
# seed, sizes, training, TAP model), the profile's runs are trained here and saved for notebook 06 -- the
# line below says which. The confusion matrix on the test split is the analogue of
# the paper's Table 3 (rows: actual, columns: predicted).

# %%
saved = tapkit.course.saved_heads.get_event_heads(cfg, tap_model, event_pairs, labels, split, "size-either")
res_a1, res_a0 = saved["A1"], saved["A0"]
for res in (res_a1, res_a0):
    print(res.strategy, "confusion (rows actual 0/1, columns predicted 0/1):\n", res.confusion)
    print("   precision", res.precision.round(2), "recall", res.recall.round(2))


# %% [markdown]
# ## 3 · When do the mistakes happen?
#
# `error_timing` counts, for every frame index t of the test pairs, the true/false positives and
# negatives, and divides each count by its total over the whole movie (the *share*). Left panel (the
# paper's Fig. 3): how false positives spread over time compared with true and ground-truth positives.
# Right panel (Fig. 4): false negatives against true and ground-truth negatives.
#
# If the false-positive curve runs above the ground-truth positives in some frames, the model is
# fooled by something that happens there: early frames with few cells and few events (as in the
# paper), focus drift, a change of illumination.

# %%
def timing_of(res):
    """Error timing of a run_strategy result on its test split."""
    y_pred = res.test_logits.argmax(1)
    return et.error_timing(event_pairs.t[res.test_index], res.test_labels, y_pred, n_frames=len(movie))

timing_a1 = timing_of(res_a1)
tplot.events.plot_error_timing(timing_a1, title="A1: TAP features + ResNet head, test split");

# %% [markdown]
# The same plot for the linear head. The paper reports that the ResNet head mainly removes false
# positives (recall of class 0 rises from A0 to A1): compare the numbers in the legends.

# %%
timing_a0 = timing_of(res_a0)
tplot.events.plot_error_timing(timing_a0, title="A0: TAP features + linear head, test split");
print("false positives  A0:", timing_a0["fp"].sum(), " A1:", timing_a1["fp"].sum())
print("false negatives  A0:", timing_a0["fn"].sum(), " A1:", timing_a1["fn"].sum())

# %% [markdown]
# ## 4 · The most confident mistakes
#
# Counting is not understanding: let us *look* at the mistakes. `worst_mistakes` ranks the false
# positives by the predicted event probability (most sure first) and the false negatives by how sure
# the model was that nothing happens. Each tile shows frame t and frame t + delta of a crop pair;
# red contours mark division pixels, cyan contours death pixels (the colours of every notebook), and
# the title gives P(event).

# %%
tplot.events.plot_result_mistakes(res_a1, event_pairs, "false_positives", k=n_mistakes);

# %% [markdown]
# What to look for in the false positives (paper 001, Sec. 5): **cells at the edge of the crop** that
# move in or out (TAP features react to anything that changes with time), **bright debris or dead
# cell bodies** whose contrast changes, and **events just outside the label** -- a division whose mask
# is cut by the crop border or stays below the 40-pixel size threshold, so the label says "no event"
# although the model is arguably right. The last kind is a labelling question, not a model error.

# %%
tplot.events.plot_result_mistakes(res_a1, event_pairs, "false_negatives", k=n_mistakes);

# %% [markdown]
# False negatives are often events that are **small or faint in the crop**: the very beginning of a
# mitosis, a daughter cell that only just crosses the threshold, or a death that looks like a cell
# leaving the field of view. Cell deaths are rarer than divisions, so the head has seen fewer of them.

# %% [markdown]
# ## Exercise 1 · How many false positives are near-misses?
#
# A false positive whose crops already contain *some* event pixels (below the size threshold, or at
# the border) is a "near miss": the model saw a real event that the labelling criterion rejected.
# Compute `near_miss_fraction`: the fraction of A1's false positives (test split) whose two mask crops
# contain at least one non-zero pixel. *Hint*: `event_pairs.masks` is `(N, 2, S, S)`; the test pairs are
# `res_a1.test_index`.

# %%
near_miss_fraction = ...  # your answer: a number between 0 and 1

# %% tags=["solution"]
pred = res_a1.test_logits.argmax(1)
fp_pairs = res_a1.test_index[(pred == 1) & (res_a1.test_labels == 0)]
near_miss_fraction = float((event_pairs.masks[fp_pairs] > 0).any(axis=(1, 2, 3)).mean()) if len(fp_pairs) else 0.0
print(f"{near_miss_fraction:.0%} of the {len(fp_pairs)} false positives are near-misses")


# %%
def _expected_near_miss(res):
    fp = (res.test_logits[:, 1] > res.test_logits[:, 0]) & (res.test_labels == 0)
    pix = criteria.event_pixels(event_pairs)[res.test_index[fp]]
    return float(np.mean(np.asarray(pix).reshape(len(pix), -1).sum(1) > 0)) if fp.any() else 0.0

tapkit.course.check(near_miss_fraction, _expected_near_miss(res_a1), tol=1e-6, name="near_miss_fraction",
                    hint="select test pairs with prediction 1 and label 0, then check masks > 0 over axes (1, 2, 3)");

# %% [markdown]
# > **Checkpoint.** Not every false positive is the model's fault: some are events that the labelling criterion
# > of notebook 03 chose not to count. **Question:** would a criterion without the size filter (`any-either`) turn
# > these near-misses into true positives, and what would it cost elsewhere?

# %% [markdown]
# ## Results
#
# The key numbers go into `results.json` (collected by the course runner into `summary.json`).

# %%
tapkit.course.results.record("error_timing",
    a1=dict(false_positives=int(timing_a1["fp"].sum()), false_negatives=int(timing_a1["fn"].sum()),
            precision=res_a1.precision, recall=res_a1.recall),
    a0=dict(false_positives=int(timing_a0["fp"].sum()), false_negatives=int(timing_a0["fn"].sum()),
            precision=res_a0.precision, recall=res_a0.recall));

# %% [markdown]
# ## Summary
#
# - Error timing shows *where in the movie* a classifier fails; comparing the shares of false
#   positives with those of the ground-truth positives reveals frames with misleading content.
# - Ranking mistakes by confidence and looking at them is the fastest way to find their causes:
#   cells at crop borders, debris and contrast changes, and labels that disagree with what is visible.
# - A non-linear (ResNet) head removes many of the linear head's false positives.
#
# **Next:** notebook 06 asks whether the model's probabilities can be *trusted*: calibration and
# temperature scaling.
