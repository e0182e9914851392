"""The model ledger: every trained model file with what it learned from and how it scored.

Lives in the catalog's registry file (`registry.duckdb` beside the views, under the
catalog's lock, like every other write), where rebuilding or losing the views cannot take
it, so `python -m forex_assets query "select * from model_registry"` answers which code,
data and features produced a file, and how it did out of fold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from forex_assets.storage.catalog import DuckDBCatalog

TABLE = "model_registry"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    symbol VARCHAR, run_id VARCHAR, model VARCHAR, split VARCHAR, file VARCHAR,
    format VARCHAR, features VARCHAR, data_fingerprint VARCHAR, code_version VARCHAR,
    metrics VARCHAR, created_at TIMESTAMPTZ
)
"""


@dataclass(frozen=True)
class ModelRecord:
    symbol: str
    run_id: str
    model: str
    split: str  # "split_03", "final", or "path" for a blender evaluated per path
    file: str
    format: str  # "lightgbm-text", "torch-state-dict", ...
    features: tuple[str, ...]
    data_fingerprint: str
    code_version: str
    metrics: dict[str, float]


def record_models(catalog: DuckDBCatalog, records: list[ModelRecord]) -> None:
    """Append records; a run that is re-executed replaces its own earlier rows."""
    if not records:
        return
    created = datetime.now(UTC)
    rows = [
        (
            r.symbol,
            r.run_id,
            r.model,
            r.split,
            r.file,
            r.format,
            json.dumps(list(r.features)),
            r.data_fingerprint,
            r.code_version,
            json.dumps(r.metrics, allow_nan=True),
            created,
        )
        for r in records
    ]
    runs = sorted({(r.symbol, r.run_id) for r in records})
    catalog.replace_run_rows(TABLE, _SCHEMA, rows, runs)


def registered_models(catalog: DuckDBCatalog, symbol: str) -> pl.DataFrame:
    with catalog.connect() as connection:
        connection.execute(_SCHEMA)
        table = connection.sql(
            f"SELECT * FROM {TABLE} WHERE symbol = ? ORDER BY created_at, model, split",
            params=[symbol],
        ).to_arrow_table()
    return pl.from_arrow(table)


def registered_runs(catalog: DuckDBCatalog) -> set[tuple[str, str]]:
    """Every (symbol, run id) with a registered model: the run folders that are not orphans."""
    with catalog.connect() as connection:
        connection.execute(_SCHEMA)
        rows = connection.execute(f"SELECT DISTINCT symbol, run_id FROM {TABLE}").fetchall()
    return {(symbol, run_id) for symbol, run_id in rows}


def latest_run(catalog: DuckDBCatalog, symbol: str) -> str | None:
    """The run id of the symbol's most recently registered models, None if it has none.

    A run's models are registered once its training has finished, all in one write, so
    this is the latest run whose training succeeded.
    """
    with catalog.connect() as connection:
        connection.execute(_SCHEMA)
        row = connection.execute(
            f"SELECT run_id FROM {TABLE} WHERE symbol = ? GROUP BY run_id "
            "ORDER BY max(created_at) DESC LIMIT 1",
            [symbol],
        ).fetchone()
    return row[0] if row else None
