"""Where the project keeps its files and which symbols it knows, from the environment.

Everything has a default so that a fresh clone runs with no configuration:

- ``FOREX_ASSETS_HOME``: the project's data home (Parquet store, DuckDB catalog, data
  inbox). Default: ``$DAGSTER_HOME/.forex_assets`` when DAGSTER_HOME is set, so each
  Dagster instance has its own data, else ``./.forex_assets``.
- ``FOREX_ASSETS_DATA_DIR``: where real bar files are looked for. Default ``<home>/data``.
- ``FOREX_ASSETS_INBOX``: where new bar files are dropped for the `data_inbox` sensor,
  which validates them and moves them into the data directory. Default ``<home>/inbox``.
- ``FOREX_ASSETS_SYMBOLS``: comma-separated static symbols. Default: the embedded sample
  symbols. Symbols can also be added at run time as dynamic partitions.
- ``FOREX_ASSETS_SAMPLE_YEARS``: years of generated M1 bars for sample symbols without
  files. Default 2; a quick demo or a test can ask for less.
- ``FOREX_ASSETS_FEATURE_CONFIG``: a TOML feature configuration (indicator set, base
  timeframe, label settings; see `forex_assets.features.feature_config`). Default: the
  built-in set on an M5 base.
"""

from __future__ import annotations

import os
from pathlib import Path

from forex_assets.features.feature_config import FeatureSettings, load_feature_settings
from forex_assets.ingest.sample import DEFAULT_YEARS, sample_symbols
from forex_assets.market.instruments import UnknownSymbolError, instrument_for

ENV_HOME = "FOREX_ASSETS_HOME"
ENV_DATA_DIR = "FOREX_ASSETS_DATA_DIR"
ENV_RISK_LEDGER = "FOREX_ASSETS_RISK_LEDGER"
ENV_INBOX = "FOREX_ASSETS_INBOX"
ENV_SYMBOLS = "FOREX_ASSETS_SYMBOLS"
ENV_SAMPLE_YEARS = "FOREX_ASSETS_SAMPLE_YEARS"
ENV_FEATURE_CONFIG = "FOREX_ASSETS_FEATURE_CONFIG"


def project_home() -> Path:
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser().resolve()
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"]).expanduser().resolve() / ".forex_assets"
    return Path.cwd().resolve() / ".forex_assets"


def storage_root() -> Path:
    return project_home() / "store"


def catalog_path() -> Path:
    return project_home() / "catalog.duckdb"


def models_root() -> Path:
    """Trained model files, one folder per symbol and run."""
    return project_home() / "models"


def trading_dir() -> Path:
    """The shared risk ledger and the paper broker's order book (SQLite files)."""
    return project_home() / "trading"


def risk_ledger() -> str:
    """`FOREX_ASSETS_RISK_LEDGER`: the risk ledger's SQLite path or PostgreSQL URL (empty:
    `<trading dir>/risk_ledger.sqlite`)."""
    return os.environ.get(ENV_RISK_LEDGER, "").strip()


def data_dir() -> Path:
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser().resolve()
    return project_home() / "data"


def inbox_dir() -> Path:
    """Where new bar files are dropped; the `data_inbox` sensor moves them to `data_dir()`."""
    if os.environ.get(ENV_INBOX):
        return Path(os.environ[ENV_INBOX]).expanduser().resolve()
    return project_home() / "inbox"


def configured_symbols() -> list[str]:
    """The static symbol list; an invalid entry is reported with the variable's name."""
    raw = os.environ.get(ENV_SYMBOLS, "").strip()
    if not raw:
        return sample_symbols()
    symbols = []
    for entry in (e for e in raw.split(",") if e.strip()):
        try:
            symbols.append(instrument_for(entry).symbol)
        except UnknownSymbolError as exc:
            raise ValueError(
                f"{ENV_SYMBOLS}={raw!r}: entry {entry.strip()!r} is invalid: {exc}"
            ) from None
    return list(dict.fromkeys(symbols))


def sample_years() -> float:
    raw = os.environ.get(ENV_SAMPLE_YEARS, "").strip()
    if not raw:
        return DEFAULT_YEARS
    try:
        years = float(raw)
    except ValueError:
        years = float("nan")
    if not 0 < years <= 50:
        raise ValueError(
            f"{ENV_SAMPLE_YEARS}={raw!r} is not a number of years in (0, 50]; "
            "use e.g. 0.25 for three months of sample bars or unset it for two years."
        )
    return years


def feature_settings() -> FeatureSettings:
    """The feature configuration file's settings, or the built-in defaults without one."""
    raw = os.environ.get(ENV_FEATURE_CONFIG, "").strip()
    if not raw:
        return FeatureSettings()
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(
            f"{ENV_FEATURE_CONFIG}={raw!r} does not name a file; point it at a TOML feature "
            "configuration or unset it for the built-in indicator set."
        )
    return load_feature_settings(path)
