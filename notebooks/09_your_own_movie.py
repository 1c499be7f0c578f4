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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tapkit-course/tapkit/blob/main/notebooks/09_your_own_movie.ipynb) [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/tapkit-course/tapkit/HEAD?labpath=notebooks%2F09_your_own_movie.ipynb)
#
# *This copy shows the exercise solutions (the cell right after each answer cell). For a copy without
# them, run `tapkit course student` in the repository (locally or in Binder's terminal): README, Set-up.*
#
# # 09 · Your own movie
#
# You have finished the course on simulated nuclei and on the HeLa subset; now it is your turn. This
# notebook takes *your* time-lapse, checks it for the shortcuts the course taught (bleaching, drift),
# measures how big its nuclei are and bins it to the size the defaults expect, pretrains a model on it
# (a rerun continues where an interrupted run stopped), shows where the model looks, and exports
# features and regions for napari or Fiji.
#
# **Learning goals**
# - point tapkit at your data: a TIFF or OME-TIFF movie, a folder of TIFF frames, a Cell Tracking
#   Challenge folder or a zarr array
# - check a movie for time-arrow shortcuts before training on it, and read the warnings
# - choose a binning from the measured nucleus size, with a reason
# - pretrain, explain and export, so the results leave the notebook
#
# **Estimated runtime**
#
# | profile | time |
# | --- | --- |
# | smoke | ~2 min on the default (simulated) data, measured on shared cores |
# | cpu (2 cores) | ~1.5 min measured (93-101 s, bfloat16) on the default movie after notebooks 01 and 04 (their training and event runs are reused); on a new 64 x 256 x 256 movie add ~5 min of pretraining |
# | gpu | ~15 min of pretraining, more for large movies |

# %%
# Set-up: on Colab, install tapkit without touching Colab's torch or numpy (--no-deps); elsewhere nothing to do.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run("pip install -q 'tifffile>=2023.1' 'pooch>=1.7' && pip install -q --no-deps 'tapkit-course @ git+https://github.com/tapkit-course/tapkit'", shell=True, check=True)

# %% tags=["parameters"]
profile = "auto"  # sizes pretraining, Grad-CAM and export: "smoke" (CI), "cpu" (2 cores), "gpu" or "auto" (gpu with a GPU)
data = "simulated"  # YOUR movie: a TIFF / OME-TIFF path, a folder of TIFF frames, a CTC sequence folder, a .zarr array, or a dataset name
seed = 0  # one number fixes crops, weights and regions: same seed -> same results
device = "auto"  # "auto", "cpu", "cuda" or "mps"
out_dir = "runs/latest"  # where the checkpoint (resumed on a rerun), the exported features and regions go
binning = None  # bin frames n x n (None: the binning recommended from the measured nucleus size)
channel = None  # the channel of a multi-channel TIFF or zarr array (None: single-channel data)
pretext = "tap"  # the pretext task to train: "tap", "mim", "mim-intensity" or "contrastive" (notebook 07)
export_features = True  # write dense features (.npz) and top regions (.csv) to out_dir
tap_epochs = None  # pretraining epochs (None: from the profile)
tap_steps_per_epoch = None  # steps per epoch (None: from the profile)
gradcam_n_frames = None  # frame pairs whose top regions are computed and exported (None: from the profile)
gradcam_k = None  # top regions per pair (None: from the profile)
own_export_frames = None  # frames whose dense features are exported (None: from the profile)

# %%
from dataclasses import replace
import numpy as np
import torch
import tapkit, tapkit.course, tapkit.course.results
import tapkit.plot as tplot
from tapkit.course import own_movie
from tapkit.data import export, inspect
from tapkit.ssl.features import embed

cfg = tapkit.course.configure(globals(), notebook="09")

# %% [markdown]
# ## 1 · Your movie
#
# `data` takes any of these (the check above already opened its header, so a wrong path, a damaged
# file, a single 2-D image, a channel that does not exist or a 3-D time-lapse stop here, before any
# training):
#
# | you have | set `data =` | notes |
# | --- | --- | --- |
# | one TIFF or OME-TIFF stack | `"path/movie.tif"` | axes TYX; TCYX needs `channel = 0, 1, ...`; Z and T both > 1 is refused: save a z-slice or max projection |
# | a folder of 2-D TIFF frames | `"path/frames/"` | sorted naturally: t2 before t10 |
# | a Cell Tracking Challenge sequence | `"path/Fluo-N2DL-HeLa/01"` | its `01_GT/TRA` lineage, if present, gives division events |
# | a zarr array or OME-Zarr image | `"path/movie.zarr"` | needs `pip install 'tapkit-course[zarr]'` |
#
# The default, `"simulated"`, is the course's movie, so that this notebook runs anywhere. We load the
# movie at full resolution here; section 3 decides the binning. Move the slider to browse it.

