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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tapkit-course/tapkit/blob/main/notebooks/00_welcome_and_data.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/tapkit-course/tapkit/HEAD?labpath=notebooks%2F00_welcome_and_data.ipynb)
#
# *This copy shows the exercise solutions (the cell right after each answer cell). For a copy without
# them, run `tapkit course student` in the repository (locally or in Binder's terminal): README, Set-up.*
#
# # 00 · Welcome: the course and its data
#
# Microscopes record far more live-cell movies than anyone can annotate. This course shows how a
# network can learn useful features from *unlabelled* movies by solving a pretext task — telling
# whether two frames are in the right temporal order, **time arrow prediction** (TAP; Gallusser et al.
# 2023) — and how those features help to recognise cell divisions and deaths from few labels
# (Chen et al. 2024). This first notebook sets you up and introduces the data every later notebook uses.
#
# **Learning goals**
#
# - check your set-up (GPU or CPU) and what it means for runtimes;
# - load the simulated movie with its ground truth (labels, events, lineage) and real HeLa frames;
# - load your own movie: a TIFF file or a Cell Tracking Challenge (CTC) folder;
# - browse a movie interactively;
# - tell what in a movie is truly time-asymmetric (divisions, deaths) from shortcuts (photobleaching, drift).
#
# **Estimated runtime**
#
# | profile | smoke | cpu (2 cores) | gpu |
# | --- | --- | --- | --- |
# | this notebook | < 1 min | 1-2 min | < 1 min |
#
# The first use of the real HeLa frames downloads about 50 MB once (then they are cached).

# %%
# Set-up: on Colab, install tapkit without touching Colab's torch or numpy (--no-deps); elsewhere nothing to do.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run("pip install -q 'tifffile>=2023.1' 'pooch>=1.7' && pip install -q --no-deps 'tapkit-course @ git+https://github.com/tapkit-course/tapkit'", shell=True, check=True)

# %% tags=["parameters"]
profile = "auto"  # sizes the size of the simulated movie: "smoke" (CI), "cpu" (2 cores), "gpu" or "auto" (gpu with a GPU)
data = "simulated"  # a dataset name ("simulated", "hela-subset") or the path of your own TIFF movie / CTC folder
seed = 0  # one number fixes the simulation: same seed -> same movie
device = "auto"  # "auto", "cpu", "cuda" or "mps"
out_dir = "runs/latest"  # where the notebooks write files (shared by all notebooks of a run)
channel = None  # the channel to use of a multi-channel TIFF in `data` (None: single-channel data)
sim_n_frames = None  # frames of the simulated movie (None: from the profile)
sim_size = None  # (Y, X) size of the simulated movie in pixels (None: from the profile)
bleaching = 0.02  # photobleaching rate per frame in the shortcut demo (0: none)

# %%
from pathlib import Path
import numpy as np
import matplotlib.pyplot as plt
import tapkit, tapkit.course, tapkit.course.results
import tapkit.plot as tplot
from tapkit.data import datasets
from tapkit.data import io

cfg = tapkit.course.configure(globals(), notebook="00")

# %% [markdown]
# ## 1 · Your set-up
#
# Everything in this course runs on a CPU, but training is where a GPU pays off. The **profile**
# decides how big the data and the training are: `smoke` is a seconds-long check (used by the tests),
# `cpu` fits the whole course into about 20 minutes on 2 CPU cores with bfloat16 instructions (measured runs:
# docs/RESULTS.md), and `gpu` trains long enough to compare with the papers. `profile = "auto"` picks
# `$TAPKIT_PROFILE` when that environment variable is set, else `gpu` when PyTorch sees a GPU, else `cpu`;
# the table above says where this run's profile came from. On a CPU with bfloat16 instructions
# (avx512_bf16 or AMX: Intel Xeon from Sapphire Rapids on, AMD Zen 4 and later) the networks compute in
# bfloat16, about twice as fast as in float32; other CPUs compute in float32 and take longer
# (`$TAPKIT_CPU_BF16=0` or `1` decides it yourself); the `device` line of the table above says which.

# %%
import torch

print(f"tapkit {tapkit.__version__} · torch {torch.__version__} · {torch.get_num_threads()} CPU threads")
print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
print(f"This run: profile {cfg.profile!r} on {cfg.device}")

# %% [markdown]
# What each profile trains in notebook 01 (steps x batch = how many frame pairs the network sees) and how
# big the simulated movie is. On 2 CPU cores the `gpu` profile would take many hours; with a GPU it takes
# minutes. If you have no GPU, stay with `cpu` (or `smoke` to try things out quickly).

