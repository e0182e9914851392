"""Stored files that cannot be read, named so that a user can rebuild them.

A reader's own error ("parquet: File out of specification", a LightGBM parse error) says
neither which asset nor which partition the file belongs to, nor how to get a good copy
back. `StoredDataError` carries all of it in one line, so a failed step, a log and the
command line show the asset key, partition, path, what is wrong and the command that
writes the file again.
"""

from __future__ import annotations

from pathlib import Path


def first_line(error: BaseException) -> str:
    """A reader's error in one line (DuckDB and polars add hint lines; some say nothing)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def rebuild_command(asset_key: str, partition: str | None) -> str:
    """The command that materializes one asset (partition) again from what is upstream."""
    command = f"dagster asset materialize -m forex_assets --select {asset_key}"
    return f"{command} --partition {partition}" if partition is not None else command


class StoredDataError(RuntimeError):
    """A stored file of an asset is missing or cannot be read; the message is one line."""

    def __init__(self, asset_key: str, partition: str | None, path: Path, problem: str):
        self.asset_key = asset_key
        self.partition = partition
        self.path = Path(path)
        self.problem = " ".join(problem.split())
        where = f" partition {partition}" if partition is not None else ""
        super().__init__(
            f"asset {asset_key}{where}: {self.path} {self.problem}. "
            f"Rebuild it with `{rebuild_command(asset_key, partition)}`"
        )
