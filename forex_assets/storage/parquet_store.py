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
from forex_assets.storage.damage import StoredDataError, first_line

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


def read_partition(root: Path, key_path: Sequence[str], partition: str | None) -> pl.DataFrame:
    """One stored partition; a missing or unreadable file raises `StoredDataError` naming
    the asset, partition and file (the reader's own error names none of them)."""
    path = partition_file(root, key_path, partition)
    asset_key = "/".join(key_path)
    if not path.exists():
        raise StoredDataError(
            asset_key, partition, path, "does not exist: it has not been materialized here"
        )
    try:
        return read_frame(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise StoredDataError(
            asset_key, partition, path, f"cannot be read as Parquet ({first_line(error)})"
        ) from None  # the reason is in the message; innermost, so `train` prints this line


def unreadable_partition(
    root: Path, key_path: Sequence[str], partitioned: bool
) -> StoredDataError | None:
    """The first partition file of an asset whose Parquet footer cannot be read (a check of
    metadata only, for finding which file a scan of the whole asset failed on)."""
    directory = asset_directory(root, key_path)
    files = sorted(directory.glob(f"{PARTITION_COLUMN}=*/{DATA_FILE}")) if partitioned else []
    for path in files or [directory / DATA_FILE]:
        try:
            pl.read_parquet_schema(path)
        except (pl.exceptions.PolarsError, OSError) as error:
            partition = path.parent.name.partition("=")[2] if partitioned else None
            problem = f"cannot be read as Parquet ({first_line(error)})"
            return StoredDataError("/".join(key_path), partition, path, problem)
    return None


def stored_assets(root: Path) -> dict[tuple[str, ...], bool]:
    """Every asset key with a data file under `root`, mapped to whether it is partitioned."""
    assets: dict[tuple[str, ...], bool] = {}
    for data_file in sorted(Path(root).rglob(DATA_FILE)):
        relative = data_file.parent.relative_to(root).parts
        partitioned = bool(relative) and relative[-1].startswith(f"{PARTITION_COLUMN}=")
        assets.setdefault(tuple(relative[:-1] if partitioned else relative), partitioned)
    return assets
