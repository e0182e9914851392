"""The model ledger in a real DuckDB catalog: recording, replacing, accumulating, concurrency."""

from __future__ import annotations

import json
import math
import multiprocessing
from pathlib import Path

import polars as pl

from forex_assets.storage.catalog import DuckDBCatalog
from forex_assets.storage.model_ledger import (
    TABLE,
    ModelRecord,
    latest_run,
    record_models,
    registered_models,
)

FEATURES = ("rsi_14", "atr_14", "ema_gap")


def records(symbol: str, run_id: str, splits: list[str], score: float = 0.5) -> list[ModelRecord]:
    return [
        ModelRecord(
            symbol=symbol,
            run_id=run_id,
            model=model,
            split=split,
            file=f"/models/{symbol}/{run_id}/{split}/{model}",
            format="lightgbm-text" if model == "lightgbm" else "torch-state-dict",
            features=FEATURES,
            data_fingerprint="0123456789abcdef",
            code_version="abc123",
            metrics={"validation_loss": score, "best_iteration": 12.0},
        )
        for split in splits
        for model in ("lightgbm", "mlp")
    ]


def test_recorded_models_come_back_with_json_features_and_metrics(tmp_path):
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    record_models(catalog, records("EURUSD", "run-1", ["split_00", "final"], score=0.75))
    frame = registered_models(catalog, "EURUSD")
    assert frame.height == 4
    assert set(frame.columns) >= {
        "symbol",
        "run_id",
        "model",
        "split",
        "file",
        "format",
        "features",
        "data_fingerprint",
        "code_version",
        "metrics",
        "created_at",
    }
    assert frame.select("model", "split").sort("model", "split").rows() == [
        ("lightgbm", "final"),
        ("lightgbm", "split_00"),
        ("mlp", "final"),
        ("mlp", "split_00"),
    ]
    row = frame.filter((pl.col("model") == "mlp") & (pl.col("split") == "final")).row(0, named=True)
    assert row["file"] == "/models/EURUSD/run-1/final/mlp"
    assert row["format"] == "torch-state-dict"
    assert json.loads(row["features"]) == list(FEATURES)
    assert json.loads(row["metrics"]) == {"validation_loss": 0.75, "best_iteration": 12.0}
    assert row["created_at"].tzinfo is not None


def test_nan_metrics_survive_the_round_trip(tmp_path):
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    record_models(catalog, records("EURUSD", "run-1", ["path"], score=math.nan))
    metrics = [json.loads(m) for m in registered_models(catalog, "EURUSD").get_column("metrics")]
    assert all(math.isnan(m["validation_loss"]) for m in metrics)


def test_only_the_asked_symbols_models_are_returned(tmp_path):
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    record_models(catalog, records("EURUSD", "run-1", ["final"]))
    record_models(catalog, records("USDJPY", "run-1", ["final", "split_00"]))
    assert registered_models(catalog, "EURUSD").height == 2
    assert registered_models(catalog, "USDJPY").height == 4
    assert registered_models(catalog, "GBPUSD").height == 0


def test_recording_a_run_again_replaces_its_rows(tmp_path):
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    record_models(catalog, records("EURUSD", "run-1", ["split_00", "split_01", "final"], 0.9))
    record_models(catalog, records("EURUSD", "run-1", ["final"], score=0.4))
    frame = registered_models(catalog, "EURUSD")
    assert frame.height == 2
    assert frame.get_column("split").to_list() == ["final", "final"]
    assert [json.loads(m)["validation_loss"] for m in frame.get_column("metrics")] == [0.4, 0.4]


def test_a_rerun_of_one_symbol_keeps_the_same_run_id_of_another(tmp_path):
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    record_models(catalog, records("EURUSD", "run-1", ["final"]))
    record_models(catalog, records("USDJPY", "run-1", ["final"]))
    record_models(catalog, records("EURUSD", "run-1", ["final", "split_00"]))
    assert registered_models(catalog, "USDJPY").height == 2
    assert registered_models(catalog, "EURUSD").height == 4


def test_different_runs_accumulate_in_time_order(tmp_path):
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    for run in ("run-1", "run-2", "run-3"):
        record_models(catalog, records("EURUSD", run, ["final"]))
    frame = registered_models(catalog, "EURUSD")
    assert frame.height == 6
    assert frame.get_column("run_id").to_list() == [
        "run-1",
        "run-1",
        "run-2",
        "run-2",
        "run-3",
        "run-3",
    ]
    assert frame.get_column("created_at").is_sorted()


def test_the_latest_run_is_the_symbols_last_registered_one(tmp_path):
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    assert latest_run(catalog, "EURUSD") is None
    for run in ("run-1", "run-2"):
        record_models(catalog, records("EURUSD", run, ["split_00", "final"]))
    record_models(catalog, records("USDJPY", "run-3", ["final"]))
    assert latest_run(catalog, "EURUSD") == "run-2"
    assert latest_run(catalog, "USDJPY") == "run-3"
    # Recording a run again replaces its rows, with the new time: it is the latest then.
    record_models(catalog, records("EURUSD", "run-1", ["final"]))
    assert latest_run(catalog, "EURUSD") == "run-1"
    assert latest_run(catalog, "GBPUSD") is None


def test_recording_nothing_creates_nothing(tmp_path):
    database = tmp_path / "catalog.duckdb"
    record_models(DuckDBCatalog(database), [])
    assert not database.exists()


def test_the_ledger_is_queryable_as_a_catalog_table(tmp_path):
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    record_models(catalog, records("EURUSD", "run-1", ["final"]))
    counts = catalog.query(f"SELECT model, count(*) AS n FROM {TABLE} GROUP BY 1 ORDER BY 1")
    assert counts.rows() == [("lightgbm", 1), ("mlp", 1)]


WRITERS = 4


def _record_run(database: str, run_id: str, errors) -> None:
    try:
        catalog = DuckDBCatalog(Path(database), lock_timeout_s=60)
        for attempt in range(3):  # re-executions replace the run's own rows
            record_models(catalog, records("EURUSD", run_id, ["split_00", "final"], attempt))
    except BaseException as exc:  # report to the parent instead of dying silently
        errors.put(f"{run_id}: {type(exc).__name__}: {exc}")


def test_concurrent_writers_from_several_processes_all_succeed(tmp_path):
    database = tmp_path / "catalog.duckdb"
    context = multiprocessing.get_context("spawn")
    errors = context.Queue()
    runs = [f"run-{i}" for i in range(WRITERS)]
    processes = [
        context.Process(target=_record_run, args=(str(database), run, errors)) for run in runs
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    reported = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert reported == []
    assert [p.exitcode for p in processes] == [0] * WRITERS
    frame = registered_models(DuckDBCatalog(database), "EURUSD")
    counts = frame.group_by("run_id").len().sort("run_id")
    assert counts.get_column("run_id").to_list() == runs
    assert counts.get_column("len").to_list() == [4] * WRITERS
    # Every run's rows are those of its last recording.
    assert {json.loads(m)["validation_loss"] for m in frame.get_column("metrics")} == {2}
