"""The data inbox on a real instance and real files: the `data_inbox` sensor only finds
settled entries, the inbox_ingest run it requests takes, rejects or sets them aside, and
`inbox_refresh` requests the refresh of the symbols that got files."""

import hashlib
import json
import logging
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._core.events.log import EventLogEntry

import forex_assets.ingest.inbox as inbox_intake
from forex_assets import settings
from forex_assets.definitions import build_definitions
from forex_assets.defs.inbox_ingest import INBOX_INGEST, inbox_ingest_job
from forex_assets.defs.jobs import REFRESH_FEATURES
from forex_assets.defs.resources import BarSourceResource
from forex_assets.defs.resources.bar_source import FileOverrideConfig
from forex_assets.defs.sensors import (
    INBOX_FILES_TAG,
    INBOX_REFRESH_SENSOR,
    INBOX_SENSOR,
    TRIGGER_TAG,
    inbox_run_key,
)
from forex_assets.ingest.inbox_moves import REASON_SUFFIX
from forex_assets.ingest.inbox_scan import InboxSetupError
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


class Inbox:
    """The inbox as the daemon drives it, on a real instance: `data_inbox` ticks with the
    stored cursor, the inbox_ingest runs they request executed in process with the request's
    run config and tags, and `inbox_refresh` ticks after them."""

    def __init__(self, instance: dg.DagsterInstance, bar_source: BarSourceResource | None = None):
        self.instance = instance
        self.repository = build_definitions().get_repository_def()
        resources = self.repository.get_top_level_resources()
        self.bar_source = bar_source or resources["bar_source"]
        self.cursors: dict[str, str | None] = {INBOX_SENSOR: None, INBOX_REFRESH_SENSOR: None}
        self.logs: list[EventLogEntry] = []

    def _evaluate(self, name: str, resources: dict):
        with dg.build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            cursor=self.cursors[name],
            repository_def=self.repository,
            repository_name="forex_assets",
            sensor_name=name,
            resources=resources,
        ) as context:
            result = self.repository.get_sensor_def(name).evaluate_tick(context)
        self.cursors[name] = result.cursor
        return result

    def tick(self):
        """One `data_inbox` tick."""
        return self._evaluate(INBOX_SENSOR, {"bar_source": self.bar_source})

    def ingest(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        """The inbox_ingest run `request` asks for; its log is kept in `logs`."""
        run = inbox_ingest_job.execute_in_process(
            run_config=request.run_config,
            instance=self.instance,
            tags={**request.tags, "dagster/run_key": request.run_key},
            resources={"bar_source": self.bar_source},
            raise_on_error=False,
        )
        self.logs = [e for e in self.instance.all_logs(run.run_id) if e.dagster_event is None]
        return run

    def refresh(self) -> list[dg.RunRequest]:
        """One `inbox_refresh` tick: the refresh runs it requests."""
        return self._evaluate(INBOX_REFRESH_SENSOR, {}).run_requests

    def take(self) -> list[dg.RunRequest]:
        """Two ticks (first sight, then settled), the run the second requests, and the
        refresh runs requested after it."""
        first = self.tick()
        assert first.run_requests == [], "a file must be seen unchanged twice"
        [request] = self.tick().run_requests
        assert self.ingest(request).success
        return self.refresh()

    def messages(self) -> list[str]:
        return [e.user_message for e in self.logs]

    def warnings(self) -> list[str]:
        return [e.user_message for e in self.logs if e.level == logging.WARNING]


def symbols(instance: dg.DagsterInstance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET))


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
    runs = Inbox(instance)

    first = runs.tick()  # first sight: the file may still be growing
    assert first.run_requests == []
    assert "1 waiting to settle" in first.skip_message
    second = runs.tick()
    [request] = second.run_requests
    assert request.tags[TRIGGER_TAG] == INBOX_SENSOR
    [entry] = request.run_config["ops"]["take_inbox_files"]["config"]["entries"]
    assert (entry["name"], entry["size"], entry["refused"]) == (HISTDATA_NAME, len(text), None)
    assert files(inbox) == [HISTDATA_NAME]  # the sensor opens and moves nothing
    assert second.dynamic_partitions_requests == [] and symbols(instance) == []

    assert runs.ingest(request).success
    data_dir = settings.data_dir()
    assert files(data_dir) == [HISTDATA_NAME]
    assert (data_dir / HISTDATA_NAME).read_text() == text
    assert files(inbox) == []
    assert symbols(instance) == ["EURUSD"]
    assert any("took inbox file" in m and "histdata" in m for m in runs.messages())
    [refresh] = runs.refresh()
    assert refresh.partition_key == "EURUSD"
    assert refresh.job_name == REFRESH_FEATURES
    assert refresh.run_key == inbox_run_key("EURUSD", [(HISTDATA_NAME, sha256(text))])
    assert refresh.run_key.startswith(f"inbox:EURUSD:{HISTDATA_NAME}#{sha256(text)[:16]}")
    assert refresh.tags[TRIGGER_TAG] == INBOX_SENSOR
    assert refresh.tags[INBOX_FILES_TAG] == HISTDATA_NAME

    # The pipeline's own discovery finds the file and reads every bar of it.
    specs = discover_symbol_files(data_dir, "EURUSD")
    assert [s.path.name for s in specs] == [HISTDATA_NAME]
    validated, _ = load_symbol_bars(specs, instrument_for("EURUSD"))
    assert validated.bars.height == sample_eurusd.height
    assert validated.quarantine.height == 0

    third = runs.tick()  # nothing left: no request, cheap skip
    assert third.run_requests == []
    assert third.skip_message == f"no new bar files in {inbox}"
    assert runs.refresh() == []