# %%
rows = [(name, (p["sim"]["n_frames"], *p["sim"]["size"]), p["tap"]["epochs"] * p["tap"]["steps_per_epoch"],
         p["tap"]["batch_size"], p["tap"]["patch"]) for name, p in tapkit.course.profiles.PROFILES.items()]
print(f"{'profile':8} {'movie (T, Y, X)':>16} {'TAP steps':>10} {'batch':>6} {'patch':>6}")
for name, movie_shape, steps, batch, patch in rows:
    print(f"{name:8} {str(movie_shape):>16} {steps:>10} {batch:>6} {patch:>6}" + ("   <- this run" if name == cfg.profile else ""))

# %% [markdown]
# ## 2 · The simulated movie and its ground truth
#
# Real movies rarely come with complete annotations, so the course's default data is a **simulated**
# movie of fluorescent nuclei (think H2B-GFP), one frame every 30 min like the real HeLa movie: nuclei
# grow, move, divide (condense for about an hour, line up, split into two small bright daughters that
# re-expand over a few frames) and die (shrink, fragment, fade), imaged with uneven illumination and
# camera noise. Because we simulated it, we know everything: which pixel belongs to which cell, and when
# and where every division and death happens. `tapkit.course.load_data` makes it with the profile's size.

# %%
sim = tapkit.course.load_data(cfg, "simulated")
print(sim)
print(f"{len(sim)} frames of {sim.shape[1]} x {sim.shape[2]} px, {sim.pixel_size:.2f} µm per px, "
      f"one frame every {sim.frame_interval:g} min ({len(sim) * sim.frame_interval / 60:.0f} h in total)")
tplot.frames.show_frames(sim, overlay=None);

# %% [markdown]
# A `tapkit.Movie` carries up to three kinds of ground truth next to `images` (T, Y, X):
#
# - `labels` (T, Y, X): an instance id per pixel (0 = background) — a segmentation and tracking;
# - `events` (T, Y, X): 0 = nothing, 1 = **division** (the mother during mitosis and the daughters just
#   after), 2 = **death** (the cell during apoptosis);
# - `lineage` (N, 4): one row per track in the CTC convention — `id, first frame, last frame, parent id`
#   (parent 0 = the track did not come from a division in this movie).
#
# Below: the outlines of the labels, then the event masks (divisions red, deaths cyan).

# %%
tplot.frames.show_frames(sim, overlay="labels");
tplot.frames.show_frames(sim, overlay="events");

# %%
print("   id  first   last parent")
for row in sim.lineage[:8]:
    print("".join(f"{v:>6}" for v in row))
daughters = sim.lineage[sim.lineage[:, 3] > 0]
print(f"... {len(sim.lineage)} tracks in total. Daughter tracks (parent > 0): {len(daughters)}\n{daughters[:6]}")

# %% [markdown]
# ## Exercise 1 · The busiest frame
#
# Which frame of `sim` has the most **division** pixels? Count them per frame from `sim.events`.

# %%
busiest_frame = ...  # your answer: a frame index (an int)

# %% tags=["solution"]
busiest_frame = int(np.argmax((sim.events == tapkit.DIVISION).sum(axis=(1, 2))))

# %%
_div = (sim.events == tapkit.DIVISION).sum(axis=(1, 2))
tapkit.course.check(busiest_frame, lambda t: _div[t] == _div.max(), name="busiest_frame",
                    hint="compare sim.events with tapkit.DIVISION, count per frame (sum over the two image axes), then look for "
                         "the index of the largest count");

# %% [markdown]
# ## Exercise 2 · Divisions from the lineage
#
# How many divisions does `sim.lineage` record? Each division starts two daughter tracks that both carry
# the mother's id in the `parent` column (column 3; 0 = no parent).

# %%
n_divisions = ...  # your answer: an int

# %% tags=["solution"]
parents = sim.lineage[:, 3]
n_divisions = len(np.unique(parents[parents > 0]))

# %%
tapkit.course.check(n_divisions, len({int(p) for p in sim.lineage[:, 3] if p > 0}), name="n_divisions",
                    hint="count the *distinct* non-zero parent ids (each mother has two daughters)");

# %% [markdown]
# > **Checkpoint.** The lineage says *that* a cell divided, the event mask *where and when*; TAP will see
# > neither, only the images. **Question:** a division gives two daughter tracks. Why does counting the rows with
# > a parent give twice the number of divisions, and what would a division whose daughters leave the field show?

