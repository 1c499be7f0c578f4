"""The Cell Tracking Challenge (CTC) format, as written by `write_ctc` and read by `read_ctc`::

    root/01/t000.tif, t001.tif, ...                one 2D frame per file
    root/01_GT/TRA/man_track000.tif, ...           uint16 instance masks (track ids, 0 = background)
    root/01_GT/TRA/man_track.txt                   lineage: "id first_frame last_frame parent_id"

Division events are derived from the lineage (tapkit.data.lineage.events_from_lineage).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tifffile

from tapkit.data.io.common import PathArg, _existing
from tapkit.data.io.tiff import _exact_dtype, _stack_frames
from tapkit.data.lineage import check_lineage, events_from_lineage, lineage_from_labels
from tapkit.data.movie import InputError, Movie, as_movie, check_images

_CTC_FRAME = re.compile(r"^t(\d+)\.tiff?$", re.IGNORECASE)
_CTC_MASK = re.compile(r"^man_track(\d+)\.tiff?$", re.IGNORECASE)


def read_lineage(path: PathArg, n_frames: int | None = None) -> np.ndarray:
    """Parse a CTC man_track.txt ('id first last parent' per line) into a validated (N, 4) int64
    array."""
    p = _existing(path, "read_lineage")
    rows = []
    for i, line in enumerate(p.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise InputError(
                f"read_lineage: {p.name} line {i} has {len(parts)} columns ({line.strip()!r}); "
                "each line must be 'id first_frame last_frame parent_id'."
            )
        try:
            rows.append([int(v) for v in parts])
        except ValueError:
            raise InputError(
                f"read_lineage: {p.name} line {i} holds a non-integer ({line.strip()!r}); "
                "all four columns must be whole numbers."
            ) from None
    return check_lineage(
        np.array(rows, dtype=np.int64).reshape(-1, 4), n_frames, what=f"read_lineage({p.name})"
    )


def _numbered(folder: Path, pattern: re.Pattern[str]) -> dict[int, Path]:
    """Files of `folder` whose names match `pattern`, keyed by their frame number."""
    return {int(m.group(1)): f for f in folder.iterdir() if (m := pattern.match(f.name))}


def _ctc_frames(seq: Path) -> list[Path]:
    """The tNNN.tif frames of a CTC sequence folder in order; frame numbers must run 0 ... T-1."""
    found = _numbered(seq, _CTC_FRAME)
    if not found:
        raise InputError(
            f"read_ctc: no frames named tNNN.tif in {str(seq)!r}. Point to a CTC sequence folder "
            "such as .../Fluo-N2DL-HeLa/01, or use read_tiff_folder() for other names."
        )
    missing = sorted(set(range(max(found) + 1)) - set(found))
    if missing:
        raise InputError(
            f"read_ctc: frames {missing[:10]} are missing in {str(seq)!r}; CTC frames must be "
            "numbered t000 ... without gaps (lineage frame numbers refer to them)."
        )
    return [found[t] for t in range(len(found))]


def _ctc_gt_files(tra: Path, n_frames: int) -> tuple[np.ndarray, list[Path]]:
    """Lineage and the per-frame mask files of a CTC `NN_GT/TRA` folder, checked before any pixel is
    read."""
    txt = tra / "man_track.txt"
    if not txt.is_file():
        raise InputError(
            f"read_ctc: the ground-truth folder {str(tra.parent)!r} exists but {str(txt)!r} is "
            "missing. Restore it, or load the images only with read_ctc(seq_dir, "
            "ground_truth=False)."
        )
    lineage = read_lineage(txt, n_frames=n_frames)
    masks = _numbered(tra, _CTC_MASK)
    missing = sorted(set(range(n_frames)) - set(masks))
    if missing:
        raise InputError(
            f"read_ctc: tracking masks man_trackNNN.tif for frames {missing[:10]} are missing in "
            f"{str(tra)!r}; every frame needs one (or use ground_truth=False)."
        )
    return lineage, [masks[t] for t in range(n_frames)]


def read_ctc(seq_dir: PathArg, ground_truth: bool = True, name: str | None = None) -> Movie:
    """Read a CTC sequence folder (e.g. .../Fluo-N2DL-HeLa/01) with its TRA ground truth if present.

    Labels and lineage come from the sibling `01_GT/TRA` folder; division events are derived with
    `events_from_lineage` (deaths are not in CTC ground truth). Without `01_GT` the Movie has no
    ground truth. Segmentation-only (`SEG`) ground truth is not read. Note that CTC TRA masks are
    tracking markers: in some datasets they cover only part of each cell, and so do the events.
    """
    seq = _existing(seq_dir, "read_ctc")
    if not seq.is_dir():
        raise InputError(
            f"read_ctc: {str(seq)!r} is a file; give the sequence folder (e.g. .../01)."
        )
    frames = _ctc_frames(seq)
    gt = seq.parent / f"{seq.name}_GT"
    labels = lineage = events = None
    if ground_truth and gt.is_dir():
        lineage, mask_files = _ctc_gt_files(gt / "TRA", len(frames))
    stack = _stack_frames(frames, "read_ctc")
    images = check_images(stack, what=f"read_ctc({seq.name})")
    if lineage is not None:
        labels = _stack_frames(mask_files, "read_ctc (TRA masks)")
        if labels.shape != images.shape:
            raise InputError(
                f"read_ctc: TRA masks have shape {labels.shape} but the frames {images.shape}; "
                "they must match (check the man_track files belong to this sequence)."
            )
        events = events_from_lineage(labels, lineage)
    return Movie(
        images=images,
        labels=labels,
        events=events,
        lineage=lineage,
        name=name or f"{seq.parent.name}/{seq.name}",
        meta={"source": str(seq), "dtype": str(stack.dtype)},
    )


def _prepare_ctc_dirs(root: Path, seq: str, overwrite: bool) -> tuple[Path, Path]:
    """Create root/seq and root/seq_GT/TRA; refuse to mix with existing frames unless overwrite."""
    seq_dir, tra = root / seq, root / f"{seq}_GT" / "TRA"
    old = [
        *(_numbered(seq_dir, _CTC_FRAME).values() if seq_dir.is_dir() else []),
        *(_numbered(tra, _CTC_MASK).values() if tra.is_dir() else []),
    ]
    if old and not overwrite:
        raise InputError(
            f"write_ctc: {str(seq_dir)!r} already holds CTC files; pass overwrite=True to replace "
            "them or choose another root/seq."
        )
    for f in old:
        f.unlink()
    seq_dir.mkdir(parents=True, exist_ok=True)
    return seq_dir, tra


def write_ctc(
    movie: "Movie | np.ndarray", root: PathArg, seq: str = "01", overwrite: bool = False
) -> Path:
    """Write a movie in CTC layout under `root` and return the sequence folder `root/seq`.

    Frames are written exactly: uint16 when all values are whole numbers in 0 ... 65535, else
    float32. Labels go to `seq_GT/TRA/man_trackNNN.tif` (uint16) with `man_track.txt` from
    `movie.lineage` (or a parent-less lineage built from the labels). Events are not part of CTC and
    are not written; `read_ctc` derives division events from the lineage again.
    """
    movie = as_movie(movie)
    if not re.fullmatch(r"\d\d", seq):
        raise InputError(
            f"write_ctc: seq={seq!r}; CTC sequences are two digits such as '01' or '02'."
        )
    if movie.labels is not None and movie.labels.max(initial=0) > 65535:
        raise InputError(
            "write_ctc: label ids above 65535 do not fit CTC's uint16 masks; relabel first."
        )
    if movie.lineage is not None and movie.labels is None:
        raise InputError(
            "write_ctc: the movie has a lineage but no labels; CTC needs the masks too."
        )
    lineage = None
    if movie.labels is not None:
        lineage = movie.lineage if movie.lineage is not None else lineage_from_labels(movie.labels)
        lineage = check_lineage(lineage, len(movie), what="write_ctc (movie.lineage)")
    seq_dir, tra = _prepare_ctc_dirs(Path(root).expanduser(), seq, overwrite)
    digits = max(3, len(str(len(movie) - 1)))
    for t, frame in enumerate(_exact_dtype(movie.images)):
        tifffile.imwrite(seq_dir / f"t{t:0{digits}d}.tif", frame)
    if movie.labels is not None:
        tra.mkdir(parents=True, exist_ok=True)
        for t, mask in enumerate(movie.labels.astype(np.uint16)):
            tifffile.imwrite(tra / f"man_track{t:0{digits}d}.tif", mask, compression="zlib")
        np.savetxt(tra / "man_track.txt", lineage, fmt="%d")
    return seq_dir
