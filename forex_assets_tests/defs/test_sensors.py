"""The data inbox sensor on a real instance and real files: take, reject, set aside, wait."""

import hashlib
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._core.definitions.instigation_logger import get_instigation_log_records

from forex_assets import settings
from forex_assets.definitions import build_definitions
from forex_assets.defs.jobs import REFRESH_FEATURES
from forex_assets.defs.resources import BarSourceResource
from forex_assets.defs.resources.bar_source import FileOverrideConfig
from forex_assets.defs.sensors import (
    INBOX_FILES_TAG,
    INBOX_SENSOR,
    REASON_SUFFIX,
    TRIGGER_TAG,
    inbox_run_key,
)
from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.ingest.sources import discover_symbol_files, load_symbol_bars
from forex_assets.market.instruments import instrument_for
from forex_assets.partitions import SYMBOLS_PARTITION_SET, register_symbols

HISTDATA_NAME = "DAT_ASCII_EURUSD_M1_202301.csv"
MT4_GBPJPY = (
    "2024.01.09,09:00,190.100,190.120,190.080,190.110,15\n"
    "2024.01.09,09:01,190.110,190.150,190.100,190.140,22\n"
    "2024.01.09,09:02,190.140,190.160,190.120,190.130,9\n"
)
CSV_USDJPY = (
    "time,open,high,low,close,volume\n"
    "2024-01-09T09:00:00Z,144.10,144.12,144.08,144.11,10\n"
    "2024-01-09T09:01:00Z,144.11,144.15,144.10,144.14,12\n"
)


def histdata_text(bars: pl.DataFrame) -> str:
    """M1 bars written as a HistData.com ASCII file (fixed EST, UTC-5)."""
    est = bars.with_columns((pl.col("time") - timedelta(hours=5)).dt.strftime("%Y%m%d %H%M%S"))
    return "".join(
        f"{t};{o:.5f};{h:.5f};{lo:.5f};{c:.5f};0\n"
        for t, o, h, lo, c in est.select("time", "open", "high", "low", "close").iter_rows()
    )


@pytest.fixture(scope="module")
def sample_eurusd() -> pl.DataFrame:
    return generate_sample_m1("EURUSD", start=date(2023, 1, 2), years=0.01)


@pytest.fixture
def inbox(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "inbox"
    monkeypatch.setenv(settings.ENV_INBOX, str(path))
    return path


@pytest.fixture
def instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


class Sensor:
    """Evaluates the code location's `data_inbox` sensor tick after tick, as the daemon does:
    with the instance, the stored cursor and the definitions' resources."""

    def __init__(self, instance: dg.DagsterInstance, bar_source: BarSourceResource | None = None):
        self.instance = instance
        self.repository = build_definitions().get_repository_def()
        self.sensor = self.repository.get_sensor_def(INBOX_SENSOR)
        resources = self.repository.get_top_level_resources()
        self.resources = {"bar_source": bar_source or resources["bar_source"]}
        self.cursor: str | None = None
        self.logs: list[dict] = []

    def tick(self):
        with dg.build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            cursor=self.cursor,
            repository_def=self.repository,
            repository_name="forex_assets",
            sensor_name=INBOX_SENSOR,
            resources=self.resources,
        ) as context:
            result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        self.logs = (
            get_instigation_log_records(self.instance, result.log_key) if result.log_key else []
        )
        return result

    def warnings(self) -> list[str]:
        return [r["msg"] for r in self.logs if r["levelname"] == "WARNING"]


def drop(inbox: Path, name: str, content: str | bytes, age_s: float = 60.0) -> Path:
    """Put a finished file in the inbox, last written `age_s` seconds ago."""
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.exists() else []