# %% [markdown]
# Events are rare: most pixels at most times show nothing special. How rare is the first thing to know
# about any event-recognition problem (it decides how we sample and balance training data in notebook 03).

# %%
per_frame = {name: (sim.events == kind).sum(axis=(1, 2)) for name, kind in (("division", tapkit.DIVISION), ("death", tapkit.DEATH))}
fig, ax = plt.subplots(figsize=(7, 2.6))
for name, counts in per_frame.items():
    ax.plot(counts, label=f"{name}: {counts.sum() / sim.events.size:.2%} of all pixels")
ax.set(xlabel="frame", ylabel="event pixels", title="How much of the movie is an event?")
ax.legend();

# %% [markdown]
# ## 3 · Browse a movie
#
# Static frames hide what moves. The browser below has a frame slider, a play button and a switch for
# the event overlay. (Widgets need a live notebook: in a static rendering, e.g. on GitHub, you only see
# their description.)

# %%
tplot.frames.movie_browser(sim)

# %% [markdown]
# ## 4 · Real data: HeLa nuclei
#
# The simulation is a stand-in for real movies like the Cell Tracking Challenge dataset
# **Fluo-N2DL-HeLa** (H2B-GFP HeLa cells, one frame every 30 min). `datasets.load("hela-subset")` gives
# 20 of its frames with segmentation masks; the first call downloads them once (about 50 MB) and checks
# their checksums. The subset has no lineage, so it has `labels` but no `events`.

# %%
try:
    hela = datasets.load("hela-subset")
except ConnectionError as err:  # offline and not cached yet: the rest of the course uses simulated data
    hela = None
    print(err)
