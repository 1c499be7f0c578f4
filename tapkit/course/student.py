"""Student copies of the course notebooks: `solution` cells replaced by an empty answer cell,
outputs cleared."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tapkit.course.notebooks import list_notebooks
from tapkit.course.parameters import writable_folder


def student_version(nb: Any) -> Any:
    """A copy of a notebook with `solution` cells replaced by '# your answer here' and outputs
    cleared."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        if "solution" in cell.metadata.get("tags", []):
            tags = [t for t in cell.metadata["tags"] if t != "solution"] + ["answer"]
            new = nbformat.v4.new_code_cell("# your answer here", metadata={"tags": tags})
            if "id" in cell:
                new["id"] = cell["id"]
            nb.cells[i] = new
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    return nb


def write_student_copies(
    out: "str | os.PathLike" = "student", notebooks_dir: "str | os.PathLike | None" = None
) -> list[Path]:
    """Write student copies of all course notebooks (solutions removed, outputs cleared) into
    `out`."""
    import nbformat

    out = writable_folder(out, "--out")
    written = []
    for path in list_notebooks(notebooks_dir):
        nb = student_version(nbformat.read(str(path), as_version=4))
        nbformat.write(nb, str(out / path.name))
        written.append(out / path.name)
    print(f"tapkit: wrote {len(written)} student notebooks to {out}")
    return written