# %%
raw = tapkit.course.load_data(replace(cfg, binning=1))  # full resolution (T, Y, X)
overlay = "events" if raw.has_events else None
print(raw, f"| file dtype {raw.meta.get('dtype', 'float32')}")
tplot.frames.show_frames(raw, overlay=overlay);

# %%
tplot.frames.movie_browser(raw, overlay=overlay)

# %% [markdown]
# ## 2 · Check it: shortcuts before training
#
# Notebooks 00 and 01 showed two ways a network can tell the order of two frames without looking at a
# single cell: **bleaching** (later frames are darker) and **drift** (the field moves steadily one way).
# `check_movie` measures both: the brightness of the nuclei above the background in every frame with a
# straight-line fit, and the shift between consecutive frames by phase correlation. The warnings below
# (if any) say what to do; per-frame normalisation, on by default, already removes a global brightness
# change, but not drift. A trend is a warning only above the thresholds printed under the table (1 % of
# the brightness per frame, 0.2 px per frame), because cells alone move the brightness by less: the
# course's simulated movie has no bleaching at all, yet its nuclei get darker or brighter by several per
# cent over the movie (by seed: up to 16 % in 24 frames) as they grow, divide and die; so "no warnings"
# means no trend beyond what the cells themselves can cause.

# %%
report = inspect.check_movie(raw)
print(report.table())
print("\n".join(f"WARNING: {w}" for w in report.warnings) or "no warnings")
print(f"(warnings start above {100 * inspect.BLEACHING_WARN:g} % of the brightness per frame, "
      f"{inspect.DRIFT_WARN:g} px per frame of steady drift and a jump of {inspect.JUMP_WARN:g} px between two "
      "frames; a smaller single step shifts only the crops of that one frame pair)")
tplot.inspect.plot_checks(report, raw);

# %% [markdown]
# ## Exercise 1 · The bleaching rate
#
# `report.means` holds the brightness of the nuclei above the background in each frame. Fit a straight
# line `means ≈ intercept + slope · t` (`np.polyfit`) and compute `my_rate`, the fraction of the initial
# brightness lost per frame: `-slope / intercept` (positive when the movie gets darker).

# %%
my_rate = ...  # your answer: a number

# %% tags=["solution"]
slope, intercept = np.polyfit(np.arange(len(report.means)), report.means, 1)
my_rate = -slope / intercept

# %%
tapkit.course.check(my_rate, report.bleaching_rate, tol=1e-9, name="my_rate",
                    hint="fit the means against the frame index 0, 1, 2, ...; np.polyfit returns the highest power "
                         "first");

# %% [markdown]
# > **Checkpoint.** Bleaching is a change over time that has nothing to do with cells: a network can read the
# > order of frames from it. **Question:** per-frame normalisation removes the brightness trend; what does it
# > leave that still changes with bleaching (think of the camera noise)?

# %% [markdown]
# ## 3 · How big are the nuclei? Choose a binning
#
# The profiles' crop sizes and the U-Net were chosen for the simulated nuclei, about 6 px in radius.
# Nuclei much larger than that fill a crop on their own (the HeLa nuclei, ~14 px, are binned 2 x 2 in
# the course for this reason). `estimate_nucleus_size` thresholds a few frames (Otsu), takes the
# connected bright objects and reports the median of their equivalent radius sqrt(area / π).
# `recommend_binning` turns that into a factor and says why; `binning = ...` overrides it.

# %%
size = inspect.estimate_nucleus_size(raw, n_frames=cfg.own["nucleus_frames"])
advice = inspect.recommend_binning(size.radius)
factor = advice.factor if cfg.binning is None else cfg.binning
print(f"nucleus radius ~{size.radius:.1f} px ({size.n_blobs} objects in frames {size.frames})")
print(f"recommended binning {advice.factor}: {advice.reason}")
print(f"using binning {factor} ({'your binning parameter' if cfg.binning is not None else 'the recommendation'})")
movie = raw.bin(factor)
tplot.inspect.plot_nucleus_size(raw, size, advice);