if hela is not None:
    print(hela, f"· {hela.images.min():.0f}-{hela.images.max():.0f} raw intensity")
    tplot.frames.show_frames(hela, frames=[0, len(hela) // 2, len(hela) - 1], overlay="labels");

# %% [markdown]
# ## 5 · Your own data
#
# Every notebook reads its movie through one parameter, `data`: a dataset name, or the path of
#
# - a **TIFF movie** with axes (T, Y, X) — multi-channel files need `datasets.load(path, channel=0)`;
# - a **folder of 2D TIFF frames** (sorted naturally: `t2.tif` before `t10.tif`);
# - a **CTC sequence folder** such as `Fluo-N2DL-HeLa/01`, with ground truth in `01_GT/TRA`
#   (masks `man_trackNNN.tif` and the lineage `man_track.txt`).
#
# Here we write the simulated movie in both formats into `out_dir` and read it back, exactly as you would
# read your own. To use your movie in a notebook, set `data = "path/to/movie.tif"` in its parameters cell
# (or run the course with `tapkit course run -p data=path/to/movie.tif`).

# %%
own = Path(cfg.out_dir) / "my_data"
tiff_path = io.write_tiff(sim, own / "my_movie.tif")
ctc_seq = io.write_ctc(sim, own / "my_ctc", overwrite=True)
print("wrote", tiff_path, "and", ctc_seq, "with", sorted(p.name for p in ctc_seq.parent.iterdir()))

# %%
from_tiff = datasets.load(tiff_path)
from_ctc = datasets.load(ctc_seq)
print(from_tiff, from_ctc, sep="\n")
print("same pixels:", np.array_equal(from_tiff.images, sim.images), np.array_equal(from_ctc.images, sim.images))
print("same lineage:", np.array_equal(from_ctc.lineage, sim.lineage))

# %% [markdown]
# A TIFF movie carries only the images. The CTC format carries labels and the lineage but no event
# masks: `read_ctc` derives the *division* events from the lineage (a mother whose track ends where two
# daughter tracks start). Deaths are not part of the CTC format.

# %% [markdown]
# ## 6 · What tells the arrow of time — and what only seems to
#
# A network that predicts the order of two frames learns whatever changes *irreversibly* in time.
# Some of it is biology we want: a mother splits into two daughters (two nuclei never merge into one),
# a dying cell condenses and falls apart (fragments never reassemble), cells grow through their cycle.
# Much of the movie is close to time-symmetric: jiggling, migrating nuclei look plausible played backwards.
#
# Other irreversible changes are **shortcuts** that have nothing to do with cells:
#
# - **photobleaching**: the fluorophores fade, so every frame is a little darker than the one before;
# - **drift**: the stage or the focus slowly moves, so the whole field shifts in one direction.
#
# A network rewarded for the time arrow learns these first, because they are everywhere and easy.
# Below, the same simulation with photobleaching switched on: its mean intensity falls steadily. After
# per-frame percentile normalisation (`tapkit.normalize`, used by TAP before training) the *decay* is gone:
# the two movies' curves lie on top of each other. What is left is a slow rise in both, and it is not the
# camera: the field fills up as cells divide, a real but global change.

# %%
from tapkit.data.simulate import simulate_movie

bleached = simulate_movie(**cfg.sim, bleaching=bleaching, seed=cfg.seed, progress=False)
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for name, movie in (("no bleaching", sim), (f"bleaching {bleaching}/frame", bleached)):
    axes[0].plot(movie.images.mean(axis=(1, 2)), label=name)
    axes[1].plot(tapkit.normalize(movie.images).mean(axis=(1, 2)), label=name)
axes[0].set(title="raw: mean intensity", xlabel="frame")
axes[1].set(title="after per-frame normalisation", xlabel="frame")
axes[0].legend(); fig.tight_layout();

# %% [markdown]
# ## Exercise 3 · A network-free time arrow
#
# How well does the dumbest possible "model" — *the darker frame is the later one* — order frames?
# Write `darker_is_later(images)` that returns the fraction of consecutive frame pairs (t, t+1) whose
# mean intensity goes down. Chance is 0.5. The next cell runs your function on both movies above, so the
# checker stops the notebook until it is right.

# %%
def darker_is_later(images):
    ...  # your answer: return a float between 0 and 1


# %% tags=["solution"]
def darker_is_later(images):
    means = np.asarray(images).mean(axis=(1, 2))
    return float(np.mean(np.diff(means) < 0))


# %%
_toy = np.ones((5, 8, 8)) * np.array([5.0, 4.0, 3.0, 4.0, 2.0])[:, None, None]  # 3 of 4 steps go darker
tapkit.course.check(darker_is_later, lambda f: np.isclose(f(_toy), 0.75), name="darker_is_later", stop=True,
                    exercise="Exercise 3 · A network-free time arrow",
                    hint="one mean brightness per frame, then the change from each frame to the next; count the "
                         "changes that go down, out of all of them");

# %%
shortcut = {name: {"raw": darker_is_later(m.images), "normalised": darker_is_later(tapkit.normalize(m.images))}
            for name, m in (("no bleaching", sim), ("bleaching", bleached))}
for name, acc in shortcut.items():
    print(f"{name:>13}: 'darker is later' is right for {acc['raw']:.0%} of raw pairs, {acc['normalised']:.0%} after normalisation")

# %% [markdown]
# With bleaching, the brightness rule orders far more raw pairs correctly than the 50 % of chance (the
# numbers above), without looking at a single cell. After per-frame normalisation it loses that edge:
# it drops to chance or below — below chance means the opposite rule works, because the field fills up
# with cells (the slow rise in the plot above). TAP therefore normalises every frame and compares small
# patches, where only local changes such as divisions remain.

# %% [markdown]
# ## Results

# %%
tapkit.course.results.record("data", n_frames=len(sim), size=list(sim.shape[1:]), n_tracks=len(sim.lineage),
                      n_divisions=len(np.unique(sim.lineage[sim.lineage[:, 3] > 0, 3])),
                      division_pixel_fraction=float((sim.events == tapkit.DIVISION).mean()),
                      death_pixel_fraction=float((sim.events == tapkit.DEATH).mean()),
                      shortcut_bleaching_raw=shortcut["bleaching"]["raw"],
                      shortcut_bleaching_normalised=shortcut["bleaching"]["normalised"]);

# %% [markdown]
# ## Summary
#
# - Choose a **profile** to match your hardware; `configure` validates the parameters, seeds everything
#   and picks the device.
# - A `tapkit.Movie` holds `images` (T, Y, X) and, when known, `labels`, `events` and a CTC `lineage`;
#   the simulated movie has all of them, the HeLa subset has labels only.
# - Your own data comes in as a TIFF movie, a folder of frames or a CTC folder, via the `data` parameter.
# - Divisions and deaths are truly time-asymmetric; photobleaching and drift are shortcuts a network
#   would happily learn instead. Per-frame normalisation removes the bleaching shortcut.
#
# **Next:** notebook 01 trains a TAP network to tell the arrow of time on pairs of movie patches.
