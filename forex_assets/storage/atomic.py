"""Atomic file writes: a reader sees the old file or the new one, never half of one.

A step killed mid-write (SIGKILL, OOM, power loss) must not leave a truncated Parquet
partition that a later step reads as data. Writes go to a hidden temporary file in the
same directory (so the final rename never crosses filesystems), are flushed to disk, and
are renamed over the target with `os.replace`, which is atomic on POSIX and Windows.
Temporary names carry the host and pid of their writer so that leftovers of dead
writers can be recognised and removed later without touching a live writer's file.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

from forex_assets.processes import process_alive

TEMP_SUFFIX = ".tmp"


def _temp_path(target: Path) -> Path:
    host = socket.gethostname().replace(".", "-")
    return target.with_name(
        f".{target.name}.{host}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    )


def _fsync_directory(directory: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temp_path)`, then publish the result at `target` in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(target)
    try:
        write(temp)
        with temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    atomic_write(target, lambda temp: temp.write_bytes(data))


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Delete temp files left in `directory` by writers on this host that no longer run."""
    if not directory.is_dir():
        return []
    host = socket.gethostname().replace(".", "-")
    removed = []
    for path in directory.glob(f".*{TEMP_SUFFIX}"):
        parts = path.name[: -len(TEMP_SUFFIX)].split(".")
        if len(parts) < 4 or parts[-3] != host or not parts[-2].isdigit():
            continue
        if not process_alive(int(parts[-2])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