# %% [markdown]
# ## 4 · Pretrain on your movie (resumable)
#
# The course's one trainer, with the profile's sizes (`tap_*` parameters) and the task `pretext`. The
# checkpoint `out_dir/own_<task>_<data>_bin<b>.pt` is written after every epoch; run this cell again
# after a disconnect and it continues from the last finished epoch (a finished model is just loaded).
# On the course's own movie (the default `data`), notebook 01 has already run exactly this training
# (same task, movie, settings and seed: the checkpoint records them); it is then reused, not repeated.
# The lines below say which happened. In the smoke profile the training is a handful of steps: the
# curves only show that it runs.

# %%
model, history, checkpoint = own_movie.pretrain(cfg, movie, pretext)
print(f"{len(history.get('train_loss', []))} epochs | last validation loss {history['val_loss'][-1]:.4f}")
tplot.tap.plot_history(history);

# %% [markdown]
# **Has TAP learned the cells?** (TAP only.) The checks of notebook 01, section 8, on your movie: the
# accuracy on the held-out last frames and, with the recipe for real movies, on the held-out right part of
# every frame, every crop normalised on its own (no frame-wide cue left), with 95 % intervals and how many
# frame pairs are above chance. A warning below names what to try; no warning means both checks passed.

# %%
tap_checks = {}
if pretext == "tap":
    from tapkit.ssl import tap

    tap_checks = tap.held_out_checks(model, movie, cfg.tap.get("val_region", 0.0), n_pairs=cfg.evaluation["n_pairs"],
                                     patch=cfg.tap["patch"], seed=cfg.seed, val_at=cfg.tap["val_at"])
for name, res in tap_checks.items():
    print(f"{name}: accuracy {res['accuracy']:.3f} (95 % interval {res['accuracy_ci'][0]:.3f}-{res['accuracy_ci'][1]:.3f}),"
          f" {res['pairs_above_chance'][0]} of {res['pairs_above_chance'][1]} frame pairs above chance")
tap_warnings = tap.checks_warnings(tap_checks) if tap_checks else []
print("\n".join(f"WARNING: {w}" for w in tap_warnings) or
      ("no warnings" if tap_checks else f"{pretext} has no time-arrow head: these checks are TAP's"))

# %% [markdown]
# ## 5 · Where does the model look?
#
# For TAP, the Grad-CAM map of the time-arrow decision (notebook 02) on a few frame pairs, and its
# top-`k` regions; for the other tasks, which have no time-arrow head, the regions where the dense
# features change most from frame t to t + 1. Look at the regions in both frames: dividing or dying
# cells are what we hope to see; the border of a drifting field or a dimming background would be a shortcut.

# %%
regions = own_movie.top_regions_movie(model, movie, pretext, cfg.gradcam["n_frames"], cfg.gradcam["k"],
                                      cfg.gradcam["inset"], seed=cfg.seed)
t = regions["frames"][0]
print(f"{regions['kind']}: pairs {regions['frames']}, {sum(map(len, regions['regions']))} regions")
tplot.gradcam.plot_top_regions(movie.images[t], movie.images[t + 1], regions["maps"][0], regions["regions"][0],
                        inset=cfg.gradcam["inset"]);

# %% [markdown]
# ## 6 · Export for napari and Fiji
#
# Dense features `(T, F, Y, X)` of `own_export_frames` frames go to a compressed `.npz` (key
# `features`; `frames` and `binning` alongside) and the top regions to a CSV with columns
# `t, y, x, score`, in pixels of your *unbinned* movie. In napari:
#
# ```python
# import numpy as np, napari
# viewer = napari.view_image(movie_array)  # your (T, Y, X) movie
# viewer.add_points(np.loadtxt("regions_<data>.csv", delimiter=",", skiprows=1)[:, :3], size=20)
# ```
#
# With zarr installed, `export.export_features(features, "features.zarr")` writes a zarr array instead.

# %%
key = cfg.data_key
n_export = min(cfg.own["export_frames"] or len(movie), len(movie))
frames = np.linspace(0, len(movie) - 1, n_export).round().astype(int)
features = embed(model, movie.images[frames], device=cfg.device)  # (n, F, Y, X)
files = {}
if export_features:
    files["features"] = export.export_features(features, cfg.out_dir / f"features_{key}.npz", frames, factor)
    files["regions"] = export.export_regions(regions["frames"], regions["regions"], cfg.out_dir / f"regions_{key}.csv", factor)
print(f"features {features.shape} (frames, F, Y, X)", *(f"\n  wrote {p}" for p in files.values()))
tplot.pretext.plot_feature_maps(movie.images[frames[0]], {pretext: torch.as_tensor(features[0])});

