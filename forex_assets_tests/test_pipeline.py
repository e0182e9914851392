"""The symbol pipeline end to end on a real Dagster instance, real files and real Parquet."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
import pytest

from forex_assets import settings
from forex_assets.cli import main as cli_main
from forex_assets.compute.core_ledger import CoreLedger, default_ledger_path
from forex_assets.definitions import build_definitions
from forex_assets.defs.checks import MODEL_GATE
from forex_assets.defs.jobs import PAPER_TRADING_JOB, SYMBOL_PIPELINE
from forex_assets.executor import UnknownSymbolPartitionError, ensure_symbol_partition
from forex_assets.market.timeframes import Timeframe
from forex_assets.partitions import SYMBOLS_PARTITION_SET, register_symbols
from forex_assets.storage.catalog import DuckDBCatalog
from forex_assets.trading.risk_ledger import RiskLedger

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


def _run(
    instance: dg.DagsterInstance,
    symbol: str,
    groups: tuple[str, ...] = (),
    job_name: str = SYMBOL_PIPELINE,
    run_config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """The symbol pipeline, or only the asset groups named (tiny files cannot train models)."""
    register_symbols(instance, [symbol])
    defs = build_definitions()
    job = defs.resolve_job_def(job_name)
    selection = (
        sorted(dg.AssetSelection.groups(*groups).resolve(defs.resolve_asset_graph()))
        if groups
        else None
    )
    return job.execute_in_process(
        instance=instance,
        partition_key=symbol,
        raise_on_error=False,
        asset_selection=selection,
        run_config=run_config,
    )


def _metadata(result: dg.ExecuteInProcessResult, node: str, key: str | None = None) -> dict:
    materializations = result.asset_materializations_for_node(node)
    if key is not None:
        materializations = [m for m in materializations if m.asset_key.to_user_string() == key]
    assert len(materializations) == 1
    return {k: v.value for k, v in materializations[0].metadata.items()}


def test_sample_symbol_materializes_every_timeframe(instance, monkeypatch):
    monkeypatch.setenv(settings.ENV_SAMPLE_YEARS, "0.1")
    result = _run(instance, "USDJPY")
    assert result.success
    m1 = _metadata(result, "m1_bars", "m1_bars")
    assert m1["source"] == "sample"
    assert m1["rows_in"] == m1["rows_kept"] > 30_000
    assert m1["rows_quarantined"] == 0
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 12 * 4 + 1  # bar checks + no_look_ahead
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    for tf in Timeframe:
        meta = _metadata(result, f"bars__{tf.value.lower()}")
        path = Path(meta["dagster/uri"])
        assert (
            path
            == settings.storage_root()
            / "bars"
            / tf.value.lower()
            / "symbol=USDJPY"
            / "data.parquet"
        )
        bars = pl.read_parquet(path)
        assert bars.height == meta["dagster/row_count"] == meta["bars"]
        assert bars.get_column("bar_count").sum() == m1["rows_kept"]
        assert meta["incomplete_bars"] in (0, 1)
    for tf in Timeframe:
        meta = _metadata(result, f"features__{tf.value.lower()}")
        features = pl.read_parquet(meta["dagster/uri"])
        values = [c for c in features.columns if c not in ("time", "close_time", "complete")]
        assert meta["feature_columns"] == len(values)
        assert all(features.schema[c] == pl.Float32 for c in values)
        assert features.height == meta["rows"]
    matrix_meta = _metadata(result, "feature_matrix")
    matrix = pl.read_parquet(matrix_meta["dagster/uri"])
    assert matrix.height == matrix_meta["rows"] > 5_000
    assert matrix_meta["feature_columns"] > 200
    assert sum(matrix_meta["triple_barrier_balance"].values()) == matrix.height
    assert set(matrix_meta["triple_barrier_balance"]) <= {"-1", "0", "1"}
    assert 0 <= matrix_meta["nan_share"] < 0.2
    assert "| time | close_time |" in matrix_meta["preview"]
    assert {"tb_label", "tb_t1", "meta_label", "meta_t1", "confluence_trend"} <= set(matrix.columns)
    folds_meta = _metadata(result, "cpcv_folds")
    assert (folds_meta["splits"], folds_meta["paths"]) == (15, 5)
    models_meta = _metadata(result, "trained_models")
    assert (models_meta["splits"], models_meta["paths"]) == (15, 5)
    assert 0.0 <= models_meta["deflated_sharpe_ratio"] <= 1.0
    assert models_meta["pbo"] != models_meta["pbo"] or 0.0 <= models_meta["pbo"] <= 1.0
    assert "| lightgbm | 0 |" in models_meta["path_metrics"]
    assert models_meta["equity_path_4"].startswith("![equity path 4](data:image/png;base64,")
    oof = pl.read_parquet(models_meta["dagster/uri"])
    assert oof.height == 5 * 3 * matrix.height  # paths x (lightgbm, mlp, blend) x rows
    catalog = DuckDBCatalog(settings.catalog_path())
    assert {"m1_bars", "m1_quarantine", "bars_h4", "bars_mn1", "feature_matrix"} <= set(
        catalog.views()
    )
    registry = catalog.query(
        "SELECT model, split, file, data_fingerprint FROM model_registry WHERE symbol = 'USDJPY'"
    )
    assert registry.height == 2 * (15 + 1) + 1  # + the final blender
    assert all(Path(f).exists() for f in registry.get_column("file"))
    assert set(registry.get_column("data_fingerprint")) == {models_meta["data_fingerprint"]}
    evolved = _metadata(result, "evolved_strategies")
    assert evolved["evaluations"] > 0 and evolved["stopped_by"] in {"generations", "time"}
    assert "| generation | island 0 |" in evolved["best_fitness_by_island_and_generation"]
    assert evolved["equity_best"].startswith("![USDJPY best evolved strategy")
    portfolio = _metadata(result, "strategy_portfolio")
    assert 1 <= portfolio["strategies"] <= 20
    strategies = catalog.query(
        "SELECT count(*) AS n FROM strategy_registry WHERE symbol = 'USDJPY'"
    ).item()
    assert strategies == evolved["dagster/row_count"]
    assert not result.asset_materializations_for_node("paper_trading")  # not research
    # The sample is a random walk: the model gate rightly keeps its models from trading.
    blocked = _run(instance, "USDJPY", job_name=PAPER_TRADING_JOB)
    assert not blocked.success
    (gate,) = blocked.get_asset_check_evaluations()
    assert gate.check_name == MODEL_GATE and not gate.passed
    assert "may not feed paper_trading" in gate.description
    assert not blocked.asset_materializations_for_node("paper_trading")
    # Opened deliberately (study mode), the held-out period is replayed.
    gate_off = {"min_deflated_sharpe": 0.0, "max_pbo": 1.0}
    traded = _run(
        instance,
        "USDJPY",
        job_name=PAPER_TRADING_JOB,
        run_config={"ops": {f"trained_models_{MODEL_GATE}": {"config": gate_off}}},
    )
    assert traded.success
    paper = _metadata(traded, "paper_trading")
    assert (
        paper["sources"][0] == "model_blend"
        and len(paper["sources"]) == 1 + portfolio["strategies"]
    )
    assert paper["held_out_bars"] == evolved["holdout_bars"]
    assert paper["orders"] + paper["refusals"] > 0
    assert "| rule | refusals | share | example |" in paper["refusal_reasons"] or (
        paper["refusals"] == 0
    )
    assert paper["equity"].startswith("![USDJPY paper trading")
    ledger = RiskLedger(settings.trading_dir() / "risk_ledger.sqlite")
    intents = ledger.intents(paper["account"])
    assert intents.height == paper["orders"]
    assert ledger.refusals(paper["account"]).height == paper["refusals"]
    equity = pl.read_parquet(paper["dagster/uri"])
    assert equity.height == paper["held_out_days"] and equity.get_column("day").is_sorted()
    closed_pnl = intents.filter(pl.col("state") == "closed").get_column("pnl").sum()
    balance = ledger.account_state(paper["account"], 0).balance
    assert balance == pytest.approx(100_000.0 + closed_pnl)
    daily = catalog.query(
        "SELECT symbol, count(*) AS n, bool_and(close_time > time) AS ordered FROM bars_d1 GROUP BY 1"
    )
    assert daily.rows() == [("USDJPY", _metadata(result, "bars__d1")["bars"], True)]


def _histdata_line(stamp: str, o: float, h: float, lo: float, c: float) -> str:
    return f"{stamp};{o:.5f};{h:.5f};{lo:.5f};{c:.5f};0"


def test_real_files_with_bad_rows_are_quarantined_and_counted(instance):
    folder = settings.data_dir() / "EURUSD"
    folder.mkdir(parents=True)
    good = [
        _histdata_line(f"20240109 {h:02d}{m:02d}00", 1.1, 1.1002, 1.0998, 1.1001)
        for h in range(9, 12)
        for m in range(60)
    ]
    lines = list(good)
    lines.insert(10, "20240109 091000;1.10000;1.10020;1.09980;1.10010;0")  # identical duplicate
    lines.insert(
        20, "20240109 092000;1.10000;1.09000;1.09980;1.10010;0"
    )  # conflicting dup + bad high
    lines.insert(30, "20240109 093000;nan;1.10020;1.09980;1.10010;0")  # missing value
    lines.insert(40, "20240109 093500;-1.1;1.10020;1.09980;1.10010;0")  # non-positive
    lines.insert(50, "20240113 120000;1.10000;1.10020;1.09980;1.10010;0")  # Saturday
    lines.insert(60, "20240109 080000;1.10000;1.10020;1.09980;1.10010;0")  # out of order
    lines.insert(70, "garbage line")
    (folder / "DAT_ASCII_EURUSD_M1_202401.csv").write_text("\n".join(lines) + "\n")

    result = _run(instance, "EURUSD", groups=("data",))
    assert result.success
    m1 = _metadata(result, "m1_bars", "m1_bars")
    assert m1["source"] == "files"
    assert m1["rows_in"] == len(lines) == 187
    assert m1["rows_kept"] == len(good) == 180
    assert m1["rows_in"] == m1["rows_kept"] + m1["rows_quarantined"]
    assert m1["quarantine_by_reason"] == {
        "duplicate_timestamp": 1,
        "high_below_open_close": 1,
        "missing_value": 1,
        "non_positive_price": 1,
        "weekend_closure": 1,
        "non_monotonic": 1,
        "unparseable": 1,
    }
    quarantine = pl.read_parquet(
        settings.storage_root() / "m1_quarantine" / "symbol=EURUSD" / "data.parquet"
    )
    assert quarantine.height == 7
    assert set(quarantine.get_column("file")) == {str(folder / "DAT_ASCII_EURUSD_M1_202401.csv")}
    by_line = dict(zip(quarantine.get_column("line"), quarantine.get_column("raw"), strict=True))
    for line, raw in by_line.items():
        assert lines[line - 1] == raw
    bars = pl.read_parquet(settings.storage_root() / "m1_bars" / "symbol=EURUSD" / "data.parquet")
    assert bars.get_column("time").min().hour == 14  # 09:00 EST is 14:00 UTC
    assert bars.get_column("volume").is_null().all()  # HistData's all-zero volume means "none"


def test_unparseable_file_fails_the_step_naming_the_file(instance):
    folder = settings.data_dir() / "GBPUSD"
    folder.mkdir(parents=True)
    bad = folder / "export.csv"
    bad.write_bytes(b"\x00\x01\x02 definitely not bars \xff" * 20)
    result = _run(instance, "GBPUSD")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.to_string()
    assert str(bad) in message and "binary content" in message


def test_unknown_symbol_without_files_or_sample_is_explained(instance):
    result = _run(instance, "EURNOK")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "No bar files for EURNOK" in message and "sample generator only covers" in message


def test_run_start_registers_configured_symbols_only(instance, monkeypatch):
    monkeypatch.setenv(settings.ENV_SYMBOLS, "EURUSD,usd/jpy")
    ensure_symbol_partition(instance, "USDJPY")
    assert instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET) == ["USDJPY"]
    with pytest.raises(UnknownSymbolPartitionError, match="symbols add EURGBP"):
        ensure_symbol_partition(instance, "EURGBP")
    register_symbols(instance, ["EURGBP"])
    ensure_symbol_partition(instance, "EURGBP")  # added by a user: accepted


def test_invalid_symbol_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv(settings.ENV_SYMBOLS, "EURUSD,EURXYZ")
    with pytest.raises(ValueError, match=r"FOREX_ASSETS_SYMBOLS=.*'EURXYZ'"):
        settings.configured_symbols()


def test_symbol_registry_sensor_adds_configured_and_file_symbols(instance):
    folder = settings.data_dir()
    folder.mkdir(parents=True)
    (folder / "DAT_ASCII_NZDUSD_M1_2023.csv").write_text("20230102 170000;0.6;0.6;0.6;0.6;0\n")
    defs = build_definitions()
    sensor = defs.resolve_sensor_def("symbol_registry")
    with dg.build_sensor_context(instance=instance) as context:
        result = sensor(context)
    added = {k for request in result.dynamic_partitions_requests for k in request.partition_keys}
    assert added == {*settings.configured_symbols(), "NZDUSD"}


def _started_steps(home: Path, earlier: set[str]) -> tuple[str | None, set[str]]:
    """The id of the run not in `earlier` (None before it exists), and its started steps."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = [r for r in instance.get_runs() if r.run_id not in earlier]
        if not runs:
            return None, set()
        records = instance.get_records_for_run(
            runs[0].run_id, of_type=dg.DagsterEventType.STEP_START
        ).records
        return runs[0].run_id, {r.event_log_entry.dagster_event.step_key for r in records}


