"""Files that hold secrets (the SQLite store and its WAL, the key file, token files) are
created private: ``0700`` directories, ``0600`` files, whatever the process umask.

A umask can only remove permission bits, so creating with an explicit mode and then
``chmod``-ing an existing path to the same mode gives the same result under any umask.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, tighten_existing: bool = True) -> Path:
    """Create ``path`` (and missing parents) ``0700``; an existing ``path`` is tightened to
    ``0700`` too unless ``tighten_existing`` is false (a directory the user chose to share).

    Parents that already exist are left alone: they may be shared directories such as a home.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, DIR_MODE)
    if tighten_existing:
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists as a ``0600`` file (created empty if missing)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def write_private(path: Path, data: str) -> None:
    """Replace ``path`` atomically with ``data``: a reader sees the old or the new content,
    never a mix, and the file is ``0600`` from its first byte."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
