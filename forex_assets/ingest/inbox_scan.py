"""What the data inbox holds and which of its files have settled, without opening any.

When is a file finished? Only when two looks, some time apart, saw the same size and
modification time, and nothing has written to it for `INBOX_QUIET_SECONDS`. The
modification time alone is not enough: unzip, `cp -p` and some sync tools stamp files with
old times, and clocks on file shares drift, so "older than N seconds" can take a
half-copied file; an unchanged observation across looks relies on nothing but the file not
changing. Writers that can should copy under a hidden or temporary name (`.name`, `~name`,
`*.part`, `*.tmp`) and rename when done: such names are never looked at.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from forex_assets import settings
from forex_assets.ingest.sources import IGNORED_PREFIXES

REJECTED_FOLDER = "rejected"
DUPLICATES_FOLDER = "duplicates"
REPLACED_FOLDER = "replaced"
# The intake's own folders inside the inbox, never scanned for new files.
SET_ASIDE_FOLDERS = frozenset({REJECTED_FOLDER, DUPLICATES_FOLDER, REPLACED_FOLDER})
INBOX_QUIET_SECONDS = 5.0
# Names that are still being written by a browser, rsync, an editor or a copy tool.
_IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".filepart")
SYMBOLIC_LINK = "is a symbolic link"
SPECIAL_FILE = "is not a regular file (a FIFO, socket or device)"


@dataclass(frozen=True)
class InboxEntry:
    """One inbox entry as listed: its size, modification time and inode (of the entry
    itself, a link is not followed), and why it is refused unopened (`SYMBOLIC_LINK`,
    `SPECIAL_FILE`) or None for a regular file.

    The inode tells a file dropped again with the same size and time (`cp -p`) from the one
    taken before: that one still exists, moved, so the new copy has another inode.
    """

    size: int
    mtime_ns: int
    inode: int
    refused: str | None = None

    @classmethod
    def of(cls, stat: os.stat_result, refused: str | None = None) -> InboxEntry:
        return cls(stat.st_size, stat.st_mtime_ns, stat.st_ino, refused)


def scan_inbox(inbox: Path) -> dict[str, InboxEntry]:
    """Entries at any depth of the inbox by relative path, as the data directory is read at
    any depth.

    Nothing is followed or opened here: a symbolic link, FIFO, socket or device is listed as
    refused (reading a link would read any file on the machine, opening a FIFO blocks), and
    hidden or still-being-written names and the intake's own folders are skipped.
    """
    entries: dict[str, InboxEntry] = {}

    def walk(folder: Path, prefix: str) -> None:
        try:
            listed = list(os.scandir(folder))
        except FileNotFoundError:  # a folder taken away while being listed
            return
        for entry in listed:
            name, relative = entry.name, f"{prefix}{entry.name}"
            if name.startswith(IGNORED_PREFIXES) or name.lower().endswith(_IN_PROGRESS_SUFFIXES):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if prefix or name not in SET_ASIDE_FOLDERS:
                        walk(Path(entry.path), f"{relative}/")
                    continue
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # taken away between listing and stat
                continue
            if entry.is_symlink():
                refused: str | None = SYMBOLIC_LINK
            elif entry.is_file(follow_symlinks=False):
                refused = None
            else:
                refused = SPECIAL_FILE
            entries[relative] = InboxEntry.of(stat, refused)

    walk(inbox, "")
    return entries


def ready_entries(
    previous: Mapping[str, InboxEntry], current: Mapping[str, InboxEntry], now_ns: int
) -> list[str]:
    """The entries to take now, sorted: a regular file seen unchanged since `previous` and
    untouched for `INBOX_QUIET_SECONDS` before `now_ns`; a refused entry at once (it is
    never opened, so there is nothing to wait for)."""
    quiet_before_ns = now_ns - int(INBOX_QUIET_SECONDS * 1e9)
    return sorted(
        name
        for name, entry in current.items()
        if entry.refused is not None
        or (previous.get(name) == entry and entry.mtime_ns <= quiet_before_ns)
    )


class InboxSetupError(ValueError):
    """The inbox and the data directory are placed so that taking files would corrupt data."""


def check_folders(inbox: Path, data_dir: Path) -> None:
    """Refuse a data directory that overlaps the inbox or the project's own folders.

    The data directory is read at any depth and the inbox scanned at any depth: the pipeline
    would read its own Parquet store or model files as bar files, and the intake would take
    files before they are checked (or the data directory's files as new drops).
    """
    if inbox == data_dir or data_dir in inbox.parents:
        raise InboxSetupError(
            f"{settings.ENV_INBOX}={inbox} is inside the data directory {data_dir}: the pipeline "
            "would read files before they are checked, and rejected ones too. Point the inbox "
            "elsewhere (default: <project home>/inbox)."
        )
    own = {
        f"inbox ({settings.ENV_INBOX})": inbox,
        "Parquet store": settings.storage_root(),
        "DuckDB catalog": settings.catalog_path(),
        "model folder": settings.models_root(),
        "trading folder": settings.trading_dir(),
    }
    for what, path in own.items():
        if data_dir in path.parents:
            relation = "contains"
        elif path == data_dir or path in data_dir.parents:
            relation = "is inside"
        else:
            continue
        raise InboxSetupError(
            f"the data directory {data_dir} (bar_source data_dir, from {settings.ENV_DATA_DIR}) "
            f"{relation} the project's {what} {path}: bar files are read from the data "
            "directory at any depth and inbox files moved into it, so the pipeline's own files "
            f"would be read as bars or overwritten. Point {settings.ENV_DATA_DIR} at a folder of "
            f"its own (default: {settings.project_home() / 'data'})."
        )