def test_a_re_evaluated_tick_requests_the_same_run_and_a_requested_file_waits(inbox, instance):
    drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
    runs = Inbox(instance)
    runs.tick()
    before = runs.cursors[INBOX_SENSOR]
    [request] = runs.tick().run_requests
    runs.cursors[INBOX_SENSOR] = before  # the daemon lost the tick's cursor: evaluated again
    [again] = runs.tick().run_requests
    assert again.run_key == request.run_key and again.run_config == request.run_config
    # Requested and not yet taken (the run is queued): not requested a second time.
    waiting = runs.tick()
    assert waiting.run_requests == []
    assert waiting.skip_message == f"no new bar files in {inbox} (1 in a requested run)"
    assert runs.ingest(request).success
    assert json.loads(runs.tick().cursor) == {"seen": {}, "requested": {}, "requests": 1}


def test_a_new_symbol_is_added_as_a_partition(inbox, instance):
    register_symbols(instance, ["EURUSD", "USDJPY"])
    drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
    drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)
    refreshes = Inbox(instance).take()
    assert files(settings.data_dir()) == ["GBPJPY_M1_2024.csv", "USDJPY_2024.csv"]
    assert symbols(instance) == ["EURUSD", "GBPJPY", "USDJPY"]
    # One run per symbol; evaluate_tick resolved each against the job's partitions, which
    # for GBPJPY only passes because the inbox run added it.
    assert [(r.partition_key, r.run_key) for r in refreshes] == [
        ("GBPJPY", inbox_run_key("GBPJPY", [("GBPJPY_M1_2024.csv", sha256(MT4_GBPJPY))])),
        ("USDJPY", inbox_run_key("USDJPY", [("USDJPY_2024.csv", sha256(CSV_USDJPY))])),
    ]


