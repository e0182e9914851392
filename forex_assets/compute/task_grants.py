"""Widening a task while it runs: the cores its pool grants it after it started.

A task's width is fixed when it starts (`step_threads()`), from the cores free then. When
the pool has no task left to start and cores come free (its other tasks ended, another
step gave cores back), the last running tasks would finish on their start width while
those cores sat idle: the tail of every fan-out. So the pool leases the freed cores for
a running task and raises its grant here, and the task's long loops (LightGBM's boosting
rounds, the net's batches) poll `granted_threads(width)` and widen their library's pool. The
lease comes first and the grant after it, so the cores a task may use are always held.

The grants live in a small file that the pool writes and its workers map read-only: one
int32 per slot, a slot per running task. A task that never polls simply keeps its start
width; nothing else changes for it.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

_SLOT = struct.Struct("<i")
# The grant slot of the task this process runs now, set by the pool's worker around each
# task; None outside a task (then a task keeps the width it was called with).
_current: tuple[mmap.mmap, int] | None = None
_maps: dict[str, mmap.mmap] = {}


class GrantBoard:
    """The pool's side: a slot per running task, holding the threads it may use now."""

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError(f"slots={slots}: a pool runs at least one task, so needs a slot")
        self.slots = slots
        descriptor, self.path = tempfile.mkstemp(prefix="forex_assets_grants_")
        with os.fdopen(descriptor, "wb") as out:
            out.write(bytes(_SLOT.size * slots))
        with open(self.path, "r+b") as board:
            self._map = mmap.mmap(board.fileno(), _SLOT.size * slots)

    def grant(self, slot: int, threads: int) -> None:
        """Let the task in `slot` use `threads` from now on (after leasing them)."""
        _SLOT.pack_into(self._map, slot * _SLOT.size, threads)

    def close(self) -> None:
        self._map.close()
        os.unlink(self.path)


@contextmanager
def following_grant(path: str, slot: int) -> Iterator[None]:
    """Within the block (one task in a pool worker), `granted_threads()` reads `slot` of
    the board at `path`."""
    global _current
    if path not in _maps:
        with open(path, "rb") as board:
            _maps[path] = mmap.mmap(board.fileno(), 0, access=mmap.ACCESS_READ)
    _current = (_maps[path], slot)
    try:
        yield
    finally:
        _current = None


def granted_threads(width: int) -> int:
    """The threads the running task may use now, given the `width` it runs on: more once
    its pool has granted it cores that others gave back, else `width` (always outside a
    pool's task). Poll it between units of work (a boosting round, a batch) and widen the
    library's pool when it grows."""
    if _current is None:
        return width
    board, slot = _current
    return max(width, _SLOT.unpack_from(board, slot * _SLOT.size)[0])