def test_a_bar_file_is_moved_to_the_data_dir_and_refreshed(inbox, instance, sample_eurusd):
    text = histdata_text(sample_eurusd)
    drop(inbox, HISTDATA_NAME, text)
    sensor = Sensor(instance)

    first = sensor.tick()  # first sight: the file may still be growing
    assert first.run_requests == []
    assert "1 waiting to settle" in first.skip_message
    assert files(inbox) == [HISTDATA_NAME]

    second = sensor.tick()
    data_dir = settings.data_dir()
    assert files(data_dir) == [HISTDATA_NAME]
    assert (data_dir / HISTDATA_NAME).read_text() == text
    assert files(inbox) == []
    [request] = second.run_requests
    assert request.partition_key == "EURUSD"
    assert request.job_name == REFRESH_FEATURES
    assert request.run_key == inbox_run_key("EURUSD", [(HISTDATA_NAME, sha256(text))])
    assert request.run_key.startswith(f"inbox:EURUSD:{HISTDATA_NAME}#{sha256(text)[:16]}")
    assert request.tags[TRIGGER_TAG] == INBOX_SENSOR
    assert request.tags[INBOX_FILES_TAG] == HISTDATA_NAME
    [added] = second.dynamic_partitions_requests
    assert (added.partitions_def_name, list(added.partition_keys)) == ("symbols", ["EURUSD"])
    assert any("took inbox file" in r["msg"] and "histdata" in r["msg"] for r in sensor.logs)

    # The pipeline's own discovery finds the file and reads every bar of it.
    specs = discover_symbol_files(data_dir, "EURUSD")
    assert [s.path.name for s in specs] == [HISTDATA_NAME]
    validated, _ = load_symbol_bars(specs, instrument_for("EURUSD"))
    assert validated.bars.height == sample_eurusd.height
    assert validated.quarantine.height == 0

    third = sensor.tick()  # nothing left: no request, cheap skip
    assert third.run_requests == [] and third.dynamic_partitions_requests == []
    assert third.skip_message == f"no new bar files in {inbox}"


def test_a_new_symbol_is_added_as_a_partition(inbox, instance):
    register_symbols(instance, ["EURUSD", "USDJPY"])
    drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
    drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)
    sensor = Sensor(instance)
    sensor.tick()
    result = sensor.tick()
    assert files(settings.data_dir()) == ["GBPJPY_M1_2024.csv", "USDJPY_2024.csv"]
    # One run per symbol; evaluate_tick resolved each against the job's partitions, which
    # for GBPJPY only passes because the same result adds it.
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [
        ("GBPJPY", inbox_run_key("GBPJPY", [("GBPJPY_M1_2024.csv", sha256(MT4_GBPJPY))])),
        ("USDJPY", inbox_run_key("USDJPY", [("USDJPY_2024.csv", sha256(CSV_USDJPY))])),
    ]
    [added] = result.dynamic_partitions_requests
    assert list(added.partition_keys) == ["GBPJPY"]
    assert "GBPJPY" not in instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET)


def test_the_requested_run_reads_the_file_that_was_taken(inbox, instance):
    drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
    sensor = Sensor(instance)
    sensor.tick()
    result = sensor.tick()
    [request] = result.run_requests
    [added] = result.dynamic_partitions_requests
    # What the daemon does with the result: add the partitions, launch the run.
    instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))
    job = build_definitions().resolve_job_def(request.job_name)
    run = job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        asset_selection=[dg.AssetKey("m1_bars"), dg.AssetKey("m1_quarantine")],
    )
    assert run.success
    [bars] = [
        m for m in run.asset_materializations_for_node("m1_bars") if m.asset_key.path == ["m1_bars"]
    ]
    assert bars.partition == "GBPJPY"
    assert bars.metadata["source"].value == "files"
    assert bars.metadata["rows_kept"].value == 3
    assert str(settings.data_dir() / "GBPJPY_M1_2024.csv") in bars.metadata["files"].value
    assert run.dagster_run.tags[TRIGGER_TAG] == INBOX_SENSOR