def test_the_refresh_run_reads_the_file_that_was_taken(inbox, instance):
    drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
    [request] = Inbox(instance).take()
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
    [request] = Inbox(instance).take()
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
    runs = Inbox(instance)
    assert runs.take() == []
    assert symbols(instance) == []
    rejected = inbox / "rejected"
    assert files(rejected) == [name, name + REASON_SUFFIX]
    expected = content.encode() if isinstance(content, str) else content
    assert (rejected / name).read_bytes() == expected  # kept byte for byte
    explanation = (rejected / (name + REASON_SUFFIX)).read_text()
    assert f"file: {name}" in explanation and reason in explanation
    [warning] = runs.warnings()
    assert f"rejected inbox file {name}" in warning and reason in warning
    assert any("0 taken, 1 rejected" in m for m in runs.messages())
    assert files(inbox) == [] and files(settings.data_dir()) == []

    # The same name rejected again does not overwrite the first one.
    drop(inbox, name, content)
    runs.take()
    stem, suffix = Path(name).stem, Path(name).suffix
    assert f"{stem}-2{suffix}" in files(rejected)
    assert f"{stem}-2{suffix}{REASON_SUFFIX}" in files(rejected)


def test_a_duplicate_file_is_set_aside_without_a_second_refresh(inbox, instance):
    runs = Inbox(instance)
    path = drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)
    taken_at = path.stat().st_mtime_ns
    assert len(runs.take()) == 1
    data_dir = settings.data_dir()

    # The same download again, with the same time (cp -p), and a renamed copy.
    os.utime(drop(inbox, "USDJPY_2024.csv", CSV_USDJPY), ns=(taken_at, taken_at))
    drop(inbox, "USDJPY_copy.csv", CSV_USDJPY)
    assert runs.take() == []  # taken again (a new run key), set aside, nothing to refresh
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
    assert len(runs.warnings()) == 2
    assert all("already in the data directory" in w for w in runs.warnings())


def test_a_corrected_file_under_a_taken_name_replaces_the_older_copy(inbox, instance):
    runs = Inbox(instance)
    drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)
    [request] = runs.take()
    data_dir = settings.data_dir()

    # Only the volume differs: not identical, and the correction is what the pipeline reads.
    corrected = CSV_USDJPY.replace("144.14,12", "144.14,13")
    drop(inbox, "USDJPY_2024.csv", corrected)
    [update] = runs.take()
    assert files(data_dir) == ["USDJPY_2024.csv"]
    assert (data_dir / "USDJPY_2024.csv").read_text() == corrected
    replaced = inbox / "replaced"
    assert files(replaced) == ["USDJPY_2024.csv", "USDJPY_2024.csv" + REASON_SUFFIX]
    assert (replaced / "USDJPY_2024.csv").read_text() == CSV_USDJPY  # kept, not deleted
    reason = (replaced / ("USDJPY_2024.csv" + REASON_SUFFIX)).read_text()
    assert "replaced in the data directory by the newer inbox file" in reason
    assert sha256(corrected) in reason
    [warning] = runs.warnings()
    assert "the newer file wins" in warning and str(replaced / "USDJPY_2024.csv") in warning
    assert update.run_key == inbox_run_key("USDJPY", [("USDJPY_2024.csv", sha256(corrected))])
    assert update.run_key != request.run_key
    assert update.tags[INBOX_FILES_TAG] == "USDJPY_2024.csv"

    validated, _ = load_symbol_bars(
        discover_symbol_files(data_dir, "USDJPY"), instrument_for("USDJPY")
    )
    assert validated.bars.get_column("volume").to_list() == [10.0, 13.0]
    assert validated.quarantine.height == 0

    # The replaced folder is the intake's own: never taken back in.
    assert runs.tick().skip_message == f"no new bar files in {inbox}"
    assert runs.tick().skip_message == f"no new bar files in {inbox}"


def test_a_file_still_being_written_is_not_taken(inbox, instance):
    runs = Inbox(instance)
    path = drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY.splitlines(keepends=True)[0], age_s=0)
    assert "1 waiting to settle" in runs.tick().skip_message
    # Unchanged since the last tick but written a moment ago: not yet.
    assert "1 waiting to settle" in runs.tick().skip_message
    # The writer goes on: the size and time changed since the last tick.
    with path.open("a") as handle:
        handle.write("".join(MT4_GBPJPY.splitlines(keepends=True)[1:]))
    then = time.time() - 60
    os.utime(path, (then, then))
    assert runs.tick().run_requests == []
    # Quiet and unchanged across two ticks: requested, and taken whole.
    [request] = runs.tick().run_requests
    assert runs.ingest(request).success
    assert (settings.data_dir() / "GBPJPY_M1_2024.csv").read_text() == MT4_GBPJPY


