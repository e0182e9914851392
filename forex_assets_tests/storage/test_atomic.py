"""Atomic writes: a killed writer never leaves a partial partition visible."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.storage.atomic import atomic_write, atomic_write_bytes, remove_stale_temp_files
from forex_assets.storage.parquet_store import read_frame, write_frame

ROWS = 300_000

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np, polars as pl
    from forex_assets.storage.parquet_store import write_frame

    target, marker = Path(sys.argv[1]), Path(sys.argv[2])
    rows = int(sys.argv[3])
    version = 0
    while True:
        version += 1
        values = np.random.default_rng(version).random(rows)
        frame = pl.DataFrame({"version": np.full(rows, version), "value": values,
                              "checksum": np.full(rows, values.sum())})
        write_frame(frame, target)
        Path(f"{marker}.next").write_text(str(version))
        Path(f"{marker}.next").replace(marker)  # the marker must never be seen half-written
    """
)


def _assert_whole(target: Path) -> int:
    """The visible partition is absent or one complete version; returns that version."""
    visible = sorted(p.name for p in target.parent.glob("*.parquet"))
    assert visible in ([], [target.name]), visible
    if not target.exists():
        return 0
    frame = read_frame(target)
    assert frame.height == ROWS
    assert frame.get_column("version").n_unique() == 1
    assert frame.get_column("value").sum() == pytest.approx(frame.item(0, "checksum"))
    return int(frame.item(0, "version"))


@pytest.mark.parametrize("kill_after_s", [0.05, 0.15, 0.3, 0.45, 0.6, 0.9])
def test_sigkill_mid_write_never_leaves_a_partial_partition(tmp_path, kill_after_s):
    target = tmp_path / "bars" / "symbol=EURUSD" / "data.parquet"
    marker = tmp_path / "written"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(marker), str(ROWS)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:  # let it write at least once
            time.sleep(0.01)
        time.sleep(kill_after_s)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    version = _assert_whole(target)
    assert version >= int(marker.read_text())
    leftovers = list(target.parent.glob(".*.tmp"))
    removed = remove_stale_temp_files(target.parent)
    assert sorted(removed) == sorted(leftovers)
    assert not list(target.parent.glob(".*.tmp"))
    assert _assert_whole(target) == version


def test_failing_write_keeps_the_previous_version(tmp_path):
    target = tmp_path / "data.parquet"
    write_frame(pl.DataFrame({"a": [1, 2, 3]}), target)

    def half_then_fail(temp: Path) -> None:
        temp.write_bytes(b"PAR1 half a file")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert read_frame(target).get_column("a").to_list() == [1, 2, 3]
    assert list(tmp_path.iterdir()) == [target]


def test_temp_files_of_live_writers_are_left_alone(tmp_path):
    import socket

    host = socket.gethostname().replace(".", "-")
    live = tmp_path / f".data.parquet.{host}.{os.getpid()}.abcd1234.tmp"
    dead_pid = 2**22 + 17  # above the default pid_max: never a live process
    dead = tmp_path / f".data.parquet.{host}.{dead_pid}.abcd1234.tmp"
    foreign = tmp_path / f".data.parquet.otherhost.{dead_pid}.abcd1234.tmp"
    for path in (live, dead, foreign):
        path.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path) == [dead]
    assert live.exists() and foreign.exists()


@settings(max_examples=30, deadline=None)
@given(payloads=st.lists(st.binary(max_size=2048), min_size=1, max_size=6))
def test_last_write_wins_and_nothing_else_remains(tmp_path_factory, payloads):
    directory = tmp_path_factory.mktemp("atomic")
    target = directory / "blob.bin"
    for payload in payloads:
        atomic_write_bytes(target, payload)
        assert target.read_bytes() == payload
    assert [p.name for p in directory.iterdir()] == ["blob.bin"]