def test_files_of_one_symbol_in_one_tick_share_one_run(inbox, instance):
    first = "EURUSD_2024_01.csv"
    second = "EURUSD_2024_02.csv"
    drop(inbox, first, CSV_USDJPY.replace("144.", "1.0"))
    drop(inbox, second, CSV_USDJPY.replace("144.", "1.0").replace("2024-01", "2024-02"))
    sensor = Sensor(instance)
    sensor.tick()
    [request] = sensor.tick().run_requests
    assert request.partition_key == "EURUSD"
    assert request.tags[INBOX_FILES_TAG] == f"{first}, {second}"
    assert request.run_key.startswith(f"inbox:EURUSD:{first}#") and f",{second}#" in request.run_key


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("EURUSD_export.csv", "hello\nworld\n", "could not recognise the format"),
        ("EURUSD_2024.csv", b"", "the file is empty"),
        ("prices.csv", MT4_GBPJPY, "no symbol in the file name"),
        ("EURUSD_GBPUSD.csv", MT4_GBPJPY, "names several symbols (EURUSD, GBPUSD)"),
        ("EURUSD_2024.xlsx", b"PK\x03\x04 zipped", "the extension '.xlsx' is not read"),
        ("EURUSD_bad.csv", "20240109 090000;x;y;z;w;0\n", "no row could be parsed as histdata"),
        ("EURUSD_bin.csv", b"\x00\x01\x02\xff" * 64, "binary content"),
    ],
)
def test_an_unreadable_file_is_rejected_with_its_reason(inbox, instance, name, content, reason):
    drop(inbox, name, content)
    sensor = Sensor(instance)
    sensor.tick()
    result = sensor.tick()
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert "1 rejected" in result.skip_message
    rejected = inbox / "rejected"
    assert files(rejected) == [name, name + REASON_SUFFIX]
    expected = content.encode() if isinstance(content, str) else content
    assert (rejected / name).read_bytes() == expected  # kept byte for byte
    explanation = (rejected / (name + REASON_SUFFIX)).read_text()
    assert f"file: {name}" in explanation and reason in explanation
    [warning] = sensor.warnings()
    assert f"rejected inbox file {name}" in warning and reason in warning
    assert files(inbox) == [] and files(settings.data_dir()) == []

    # The same name rejected again does not overwrite the first one.
    drop(inbox, name, content)
    sensor.tick()
    sensor.tick()
    stem, suffix = Path(name).stem, Path(name).suffix
    assert f"{stem}-2{suffix}" in files(rejected)
    assert f"{stem}-2{suffix}{REASON_SUFFIX}" in files(rejected)


def test_a_duplicate_file_is_set_aside_without_a_second_run(inbox, instance):
    sensor = Sensor(instance)
    drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)
    sensor.tick()
    assert len(sensor.tick().run_requests) == 1
    data_dir = settings.data_dir()

    drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)  # the same download again
    drop(inbox, "USDJPY_copy.csv", CSV_USDJPY)  # and a renamed copy
    sensor.tick()
    result = sensor.tick()
    assert result.run_requests == []
    assert "2 duplicates" in result.skip_message
    assert files(data_dir) == ["USDJPY_2024.csv"]
    duplicates = inbox / "duplicates"
    assert files(duplicates) == [
        "USDJPY_2024.csv",
        "USDJPY_2024.csv" + REASON_SUFFIX,
        "USDJPY_copy.csv",
        "USDJPY_copy.csv" + REASON_SUFFIX,
    ]
    assert (duplicates / "USDJPY_copy.csv").read_text() == CSV_USDJPY
    reason = (duplicates / ("USDJPY_2024.csv" + REASON_SUFFIX)).read_text()
    assert str(data_dir / "USDJPY_2024.csv") in reason and sha256(CSV_USDJPY) in reason
    assert len(sensor.warnings()) == 2
    assert all("already in the data directory" in w for w in sensor.warnings())


