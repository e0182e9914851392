"""`python -m forex_assets ...` from a fresh environment, as a user runs it."""

import os
import shutil
import subprocess
import sys
import uuid

import dagster as dg
import polars as pl
from dagster._core.storage.dagster_run import DagsterRun

from forex_assets import settings
from forex_assets.cli import main
from forex_assets.compute.core_ledger import CoreLedger, default_ledger_path
from forex_assets.compute.machine import detect_machine
from forex_assets.models.dataset import PROBABILITY_COLUMNS
from forex_assets.models.final_model import load_final_model
from forex_assets.storage.catalog import DuckDBCatalog
from forex_assets.storage.model_ledger import ModelRecord, record_models
from forex_assets.storage.parquet_store import partition_file, write_frame


def _cli(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forex_assets", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_two_train_runs_at_once_share_the_cores_and_run_the_chain_with_progress(
    tmp_path, monkeypatch, capsys
):
    """Two `train` commands on one machine (one home): both run the whole chain, and the
    core ledger they share shows every step of both, never more than the cores at once."""
    env = {
        **os.environ,
        "FOREX_ASSETS_HOME": str(tmp_path / "home"),
        "FOREX_ASSETS_SAMPLE_YEARS": "0.05",
    }
    env.pop("DAGSTER_HOME", None)
    logs = {symbol: tmp_path / f"{symbol}.log" for symbol in ("eurusd", "gbpusd")}
    processes = {}
    for symbol, log in logs.items():
        with log.open("w") as out:
            processes[symbol] = subprocess.Popen(
                [sys.executable, "-m", "forex_assets", "train", "--symbol", symbol],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    for symbol, process in processes.items():
        assert process.wait(timeout=900) == 0, logs[symbol].read_text()
    outputs = {symbol: log.read_text() for symbol, log in logs.items()}
    for symbol, output in outputs.items():
        progress = [line for line in output.splitlines() if line.startswith("[")]
        assert len(progress) == 29  # 28 asset steps + the no-look-ahead check
        assert progress[-1].startswith("[ 29/29]") and all(" ok " in line for line in progress)
        assert f"symbol_pipeline for {symbol.upper()} succeeded" in output
    run_ids = [
        line.split(" run ")[1].split()[0]
        for output in outputs.values()
        for line in output.splitlines()
        if line.startswith("symbol_pipeline for") and " run " in line
    ]
    assert len(run_ids) == 2
    machine = detect_machine().cores
    ledger = CoreLedger(default_ledger_path(), machine)
    spans = [span for run_id in run_ids for span in ledger.history(f"{run_id}:")]
    for run_id in run_ids:  # every step of each run charged the ledger
        assert len({s.step_holder for s in spans if s.holder.startswith(run_id)}) >= 28
    changes = sorted([(s.start, s.cores) for s in spans] + [(s.end, -s.cores) for s in spans])
    held = peak = 0
    for _, delta in changes:
        held += delta
        peak = max(peak, held)
    assert peak <= machine
    store = tmp_path / "home" / "store"
    assert (store / "bars" / "w1" / "symbol=EURUSD" / "data.parquet").exists()
    assert (store / "feature_matrix" / "symbol=GBPUSD" / "data.parquet").exists()
    assert (tmp_path / "home" / "dagster_home").is_dir()  # runs recorded without DAGSTER_HOME

    # What the runs left, read back in process (the same commands, without a start-up each).
    monkeypatch.setenv("FOREX_ASSETS_HOME", env["FOREX_ASSETS_HOME"])
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    capsys.readouterr()
    assert main(["symbols", "list"]) == 0
    assert capsys.readouterr().out.split() == ["EURUSD", "GBPUSD"]
    assert main(["query", "select 1000 + count(*) as marker from bars_mn1"]) == 0
    # 0.05 years from 2023-01-01: one month bar (January) for each of the two symbols
    assert "1002" in capsys.readouterr().out
    # The run's final model, loaded back, scores the stored feature matrix.
    assert main(["predict", "--symbol", "eurusd", "--last", "2"]) == 0
    predicted = capsys.readouterr().out
    assert "EURUSD run " in predicted and ": lightgbm + mlp blended over " in predicted


def test_bad_symbol_is_refused_with_a_reason(tmp_path):
    env = {**os.environ, "FOREX_ASSETS_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    result = _cli("train", "--symbol", "EURXYZ", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "--symbol" in result.stderr and "EURXYZ" in result.stderr


def _one_error_line(returncode: int, stderr: str) -> str:
    assert returncode == 2, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def test_query_errors_are_one_line(tmp_path, capsys):
    env = {**os.environ, "FOREX_ASSETS_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    result = _cli("query", "select * from no_such_table", env=env, cwd=tmp_path)
    missing = _one_error_line(result.returncode, result.stderr)
    assert "no_such_table does not exist" in missing and "catalog.duckdb" in missing
    assert "materialize the asset" in missing
    syntax = _one_error_line(main(["query", "selec 1"]), capsys.readouterr().err)
    assert syntax.startswith("error: query failed on catalog") and "syntax error" in syntax


def test_damaged_catalog_is_rebuilt_by_one_command_and_views_on_demand(capsys):
    home = settings.project_home()
    for symbol in ("EURUSD", "USDJPY"):
        write_frame(
            pl.DataFrame({"x": [1]}), partition_file(home / "store", ["bars", "d1"], symbol)
        )
    settings.catalog_path().write_bytes(b"garbage" * 1000)
    assert main(["catalog", "rebuild"]) == 0
    rebuilt = capsys.readouterr()
    assert rebuilt.out.splitlines()[1:] == ["bars_d1"]
    assert "set aside as" in rebuilt.err and list(home.glob("catalog.duckdb.damaged-*"))
    settings.catalog_path().unlink()
    assert main(["query", "select 40 + count(*) as n from bars_d1"]) == 0
    queried = capsys.readouterr()
    assert "42" in queried.out and "view bars_d1 was missing" in queried.err
    damaged = partition_file(home / "store", ["bars", "d1"], "USDJPY")
    damaged.write_bytes(b"garbage")
    assert main(["catalog", "rebuild"]) == 1  # reported, not passed over
    (error,) = capsys.readouterr().err.splitlines()
    assert error.startswith(f"error: no view: asset bars/d1 partition USDJPY: {damaged}")


def test_orphaned_model_folders_are_listed_and_deleted_never_a_running_one(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    runs = {status: str(uuid.uuid4()) for status in ("FAILURE", "STARTED", "SUCCESS")}
    with dg.DagsterInstance.get() as instance:
        for status, run_id in runs.items():
            run = DagsterRun("symbol_pipeline", run_id, status=dg.DagsterRunStatus(status))
            instance.add_run(run)
    models = settings.models_root() / "EURUSD"
    for run_id in [*runs.values(), str(uuid.uuid4())]:  # the last one: unknown to the instance
        (models / run_id / "split_00").mkdir(parents=True)
    assert main(["models", "orphans"]) == 0
    listed = capsys.readouterr().out
    assert f"orphan: {models / runs['FAILURE']} (run {runs['FAILURE']} FAILURE" in listed
    assert "models orphans --delete" in listed and listed.count("kept: ") == 1
    assert main(["models", "orphans", "--delete"]) == 0
    assert f"deleted: {models / runs['FAILURE']}" in capsys.readouterr().out
    remaining = sorted(p.name for p in models.iterdir())
    assert len(remaining) == 3 and runs["FAILURE"] not in remaining
    assert runs["STARTED"] in remaining and runs["SUCCESS"] in remaining


def _stored_run(trained_run) -> None:
    """The trained run in this test's project home: its folder in the model store, its
    feature matrix in the store and a ledger row registering it."""
    run = settings.models_root() / trained_run.symbol / trained_run.run_id
    shutil.copytree(trained_run.root / trained_run.symbol / trained_run.run_id, run)
    matrix_file = partition_file(settings.storage_root(), ["feature_matrix"], "EURUSD")
    write_frame(trained_run.matrix, matrix_file)
    blender = ModelRecord(
        "EURUSD", trained_run.run_id, "blend", "final", str(run / "blender.json"),
        "json-weights", ("lightgbm", "mlp"), "0123456789abcdef", "test", {},
    )  # fmt: skip
    record_models(DuckDBCatalog(settings.catalog_path()), [blender])


def test_predict_scores_the_feature_matrix_with_the_latest_final_model(
    trained_run, tmp_path, capsys
):
    _stored_run(trained_run)
    out = tmp_path / "scores" / "eurusd.parquet"
    assert main(["predict", "--symbol", "eurusd", "--last", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    header, *table = printed.splitlines()
    assert header == (
        f"EURUSD run {trained_run.run_id}: lightgbm + mlp blended over 10 features; 3000 "
        "rows scored, 3000 of them in sample (the final refit trained on them)"
    )
    last_times = trained_run.matrix.get_column("time").tail(3).dt.strftime("%Y-%m-%d %H:%M")
    assert all(any(time in line for line in table) for time in last_times)
    assert printed.rstrip().endswith(f"wrote 3000 rows to {out}")
    written = pl.read_parquet(out)
    model = load_final_model(settings.models_root(), "EURUSD", trained_run.run_id)
    assert written.equals(model.score(trained_run.matrix))
    assert set(PROBABILITY_COLUMNS) <= set(written.columns)
    assert not list(out.parent.glob(".*.tmp"))  # written atomically


def test_predict_without_a_trained_model_or_with_an_unknown_run_says_what_to_do(capsys):
    assert main(["predict", "--symbol", "EURUSD"]) == 2
    error = capsys.readouterr().err
    assert "no trained model of EURUSD is registered" in error
    assert "`python -m forex_assets train --symbol EURUSD`" in error
    run_id = str(uuid.uuid4())
    line = _one_error_line(
        main(["predict", "--symbol", "EURUSD", "--run-id", run_id]), capsys.readouterr().err
    )
    assert f"{settings.models_root() / 'EURUSD' / run_id} does not exist" in line
    line = _one_error_line(
        main(["predict", "--symbol", "EURUSD", "--run-id", "latest"]), capsys.readouterr().err
    )
    assert "run id 'latest' is not a Dagster run id" in line


@dg.asset
def _simulated_step() -> int:
    return 1


def test_simulate_records_a_run_replays_it_and_prints_both_policies(tmp_path, monkeypatch, capsys):
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        run_id = dg.materialize([_simulated_step], instance=instance).run_id
    saved = tmp_path / "run.json"
    grid = ["--cores", "2,4", "--symbols", "1,3"]
    assert (
        main(["simulate", "--run", run_id, "--measured-cores", "2", "--record", str(saved), *grid])
        == 0
    )
    recorded = capsys.readouterr().out
    assert f"recorded from run {run_id}" in recorded
    rows = [line for line in recorded.splitlines() if line.startswith("|")][2:]
    assert [tuple(cell.strip() for cell in row.split("|")[1:3]) for row in rows] == [
        ("2", "1"), ("4", "1"), ("2", "3"), ("4", "3"),
    ]  # fmt: skip
    assert main(["simulate", "--from", str(saved), *grid]) == 0
    replayed = capsys.readouterr().out
    assert replayed.splitlines()[1:] == recorded.splitlines()[2:]  # same replay, no recording
    assert main(["simulate", "--from", str(saved), "--cores", "16,0"]) == 2
    assert "--cores '16,0': give whole numbers of at least 1" in capsys.readouterr().err
