"""Reading stored partitions: damage is named with asset, partition, path and a rebuild."""

import polars as pl
import pytest

from forex_assets.storage.damage import StoredDataError
from forex_assets.storage.parquet_store import (
    partition_file,
    read_partition,
    stored_assets,
    write_frame,
)


def test_a_stored_partition_reads_back(tmp_path):
    frame = pl.DataFrame({"a": [1, 2, 3]})
    write_frame(frame, partition_file(tmp_path, ["bars", "m5"], "EURUSD"))
    assert read_partition(tmp_path, ["bars", "m5"], "EURUSD").equals(frame)


@pytest.mark.parametrize(
    "damage",
    [b"garbage" * 200, b"", b"PAR1" + b"\x00" * 64],
    ids=["garbage", "empty", "header only"],
)
def test_damaged_partition_names_asset_partition_path_and_rebuild(tmp_path, damage):
    path = partition_file(tmp_path, ["trained_models"], "EURUSD")
    write_frame(pl.DataFrame({"a": [1]}), path)
    path.write_bytes(damage)
    with pytest.raises(StoredDataError) as raised:
        read_partition(tmp_path, ["trained_models"], "EURUSD")
    message = str(raised.value)
    assert "\n" not in message
    assert "asset trained_models partition EURUSD" in message
    assert str(path) in message and "cannot be read as Parquet" in message
    assert (
        "`dagster asset materialize -m forex_assets --select trained_models "
        "--partition EURUSD`" in message
    )
    assert raised.value.path == path and raised.value.partition == "EURUSD"


def test_missing_partition_is_named_too(tmp_path):
    with pytest.raises(StoredDataError, match=r"asset bars/h1 partition USDJPY: .* does not exist"):
        read_partition(tmp_path, ["bars", "h1"], "USDJPY")


def test_unpartitioned_asset_command_has_no_partition(tmp_path):
    path = partition_file(tmp_path, ["summary"], None)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    with pytest.raises(StoredDataError) as raised:
        read_partition(tmp_path, ["summary"], None)
    assert str(raised.value).endswith(
        "Rebuild it with `dagster asset materialize -m forex_assets --select summary`"
    )


def test_stored_assets_lists_each_key_once(tmp_path):
    for symbol in ("EURUSD", "USDJPY"):
        write_frame(pl.DataFrame({"a": [1]}), partition_file(tmp_path, ["bars", "m5"], symbol))
    write_frame(pl.DataFrame({"a": [1]}), partition_file(tmp_path, ["summary"], None))
    assert stored_assets(tmp_path) == {("bars", "m5"): True, ("summary",): False}