def test_a_corrected_file_under_a_taken_name_replaces_the_older_copy(inbox, instance):
    sensor = Sensor(instance)
    drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)
    sensor.tick()
    [request] = sensor.tick().run_requests
    data_dir = settings.data_dir()

    # Only the volume differs: not identical, and the correction is what the pipeline reads.
    corrected = CSV_USDJPY.replace("144.14,12", "144.14,13")
    drop(inbox, "USDJPY_2024.csv", corrected)
    sensor.tick()
    [update] = sensor.tick().run_requests
    assert files(data_dir) == ["USDJPY_2024.csv"]
    assert (data_dir / "USDJPY_2024.csv").read_text() == corrected
    replaced = inbox / "replaced"
    assert files(replaced) == ["USDJPY_2024.csv", "USDJPY_2024.csv" + REASON_SUFFIX]
    assert (replaced / "USDJPY_2024.csv").read_text() == CSV_USDJPY  # kept, not deleted
    reason = (replaced / ("USDJPY_2024.csv" + REASON_SUFFIX)).read_text()
    assert "replaced in the data directory by the newer inbox file" in reason
    assert sha256(corrected) in reason
    [warning] = sensor.warnings()
    assert "the newer file wins" in warning and str(replaced / "USDJPY_2024.csv") in warning
    assert update.run_key == inbox_run_key("USDJPY", [("USDJPY_2024.csv", sha256(corrected))])
    assert update.run_key != request.run_key
    assert update.tags[INBOX_FILES_TAG] == "USDJPY_2024.csv"

    validated, _ = load_symbol_bars(
        discover_symbol_files(data_dir, "USDJPY"), instrument_for("USDJPY")
    )
    assert validated.bars.get_column("volume").to_list() == [10.0, 13.0]
    assert validated.quarantine.height == 0

    # The replaced folder is the sensor's own: never taken back in.
    assert sensor.tick().skip_message == f"no new bar files in {inbox}"
    assert sensor.tick().skip_message == f"no new bar files in {inbox}"


def test_a_file_still_being_written_is_not_taken(inbox, instance):
    sensor = Sensor(instance)
    path = drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY.splitlines(keepends=True)[0], age_s=0)
    assert "1 waiting to settle" in sensor.tick().skip_message
    # Unchanged since the last tick but written a moment ago: not yet.
    assert "1 waiting to settle" in sensor.tick().skip_message
    # The writer goes on: the size and time changed since the last tick.
    with path.open("a") as handle:
        handle.write("".join(MT4_GBPJPY.splitlines(keepends=True)[1:]))
    then = time.time() - 60
    os.utime(path, (then, then))
    assert sensor.tick().run_requests == []
    assert files(inbox) == ["GBPJPY_M1_2024.csv"]
    # Quiet and unchanged across two ticks: taken whole.
    [request] = sensor.tick().run_requests
    assert request.partition_key == "GBPJPY"
    assert (settings.data_dir() / "GBPJPY_M1_2024.csv").read_text() == MT4_GBPJPY


def test_temporary_and_hidden_names_are_left_alone(inbox, instance):
    names = [".EURUSD_2024.csv", "~$EURUSD_2024.csv", "EURUSD_2024.csv.part", "EURUSD.crdownload"]
    for name in names:
        drop(inbox, name, CSV_USDJPY)
    drop(inbox / ".hidden" / "EURUSD", "2024.csv", CSV_USDJPY)  # nor hidden folders
    sensor = Sensor(instance)
    for _ in range(3):
        result = sensor.tick()
        assert result.run_requests == []
        assert result.skip_message == f"no new bar files in {inbox}"
    assert files(inbox) == sorted(names)
    assert '"seen": {}' in sensor.cursor


