"""Where the course notebooks are: finding and listing them, their parameters, their Colab/Binder
links.

The repository URL lives in one place, `[project.urls] Repository` in pyproject.toml;
`repository_url` reads it (from the checkout's pyproject.toml, else from the installed package's
metadata).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tapkit.data.movie import InputError

DIST_NAME = "tapkit-course"
NOTEBOOK_RE = re.compile(r"^(\d\d)_.*\.ipynb$")


def repo_root() -> Path:
    """The repository folder next to the installed package (editable install), else the cwd."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "notebooks").is_dir() or (here / "data").is_dir() else Path.cwd()


def repository_url() -> str:
    """The course's GitHub URL, `[project.urls] Repository` of pyproject.toml
    (https://github.com/OWNER/NAME)."""
    pyproject = repo_root() / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        urls = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["urls"]
        return urls["Repository"].rstrip("/")
    from importlib.metadata import metadata

    entries = metadata(DIST_NAME).get_all("Project-URL") or []
    return next(
        e.split(",", 1)[1].strip() for e in entries if e.lower().startswith("repository,")
    ).rstrip("/")


def github_repo() -> str:
    """'OWNER/NAME' of the course repository."""
    return repository_url().removeprefix("https://github.com/")


def _nb_file(nb: str) -> str:
    """'01_tap_pretraining' or '01_tap_pretraining.ipynb' -> '01_tap_pretraining.ipynb'."""
    name = Path(nb).name
    return name if name.endswith(".ipynb") else f"{name}.ipynb"


def colab_url(nb: str) -> str:
    """The 'Open in Colab' link of a course notebook."""
    return f"https://colab.research.google.com/github/{github_repo()}/blob/main/notebooks/{_nb_file(nb)}"


def binder_url(nb: str) -> str:
    """The 'Launch Binder' link of a course notebook."""
    return f"https://mybinder.org/v2/gh/{github_repo()}/HEAD?labpath=notebooks%2F{_nb_file(nb)}"


def colab_install_spec() -> str:
    """What the Colab set-up cell pip-installs: 'tapkit-course @ git+<repository URL>'."""
    return f"{DIST_NAME} @ git+{repository_url()}"


def find_notebooks_dir(notebooks_dir: "str | os.PathLike | None" = None) -> Path:
    """The folder holding `NN_*.ipynb`: the given one, ./notebooks, the cwd, or beside the
    package."""
    if notebooks_dir is not None:
        candidates = [Path(notebooks_dir)]
    else:
        candidates = [Path.cwd() / "notebooks", Path.cwd(), repo_root() / "notebooks"]
    for folder in candidates:
        if folder.is_dir() and any(NOTEBOOK_RE.match(p.name) for p in folder.iterdir()):
            return folder
    raise InputError(
        f"No course notebooks (NN_name.ipynb) found in {', '.join(map(str, candidates))}. "
        "Run from the repository folder or pass notebooks_dir=..."
    )


def list_notebooks(notebooks_dir: "str | os.PathLike | None" = None) -> list[Path]:
    """All course notebooks `NN_*.ipynb` in order."""
    folder = find_notebooks_dir(notebooks_dir)
    return sorted(p for p in folder.iterdir() if NOTEBOOK_RE.match(p.name))


def select_notebooks(
    only: "str | list[str] | None" = None, notebooks_dir: "str | os.PathLike | None" = None
) -> list[Path]:
    """The notebooks to run: all, or those whose number (or name) is listed in `only`
    ('01,02' or ['01'])."""
    nbs = list_notebooks(notebooks_dir)
    if only is None or only == "" or only == []:
        return nbs
    wanted = [
        w.strip() for w in (only.split(",") if isinstance(only, str) else only) if str(w).strip()
    ]
    chosen = [
        p for p in nbs if any(p.name.startswith(str(w).zfill(2)) or p.stem == w for w in wanted)
    ]
    missing = [
        w for w in wanted if not any(p.name.startswith(str(w).zfill(2)) or p.stem == w for p in nbs)
    ]
    if missing:
        raise InputError(
            f"--only {','.join(missing)}: no such notebook. Available: "
            f"{', '.join(p.name[:2] for p in nbs)}."
        )
    return chosen


def parameter_values(path: "str | os.PathLike") -> dict:
    """The names and default values assigned in a notebook's cell tagged `parameters`
    (literals only)."""
    import ast

    import nbformat

    nb = nbformat.read(os.fspath(path), as_version=4)
    values: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                targets = (
                    node.targets
                    if isinstance(node, ast.Assign)
                    else [getattr(node, "target", None)]
                )
                for target in targets:
                    if isinstance(target, ast.Name):
                        try:
                            values[target.id] = ast.literal_eval(node.value)
                        except ValueError:
                            values[target.id] = None
    return values


def parameter_names(path: "str | os.PathLike") -> list[str]:
    """The names assigned in a notebook's cell tagged `parameters` (empty if there is none)."""
    return list(parameter_values(path))
