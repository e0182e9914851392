"""The on-disk layout of assets: one Parquet file per asset partition, hive style.

``<root>/<asset key path>/symbol=<partition>/data.parquet`` (or ``data.parquet`` directly
under the key for unpartitioned assets). Hive-style folders let DuckDB and polars expose
the partition as a column when they scan an asset's whole folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from forex_assets.storage.atomic import atomic_write, remove_stale_temp_files

DATA_FILE = "data.parquet"
PARTITION_COLUMN = "symbol"


def asset_directory(root: Path, key_path: Sequence[str]) -> Path:
    return root.joinpath(*key_path)


def partition_file(root: Path, key_path: Sequence[str], partition: str | None) -> Path:
    directory = asset_directory(root, key_path)
    if partition is not None:
        directory = directory / f"{PARTITION_COLUMN}={partition}"
    return directory / DATA_FILE


def asset_glob(root: Path, key_path: Sequence[str], partitioned: bool) -> str:
    directory = asset_directory(root, key_path)
    pattern = f"{PARTITION_COLUMN}=*/{DATA_FILE}" if partitioned else DATA_FILE
    return (directory / pattern).as_posix()


def write_frame(frame: pl.DataFrame, path: Path) -> None:
    """Write atomically, clearing temp files that dead writers left beside it."""
    remove_stale_temp_files(path.parent)
    atomic_write(path, lambda temp: frame.write_parquet(temp, compression="zstd", statistics=True))


def read_frame(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path)