def test_declared_overrides_apply_to_inbox_files(inbox, instance, tmp_path):
    # An MT4 file from a broker on a fixed GMT+2 clock, declared as the pipeline would read it.
    data_dir = tmp_path / "declared_data"
    bar_source = BarSourceResource(
        data_dir=str(data_dir),
        overrides=[FileOverrideConfig(pattern="GBPJPY*.csv", format="mt4", timezone="+02:00")],
    )
    drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
    sensor = Sensor(instance, bar_source)
    sensor.tick()
    assert len(sensor.tick().run_requests) == 1
    assert files(data_dir) == ["GBPJPY_M1_2024.csv"]
    assert any("mt4, clock +02:00, 3 rows" in r["msg"] for r in sensor.logs)


def _other_filesystem() -> Path | None:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != Path.cwd().stat().st_dev:
        return shm
    return None


@pytest.mark.skipif(_other_filesystem() is None, reason="needs /dev/shm on another filesystem")
def test_an_inbox_on_another_filesystem_moves_through_a_hidden_copy(instance, monkeypatch):
    with tempfile.TemporaryDirectory(dir=_other_filesystem()) as shared:
        inbox = Path(shared) / "inbox"
        monkeypatch.setenv(settings.ENV_INBOX, str(inbox))
        data_dir = settings.data_dir()
        data_dir.mkdir(parents=True)
        assert inbox.parent.stat().st_dev != data_dir.stat().st_dev
        drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
        sensor = Sensor(instance)
        sensor.tick()
        assert len(sensor.tick().run_requests) == 1
        assert files(inbox) == []
        # Only the finished file: the staging copy (".GBPJPY_M1_2024.csv.incoming") is gone.
        assert sorted(p.name for p in data_dir.iterdir()) == ["GBPJPY_M1_2024.csv"]
        assert (data_dir / "GBPJPY_M1_2024.csv").read_text() == MT4_GBPJPY


def test_an_inbox_inside_the_data_dir_is_refused(instance, monkeypatch):
    monkeypatch.setenv(settings.ENV_INBOX, str(settings.data_dir() / "inbox"))
    with pytest.raises(dg.DagsterInvariantViolationError, match="is inside the data directory"):
        Sensor(instance).tick()


def test_inbox_setting_defaults_under_the_project_home(monkeypatch):
    monkeypatch.delenv(settings.ENV_INBOX, raising=False)
    assert settings.inbox_dir() == settings.project_home() / "inbox"
    monkeypatch.setenv(settings.ENV_INBOX, "/srv/forex/inbox")
    assert settings.inbox_dir() == Path("/srv/forex/inbox")


def test_the_code_location_has_the_jobs_schedules_and_sensors():
    from forex_assets.definitions import defs

    assert defs.resolve_job_def("retrain").name == "retrain"
    assert defs.resolve_job_def("refresh_features").name == "refresh_features"
    assert defs.resolve_job_def("symbol_pipeline").name == "symbol_pipeline"
    assert defs.resolve_schedule_def("daily_refresh").job_name == "refresh_features"
    assert defs.resolve_schedule_def("weekly_retrain").job_name == "retrain"
    inbox = defs.resolve_sensor_def("data_inbox")
    assert inbox.job_name == "refresh_features"
    assert inbox.minimum_interval_seconds == 30
    assert inbox.default_status == dg.DefaultSensorStatus.RUNNING
    assert inbox.required_resource_keys == {"bar_source"}
    assert defs.resolve_sensor_def("symbol_registry").name == "symbol_registry"


MT4_GARBAGE = "not a bar line at all\n" + "x" * 5000 + "\n" + "#" * 300 + "\n"


