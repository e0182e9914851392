"""Moving inbox files so that every file appears complete or not at all, never deleting.

The runs that take inbox files start one at a time (dagster.yaml limits the runs of the
`data_inbox` sensor to one), so no other writer races for a destination chosen here.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from forex_assets.storage.atomic import atomic_write_bytes

REASON_SUFFIX = ".reason.txt"


def free_path(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/<stem>-2<suffix>`, `-3`, ... when that name or its reason
    file's name is taken (a set-aside file named like a reason file must not be overwritten
    by the reason of a later one)."""

    def taken(path: Path) -> bool:
        return any(p.exists() or p.is_symlink() for p in (path, Path(f"{path}{REASON_SUFFIX}")))

    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while taken(candidate):
        candidate = folder / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


def _copy_into_place(source: Path, destination: Path) -> None:
    """Copy `source` under a hidden name beside `destination`, which every reader here
    ignores, and rename it into place."""
    staging = destination.with_name(f".{destination.name}.incoming")
    shutil.copy2(source, staging, follow_symlinks=False)
    os.replace(staging, destination)


def move(source: Path, destination: Path) -> None:
    """Move a file so that `destination` appears complete or not at all.

    Within one filesystem this is a rename. Across filesystems (an inbox on a share) the file
    is copied into place under a hidden name and only then removed from the inbox.
    `destination` is a free name (`free_path`), or a file already preserved elsewhere that
    this replaces in one step.
    """
    try:
        os.rename(source, destination)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    _copy_into_place(source, destination)
    source.unlink()


def preserve(source: Path, keep: Path) -> None:
    """A second name for `source` at `keep` (a hard link, or a copy across filesystems)."""
    try:
        os.link(source, keep, follow_symlinks=False)
    except OSError:
        _copy_into_place(source, keep)


def set_aside(
    inbox: Path, folder: str, relative: str, text: str, source: Path | None = None
) -> Path:
    """Move the inbox file `relative` (or preserve `source`) under `<inbox>/<folder>/`, at the
    same relative path, with `text` in a `.reason.txt` beside it; returns where it went."""
    target_dir = (inbox / folder / relative).parent
    target_dir.mkdir(parents=True, exist_ok=True)
    target = free_path(target_dir, Path(relative).name)
    # The reason first: a file found in rejected/ always has its explanation next to it.
    atomic_write_bytes(target_dir / f"{target.name}{REASON_SUFFIX}", text.encode("utf-8"))
    if source is None:
        move(inbox / relative, target)
    else:
        preserve(source, target)
    return target
