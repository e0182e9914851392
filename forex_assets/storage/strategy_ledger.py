"""The strategy ledger: every evolved strategy with its genes, scores and validation.

A sibling of the model ledger in the catalog's registry file, written under the same lock:
`select * from strategy_registry where symbol = 'EURUSD' order by fitness desc`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from forex_assets.storage.catalog import DuckDBCatalog

TABLE = "strategy_registry"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    symbol VARCHAR, run_id VARCHAR, rank INTEGER, genes VARCHAR, fitness DOUBLE,
    training_metrics VARCHAR, training_verdict VARCHAR, months_passed INTEGER,
    months_validated INTEGER, code_version VARCHAR, created_at TIMESTAMPTZ
)
"""


@dataclass(frozen=True)
class StrategyRecord:
    symbol: str
    run_id: str
    rank: int
    genes: dict[str, float]
    fitness: float
    training_metrics: dict[str, float]
    training_verdict: str
    months_passed: int
    months_validated: int
    code_version: str


def record_strategies(catalog: DuckDBCatalog, records: list[StrategyRecord]) -> None:
    """Append a run's strategies; a re-executed run replaces its own earlier rows."""
    if not records:
        return
    created = datetime.now(UTC)
    rows = [
        (
            r.symbol,
            r.run_id,
            r.rank,
            json.dumps(r.genes),
            r.fitness,
            json.dumps(r.training_metrics, allow_nan=True),
            r.training_verdict,
            r.months_passed,
            r.months_validated,
            r.code_version,
            created,
        )
        for r in records
    ]
    runs = sorted({(r.symbol, r.run_id) for r in records})
    catalog.replace_run_rows(TABLE, _SCHEMA, rows, runs)