@pytest.mark.parametrize(
    ("valid_lines", "taken"),
    [(1, False), (2, True)],  # 1 of 4 lines parse: rejected; 2 of 4 (half): taken
)
def test_a_file_mostly_of_garbage_is_rejected_with_its_counts(inbox, instance, valid_lines, taken):
    garbage = "".join(MT4_GARBAGE.splitlines(keepends=True)[: 4 - valid_lines])
    content = "".join(MT4_GBPJPY.splitlines(keepends=True)[:valid_lines]) + garbage
    drop(inbox, "GBPJPY_M1_2024.csv", content)
    sensor = Sensor(instance)
    sensor.tick()
    result = sensor.tick()
    data_dir = settings.data_dir()
    if taken:
        assert len(result.run_requests) == 1
        assert files(data_dir) == ["GBPJPY_M1_2024.csv"]
        assert any("2 unparseable, to be quarantined" in r["msg"] for r in sensor.logs)
        return
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert files(data_dir) == []  # nothing registered, nothing for the pipeline to quarantine
    rejected = inbox / "rejected"
    assert (rejected / "GBPJPY_M1_2024.csv").read_text() == content
    reason = (rejected / ("GBPJPY_M1_2024.csv" + REASON_SUFFIX)).read_text()
    assert "only 1 of the 4 non-blank data lines in the file parse as mt4 bars (25.0%)" in reason
    assert "at least 50% of them do" in reason and "First unparseable: line 2:" in reason
    assert "x" * 200 not in reason  # the garbage is not echoed
    [warning] = sensor.warnings()
    assert "only 1 of the 4" in warning and "x" * 200 not in warning


def test_a_large_file_of_garbage_is_judged_on_its_head(inbox, instance, monkeypatch):
    import forex_assets.defs.sensors as sensors

    monkeypatch.setattr(sensors, "INBOX_HEAD_BYTES", 400)
    valid = MT4_GBPJPY.splitlines(keepends=True)[0]
    content = valid + "garbage line\n" * 2000  # every line past the head is garbage too
    drop(inbox, "GBPJPY_M1_2024.csv", content)
    sensor = Sensor(instance)
    sensor.tick()
    result = sensor.tick()
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    reason = (inbox / "rejected" / ("GBPJPY_M1_2024.csv" + REASON_SUFFIX)).read_text()
    # The head's lines only: 1 valid (52 bytes) + 26 garbage lines end within 400 bytes.
    assert (
        "only 1 of the 27 non-blank data lines in its first 400 bytes (the rest was not" in reason
    )
    assert files(settings.data_dir()) == []


def test_a_symbolic_link_is_refused_without_opening_its_target(inbox, instance, tmp_path):
    secret = tmp_path / "elsewhere" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:SECRET-LINE:/root:/bin/bash\n")
    bars = tmp_path / "elsewhere" / "GBPJPY_M1_2024.csv"
    bars.write_text(MT4_GBPJPY)
    inbox.mkdir()
    (inbox / "EURUSD_2024.csv").symlink_to(secret)
    (inbox / "GBPJPY_M1_2024.csv").symlink_to(bars)  # a valid bar file is no exception
    sensor = Sensor(instance)
    result = sensor.tick()  # refused on sight: a link needs no settling
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert "2 rejected" in result.skip_message
    rejected = inbox / "rejected"
    for name, target in (("EURUSD_2024.csv", secret), ("GBPJPY_M1_2024.csv", bars)):
        assert (rejected / name).is_symlink() and os.readlink(rejected / name) == str(target)
        reason = (rejected / (name + REASON_SUFFIX)).read_text()
        assert f"is a symbolic link (to {target})" in reason
        assert "Put the real file in the inbox" in reason
    assert secret.read_text().startswith("root:") and bars.read_text() == MT4_GBPJPY
    logged = " ".join(r["msg"] for r in sensor.logs)
    assert "is a symbolic link" in logged
    assert "SECRET-LINE" not in logged and "190.1" not in logged
    assert files(settings.data_dir()) == [] and files(inbox) == []