def test_a_file_rewritten_after_its_run_was_requested_waits_for_the_next(inbox, instance):
    runs = Inbox(instance)
    path = drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
    runs.tick()
    [request] = runs.tick().run_requests
    path.write_text(MT4_GBPJPY + MT4_GBPJPY.replace("09:0", "10:0"))  # before the run starts
    os.utime(path, (time.time() - 60,) * 2)
    assert runs.ingest(request).success
    assert files(settings.data_dir()) == [] and files(inbox) == ["GBPJPY_M1_2024.csv"]
    assert any("changed since it was seen; waiting again" in m for m in runs.messages())
    assert runs.tick().run_requests == []  # seen anew: settles again
    [again] = runs.tick().run_requests
    assert again.run_key != request.run_key
    assert runs.ingest(again).success
    assert files(settings.data_dir()) == ["GBPJPY_M1_2024.csv"]


def test_an_entry_that_cannot_be_moved_fails_the_run_after_the_others(inbox, instance, monkeypatch):
    drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
    drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)
    moved = inbox_intake.move

    def move(source: Path, destination: Path) -> None:
        if source.name == "GBPJPY_M1_2024.csv":
            raise PermissionError(13, "Permission denied", str(destination))
        moved(source, destination)

    monkeypatch.setattr(inbox_intake, "move", move)
    runs = Inbox(instance)
    runs.tick()
    [request] = runs.tick().run_requests
    run = runs.ingest(request)
    assert not run.success
    [failure] = [e for e in run.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "1 inbox entries could not be read or moved" in message
    assert "GBPJPY_M1_2024.csv: [Errno 13] Permission denied" in message
    assert "re-execute this run" in message
    assert files(inbox) == ["GBPJPY_M1_2024.csv"] and symbols(instance) == ["USDJPY"]
    [refresh] = runs.refresh()  # the file that was taken is refreshed all the same
    assert refresh.partition_key == "USDJPY"
    # Re-executed once the cause is gone, the run takes what is left.
    monkeypatch.setattr(inbox_intake, "move", moved)
    assert runs.ingest(request).success
    assert files(settings.data_dir()) == ["GBPJPY_M1_2024.csv", "USDJPY_2024.csv"]
    assert [r.partition_key for r in runs.refresh()] == ["GBPJPY"]


def test_temporary_and_hidden_names_are_left_alone(inbox, instance):
    names = [".EURUSD_2024.csv", "~$EURUSD_2024.csv", "EURUSD_2024.csv.part", "EURUSD.crdownload"]
    for name in names:
        drop(inbox, name, CSV_USDJPY)
    drop(inbox / ".hidden" / "EURUSD", "2024.csv", CSV_USDJPY)  # nor hidden folders
    runs = Inbox(instance)
    for _ in range(3):
        result = runs.tick()
        assert result.run_requests == []
        assert result.skip_message == f"no new bar files in {inbox}"
    assert files(inbox) == sorted(names)
    assert json.loads(runs.cursors[INBOX_SENSOR])["seen"] == {}


def test_declared_overrides_apply_to_inbox_files(inbox, instance, tmp_path):
    # An MT4 file from a broker on a fixed GMT+2 clock, declared as the pipeline would read it.
    data_dir = tmp_path / "declared_data"
    bar_source = BarSourceResource(
        data_dir=str(data_dir),
        overrides=[FileOverrideConfig(pattern="GBPJPY*.csv", format="mt4", timezone="+02:00")],
    )
    drop(inbox, "GBPJPY_M1_2024.csv", MT4_GBPJPY)
    runs = Inbox(instance, bar_source)
    assert len(runs.take()) == 1
    assert files(data_dir) == ["GBPJPY_M1_2024.csv"]
    assert any("mt4, clock +02:00, 3 rows" in m for m in runs.messages())


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
        assert len(Inbox(instance).take()) == 1
        assert files(inbox) == []
        # Only the finished file: the staging copy (".GBPJPY_M1_2024.csv.incoming") is gone.
        assert sorted(p.name for p in data_dir.iterdir()) == ["GBPJPY_M1_2024.csv"]
        assert (data_dir / "GBPJPY_M1_2024.csv").read_text() == MT4_GBPJPY


def test_an_inbox_inside_the_data_dir_is_refused(instance, monkeypatch):
    monkeypatch.setenv(settings.ENV_INBOX, str(settings.data_dir() / "inbox"))
    with pytest.raises(InboxSetupError, match="is inside the data directory"):
        Inbox(instance).tick()


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
    assert defs.resolve_job_def(INBOX_INGEST).executor_def is dg.in_process_executor
    assert defs.resolve_schedule_def("daily_refresh").job_name == "refresh_features"
    assert defs.resolve_schedule_def("weekly_retrain").job_name == "retrain"
    inbox = defs.resolve_sensor_def("data_inbox")
    assert inbox.job_name == INBOX_INGEST
    assert inbox.minimum_interval_seconds == 30
    assert inbox.default_status == dg.DefaultSensorStatus.RUNNING
    assert inbox.required_resource_keys == {"bar_source"}
    refresh = defs.resolve_sensor_def(INBOX_REFRESH_SENSOR)
    assert refresh.job_name == "refresh_features"
    assert refresh.default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_sensor_def("symbol_registry").name == "symbol_registry"


def test_the_instance_starts_the_inbox_runs_one_at_a_time():
    import yaml

    config = yaml.safe_load((Path(__file__).parents[2] / "dagster.yaml").read_text())
    assert {"key": "dagster/sensor_name", "value": INBOX_SENSOR, "limit": 1} in config[
        "concurrency"
    ]["runs"]["tag_concurrency_limits"]


MT4_GARBAGE = "not a bar line at all\n" + "x" * 5000 + "\n" + "#" * 300 + "\n"


@pytest.mark.parametrize(
    ("valid_lines", "taken"),
    [(1, False), (2, True)],  # 1 of 4 lines parse: rejected; 2 of 4 (half): taken
)
def test_a_file_mostly_of_garbage_is_rejected_with_its_counts(inbox, instance, valid_lines, taken):
    garbage = "".join(MT4_GARBAGE.splitlines(keepends=True)[: 4 - valid_lines])
    content = "".join(MT4_GBPJPY.splitlines(keepends=True)[:valid_lines]) + garbage
    drop(inbox, "GBPJPY_M1_2024.csv", content)
    runs = Inbox(instance)
    refreshes = runs.take()
    data_dir = settings.data_dir()
    if taken:
        assert len(refreshes) == 1
        assert files(data_dir) == ["GBPJPY_M1_2024.csv"]
        assert any("2 unparseable, to be quarantined" in m for m in runs.messages())
        return
    assert refreshes == [] and symbols(instance) == []
    assert files(data_dir) == []  # nothing registered, nothing for the pipeline to quarantine
    rejected = inbox / "rejected"
    assert (rejected / "GBPJPY_M1_2024.csv").read_text() == content
    reason = (rejected / ("GBPJPY_M1_2024.csv" + REASON_SUFFIX)).read_text()
    assert "only 1 of the 4 non-blank data lines in the file parse as mt4 bars (25.0%)" in reason
    assert "at least 50% of them do" in reason and "First unparseable: line 2:" in reason
    assert "x" * 200 not in reason  # the garbage is not echoed
    [warning] = runs.warnings()
    assert "only 1 of the 4" in warning and "x" * 200 not in warning


def test_a_large_file_of_garbage_is_judged_on_its_head(inbox, instance, monkeypatch):
    monkeypatch.setattr(inbox_intake, "INBOX_HEAD_BYTES", 400)
    valid = MT4_GBPJPY.splitlines(keepends=True)[0]
    content = valid + "garbage line\n" * 2000  # every line past the head is garbage too
    drop(inbox, "GBPJPY_M1_2024.csv", content)
    assert Inbox(instance).take() == [] and symbols(instance) == []
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
    runs = Inbox(instance)
    [request] = runs.tick().run_requests  # requested on sight: a link needs no settling
    entries = request.run_config["ops"]["take_inbox_files"]["config"]["entries"]
    assert {e["refused"] for e in entries} == {"is a symbolic link"}
    assert runs.ingest(request).success
    assert runs.refresh() == [] and symbols(instance) == []
    rejected = inbox / "rejected"
    for name, target in (("EURUSD_2024.csv", secret), ("GBPJPY_M1_2024.csv", bars)):
        assert (rejected / name).is_symlink() and os.readlink(rejected / name) == str(target)
        reason = (rejected / (name + REASON_SUFFIX)).read_text()
        assert f"is a symbolic link (to {target})" in reason
        assert "Put the real file in the inbox" in reason
    assert secret.read_text().startswith("root:") and bars.read_text() == MT4_GBPJPY
    logged = " ".join(runs.messages())
    assert "is a symbolic link" in logged and "2 rejected" in logged
    assert "SECRET-LINE" not in logged and "190.1" not in logged
    assert files(settings.data_dir()) == [] and files(inbox) == []


def test_a_folder_is_taken_with_the_symbol_its_name_gives(inbox, instance):
    eurusd = CSV_USDJPY.replace("144.", "1.0")
    drop(inbox / "EURUSD", "2024.csv", eurusd)
    drop(inbox / "misc", "prices.csv", eurusd)  # no symbol in the folder or the name
    runs = Inbox(instance)
    [request] = runs.take()
    data_dir = settings.data_dir()
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
    [warning] = runs.warnings()
    assert "rejected inbox file misc/prices.csv" in warning
    assert runs.tick().skip_message == f"no new bar files in {inbox}"


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
    runs = Inbox(instance, BarSourceResource(data_dir=str(chosen)))
    with pytest.raises(InboxSetupError) as refused:
        runs.tick()
    message = str(refused.value)
    assert f"the data directory {chosen} " in message
    assert f"{relation} {isolated_homes / folder}:" in message
    assert settings.ENV_DATA_DIR in message
    assert not inbox.exists()  # refused before anything was created or moved


def test_a_copy_differing_only_in_volume_is_neither_a_duplicate_nor_identical(inbox, instance):
    runs = Inbox(instance)
    drop(inbox, "USDJPY_2024.csv", CSV_USDJPY)
    runs.take()
    other_volume = CSV_USDJPY.replace("144.14,12", "144.14,99")
    drop(inbox, "USDJPY_2024_b.csv", other_volume)  # another name: kept beside the first
    assert len(runs.take()) == 1
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
    runs = Inbox(instance)
    notes = "EURUSD notes, not bars\n"
    drop(inbox, "EURUSD_2024.csv" + REASON_SUFFIX, notes)
    runs.take()
    rejected = inbox / "rejected"
    assert (rejected / ("EURUSD_2024.csv" + REASON_SUFFIX)).read_text() == notes
    drop(inbox, "EURUSD_2024.csv", "hello\nworld\n")
    runs.take()
    assert (rejected / ("EURUSD_2024.csv" + REASON_SUFFIX)).read_text() == notes  # kept
    assert (rejected / "EURUSD_2024-2.csv").read_text() == "hello\nworld\n"
    assert (
        "file: EURUSD_2024.csv\n" in (rejected / ("EURUSD_2024-2.csv" + REASON_SUFFIX)).read_text()
    )
