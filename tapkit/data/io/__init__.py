"""Read and write movies: single TIFFs and OME-TIFFs, folders of TIFF frames, the Cell Tracking
Challenge format and zarr arrays (optional dependency: `pip install 'tapkit-course[zarr]'`).

Axes: a file's named axes (OME-TIFF, ImageJ, OME-Zarr `multiscales`, a zarr `axes` attribute) decide
how it is read: TYX is a movie, TCYX / CTYX need `channel=`, ZYX (no time axis) is read as time with
a note (Fiji often labels time-lapses as z-slices), and Z and T both > 1 is refused
(tapkit is 2D + time).

Every reader returns a `tapkit.Movie`; every problem with a file raises `tapkit.InputError` naming
the file and the fix, before the (possibly long) pixel work starts.

Modules: `common` (paths, natural sorting, axis and channel checks), `tiff` (TIFF files and folders
of frames), `ctc` (Cell Tracking Challenge sequences and man_track.txt), `zarr` (zarr / OME-Zarr).
The lineage logic (checking a lineage, events from it) is tapkit.data.lineage. Every public name is
re-exported here: `from tapkit.data.io import read_tiff` and `tapkit.data.io.read_ctc` work as
before.
"""

from tapkit.data.io.common import MIN_FRAME_SIDE, PathArg, check_axes, check_channel, natural_key
from tapkit.data.io.ctc import read_ctc, read_lineage, write_ctc
from tapkit.data.io.tiff import (
    TIFF_SUFFIXES,
    check_tiff_header,
    read_tiff,
    read_tiff_folder,
    write_tiff,
)
from tapkit.data.io.zarr import (
    ZARR_DEFAULT_AXES,
    ZARR_MARKERS,
    check_zarr,
    import_zarr,
    is_zarr,
    open_zarr,
    read_zarr,
    write_zarr,
)
from tapkit.data.lineage import check_lineage, events_from_lineage, lineage_from_labels

__all__ = [
    "MIN_FRAME_SIDE",
    "PathArg",
    "TIFF_SUFFIXES",
    "ZARR_DEFAULT_AXES",
    "ZARR_MARKERS",
    "check_axes",
    "check_channel",
    "check_lineage",
    "check_tiff_header",
    "check_zarr",
    "events_from_lineage",
    "import_zarr",
    "is_zarr",
    "lineage_from_labels",
    "natural_key",
    "open_zarr",
    "read_ctc",
    "read_lineage",
    "read_tiff",
    "read_tiff_folder",
    "read_zarr",
    "write_ctc",
    "write_tiff",
    "write_zarr",
]