# %% [markdown]
# ## 7 · Annotations: event heads, segmentation, or what to do without them
#
# - **A lineage** (a CTC folder with `01_GT/TRA/man_track.txt`): division events follow from it, and
#   the event heads of notebook 04 are trained on crop pairs of your movie with your model's frozen
#   features (the profile's strategies: A1, the ResNet head, in smoke; the cpu and gpu profiles add A0, the
#   linear head, and B1, frozen
#   random features, as the baseline to beat). On the course movie these are notebook 04's runs,
#   loaded from `out_dir/event_runs` when 04 ran with the same settings.
# - **Masks only** (e.g. the HeLa subset): the segmentation heads of notebook 08 apply.
# - **Nothing**: annotate a few frames (napari's labels layer, or Fiji), then write the movie and the
#   masks as a CTC folder with `tapkit.data.io.write_ctc(tapkit.Movie(images, labels=masks), "my_ctc")`
#   and point `data` at `my_ctc/01`. A lineage file (`man_track.txt`: id, first frame, last frame,
#   parent) with your divisions turns the masks into division events.
#
# **Segmentation heads (notebook 08):** when the movie has masks, the same protocol as notebook 08's
# real-data section: a conv head on the frozen features of your model and of a random encoder, your model
# fine-tuned, and a U-Net from scratch, at a few labelled frames, tested on the last frames.

# %%
from tapkit.downstream.events import criteria, crops, experiments, strategies, tables
from tapkit.downstream.segmentation import tables as dense_tables
annotations = "lineage" if movie.lineage is not None and movie.has_events else "masks" if movie.labels is not None else "none"
table, seg_tables = None, {}
if annotations == "lineage":
    pairs = crops.crop_pairs(movie, seed=cfg.seed, **cfg.crops)
    labels = criteria.label_pairs(pairs, "size-either")
    split = crops.split_pairs(labels, seed=cfg.seed)
    schedule = strategies.sweep_settings(cfg.heads)  # n_runs, steps_*, n_evals, lr_grid
    results = experiments.compare_strategies(pairs, labels, model, strategies=cfg.own["strategies"], seed=cfg.seed,
                                             device=cfg.device, split=split, runs_dir=cfg.out_dir / "event_runs",
                                             **schedule)
    table = tables.results_table(results)
    print(tables.format_results(table))
elif annotations == "none":
    print("no annotations: see the list above for how to add a few and write them as a CTC folder.")

# %%
if table is not None:
    tplot.events.plot_results(table);

# %%
if movie.labels is not None:  # masks (with or without a lineage): notebook 08's heads
    seg_tables = own_movie.segmentation_rows(cfg, movie, model, pretext)
    for name, seg_table in seg_tables.items():
        print(f"\n{name} (Dice and object F1 on the test frames)\n" + dense_tables.format_table(seg_table))
        tplot.segmentation.plot_budget_table(seg_table, f"{movie.name}: {name}");

# %% [markdown]
# ## Results
#
# What the checks measured, the binning used, the pretraining and the exported files go into
# `results.json` under `own`.

# %%
tapkit.course.results.record(
    "own", data=cfg.data, shape=list(raw.shape), dtype=report.dtype, warnings=len(report.warnings),
    drift_px_per_frame=report.drift_per_frame, bleaching_rate=report.bleaching_rate, nucleus_radius=size.radius,
    binning_recommended=advice.factor, binning=factor, pretext=pretext, epochs=len(history["val_loss"]),
    val_loss=history["val_loss"][-1], checkpoint=str(checkpoint), region_pairs=regions["frames"],
    tap_checks={k: {m: v[m] for m in ("accuracy", "accuracy_ci", "pairs_above_chance")} for k, v in tap_checks.items()},
    tap_warnings=tap_warnings,
    files={k: str(v) for k, v in files.items()}, annotations=annotations,
    segmentation={n: dense_tables.record_entries(t) for n, t in seg_tables.items()});

# %% [markdown]
# ## Summary
#
# - A movie is checked before it is trained on: its bleaching and drift are time-arrow shortcuts, and
#   its nuclei should be about as large in pixels as the ones the defaults were tuned for.
# - Pretraining is resumable: rerun the notebook after a disconnect and it continues from `out_dir`.
# - Grad-CAM regions and dense features leave the notebook as files napari and Fiji read.
#
# **Next:** with a lineage, compare the event heads on your features with notebook 04's numbers; without
# one, annotate a few frames and come back.