def test_a_folder_is_taken_with_the_symbol_its_name_gives(inbox, instance):
    eurusd = CSV_USDJPY.replace("144.", "1.0")
    drop(inbox / "EURUSD", "2024.csv", eurusd)
    drop(inbox / "misc", "prices.csv", eurusd)  # no symbol in the folder or the name
    sensor = Sensor(instance)
    sensor.tick()
    result = sensor.tick()
    data_dir = settings.data_dir()
    [request] = result.run_requests
    assert request.partition_key == "EURUSD"
    assert request.tags[INBOX_FILES_TAG] == "EURUSD/2024.csv"
    assert request.run_key == inbox_run_key("EURUSD", [("EURUSD/2024.csv", sha256(eurusd))])
    assert (data_dir / "EURUSD" / "2024.csv").read_text() == eurusd
    assert [s.path for s in discover_symbol_files(data_dir, "EURUSD")] == [
        data_dir / "EURUSD" / "2024.csv"
    ]
    # A folder's rejected file keeps its folder, so it can be dropped back as it was.
    reason = (inbox / "rejected" / "misc" / ("prices.csv" + REASON_SUFFIX)).read_text()
    assert "file: misc/prices.csv" in reason and "no symbol in the file name" in reason
    assert (inbox / "rejected" / "misc" / "prices.csv").read_text() == eurusd
    [warning] = sensor.warnings()
    assert "rejected inbox file misc/prices.csv" in warning
    assert sensor.tick().skip_message == f"no new bar files in {inbox}"


@pytest.mark.parametrize(
    ("data_dir", "relation", "folder"),
    [
        (".", "contains the project's Parquet store", "store"),
        ("models/EURUSD", "is inside the project's model folder", "models"),
    ],
)
def test_a_data_dir_overlapping_the_project_folders_is_refused(
    inbox, instance, isolated_homes, data_dir, relation, folder
):
    chosen = (isolated_homes / data_dir).resolve()
    sensor = Sensor(instance, BarSourceResource(data_dir=str(chosen)))
    with pytest.raises(dg.DagsterInvariantViolationError) as refused:
        sensor.tick()
    message = str(refused.value)
    assert f"the data directory {chosen} " in message
    assert f"{relation} {isolated_homes / folder}:" in message
    assert settings.ENV_DATA_DIR in message
    assert not inbox.exists()  # refused before anything was created or moved


def test_a_copy_differing_only_in_volume_is_neither_a_duplicate_nor_identical(inbox, instance):
    sensor = Sensor(instance)
    drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)
    sensor.tick()
    sensor.tick()
    other_volume = CSV_USDJPY.replace("144.14,12", "144.14,99")
    drop(inbox, "USDJPY_2024_b.csv", other_volume)  # another name: kept beside the first
    sensor.tick()
    assert len(sensor.tick().run_requests) == 1
    data_dir = settings.data_dir()
    assert files(data_dir) == ["USDJPY_2024.csv", "USDJPY_2024_b.csv"]
    validated, _ = load_symbol_bars(
        discover_symbol_files(data_dir, "USDJPY"), instrument_for("USDJPY")
    )
    details = validated.quarantine.sort("line").get_column("detail").to_list()
    kept = data_dir / "USDJPY_2024.csv"
    assert details == [
        f"identical bar, time 2024-01-09 09:00:00 UTC already at {kept}:2",
        f"conflicting bar, time 2024-01-09 09:01:00 UTC already at {kept}:3",
    ]


def test_a_rejected_file_named_like_a_reason_file_is_never_overwritten(inbox, instance):
    sensor = Sensor(instance)
    notes = "EURUSD notes, not bars\n"
    drop(inbox, "EURUSD_2024.csv" + REASON_SUFFIX, notes)
    sensor.tick()
    sensor.tick()
    rejected = inbox / "rejected"
    assert (rejected / ("EURUSD_2024.csv" + REASON_SUFFIX)).read_text() == notes
    drop(inbox, "EURUSD_2024.csv", "hello\nworld\n")
    sensor.tick()
    sensor.tick()
    assert (rejected / ("EURUSD_2024.csv" + REASON_SUFFIX)).read_text() == notes  # kept
    assert (rejected / "EURUSD_2024-2.csv").read_text() == "hello\nworld\n"
    assert (
        "file: EURUSD_2024.csv\n" in (rejected / ("EURUSD_2024-2.csv" + REASON_SUFFIX)).read_text()
    )