def _kill_when_started(command, env, cwd, home: Path, step: str, whole: bool) -> str:
    """Start `command`, SIGKILL it (its process group, or the worker running `step`) once
    `step` has started, and return the killed run's id."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        earlier = {r.run_id for r in instance.get_runs()}
    log = cwd / f"killed_at_{step}.log"  # a file: an unread pipe would fill and stall the run
    with log.open("w") as output:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 300
    run_id, started = None, set()
    while step not in started:
        assert process.poll() is None, f"{command[2]} ended before {step}: {log.read_text()}"
        assert time.monotonic() < deadline, f"{command[2]} never reached {step}: it waits"
        time.sleep(0.2)
        run_id, started = _started_steps(home, earlier)
    if whole:
        os.killpg(process.pid, signal.SIGKILL)
    else:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            [worker] = [
                r.event_log_entry.dagster_event.event_specific_data.metadata["worker pid"].value
                for r in instance.get_records_for_run(
                    run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTING
                ).records
                if r.event_log_entry.dagster_event.step_key == step
            ]
        os.kill(worker, signal.SIGKILL)
    process.wait(timeout=300)
    return run_id


def test_kills_at_every_phase_then_train_and_dagster_job_execute_share_one_home(
    tmp_path, monkeypatch, capsys
):
    """The README's two ways to run the pipeline on one fresh home, each killed (kill -9 of
    its process group, or of one worker) at another phase of the run before it: every next
    run gets to its phase without waiting on the dead holders, then a `train` and a
    `dagster job execute` succeed one after the other, reusing what the others left
    (checkpoints, partitions, catalog); paper trading killed mid-session succeeds on the
    next run; and nothing stays held or half written."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), settings.ENV_SAMPLE_YEARS: "0.05"}
    env.pop(settings.ENV_HOME, None)
    train = [sys.executable, "-m", "forex_assets", "train", "--symbol", "AUDUSD"]
    execute = [
        sys.executable, "-m", "dagster", "job", "execute", "-m", "forex_assets", "-j", SYMBOL_PIPELINE,
        "--tags", '{"dagster/partition": "AUDUSD"}',
    ]  # fmt: skip
    kills = [  # (command, the step at whose start it dies, whole process group?)
        (train, "bars__h4", True),
        (execute, "features__m5", True),
        (execute, "evolved_strategies", True),  # with its spawned island workers
        (train, "trained_models", False),  # its worker only: the step fails, the run ends
    ]
    killed = [_kill_when_started(c, env, tmp_path, home, step, whole) for c, step, whole in kills]

    def succeed(command: list[str]) -> None:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    succeed(train)
    succeed(execute)
    gate_off = tmp_path / "gate_off.yaml"  # the sample has no edge: open the gate, as the README
    gate_off.write_text(
        f"ops:\n  trained_models_{MODEL_GATE}:\n    config: {{min_deflated_sharpe: 0, max_pbo: 1}}\n"
    )
    paper = [*execute[:8], PAPER_TRADING_JOB, *execute[9:], "-c", str(gate_off)]
    killed.append(_kill_when_started(paper, env, tmp_path, home, "paper_trading", True))
    succeed(paper)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        statuses = {r.run_id: r.status for r in instance.get_runs()}
        killed_statuses = {run_id: statuses.pop(run_id) for run_id in killed}
        assert set(killed_statuses.values()) == {dg.DagsterRunStatus.FAILURE}, killed_statuses
        assert list(statuses.values()) == [dg.DagsterRunStatus.SUCCESS] * 3
        storage = instance.event_log_storage
        for key in storage.get_concurrency_keys():
            assert storage.get_concurrency_info(key).active_slot_count == 0, key
    assert CoreLedger(default_ledger_path(), 2).held() == 0
    store = home / ".forex_assets" / "store"
    assert not list(store.rglob("*.tmp"))  # no partial Parquet
    for path in store.rglob("*.parquet"):
        pq.read_metadata(path)
    for tf in Timeframe:
        assert (store / "bars" / tf.value.lower() / "symbol=AUDUSD" / "data.parquet").exists()
    assert (store / "paper_trading" / "symbol=AUDUSD" / "data.parquet").exists()
    for name, value in env.items():  # the orphan sweep in process, on the same home
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(settings.ENV_HOME, raising=False)
    assert cli_main(["models", "orphans", "--delete"]) == 0
    capsys.readouterr()
    assert cli_main(["models", "orphans"]) == 0
    listed = capsys.readouterr().out
    assert "no orphaned model folders" in listed, listed
