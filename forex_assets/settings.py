"""Where the project keeps its files and which symbols it knows, from the environment.

Everything has a default so that a fresh clone runs with no configuration:

- ``FOREX_ASSETS_HOME``: the project's data home (Parquet store, DuckDB catalog, data
  inbox). Default: ``$DAGSTER_HOME/.forex_assets`` when DAGSTER_HOME is set, so each
  Dagster instance has its own data, else ``./.forex_assets``.
  Its path may not contain ``[``, ``*`` or ``?`` (the store is read through glob patterns).
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
- ``FOREX_ASSETS_RISK_LEDGER``: the shared risk ledger, a SQLite file (a relative path is
  relative to the project home) or a ``postgresql://`` URL. Default
  ``<home>/trading/risk_ledger.sqlite``.

Each value is checked here, where it is read: a bad one raises `SettingsError` with a
one-line message naming the variable, its value, why it cannot work and what to set
instead, which the CLI prints as it is and the code location shows as its load error.
"""

from __future__ import annotations

import os
from pathlib import Path

from forex_assets.features.feature_config import (
    FeatureConfigError,
    FeatureSettings,
    load_feature_settings,
)
from forex_assets.ingest.sample import DEFAULT_YEARS, sample_symbols
from forex_assets.market.instruments import UnknownSymbolError, instrument_for
from forex_assets.storage.shared_database import UnsupportedDatabaseError, is_postgres

ENV_HOME = "FOREX_ASSETS_HOME"
ENV_DATA_DIR = "FOREX_ASSETS_DATA_DIR"
ENV_RISK_LEDGER = "FOREX_ASSETS_RISK_LEDGER"
ENV_INBOX = "FOREX_ASSETS_INBOX"
ENV_SYMBOLS = "FOREX_ASSETS_SYMBOLS"
ENV_SAMPLE_YEARS = "FOREX_ASSETS_SAMPLE_YEARS"
ENV_FEATURE_CONFIG = "FOREX_ASSETS_FEATURE_CONFIG"
# Characters DuckDB's read_parquet and polars treat as a pattern, not as themselves.
GLOB_CHARACTERS = ("[", "*", "?")


class SettingsError(ValueError):
    """A setting that cannot be used; the message is one line (variable, value, why, fix),
    so a command line can print it as it is instead of a traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))


def project_home() -> Path:
    """The data home: FOREX_ASSETS_HOME, else `$DAGSTER_HOME/.forex_assets`, else
    `./.forex_assets`; every other default path, and a relative risk ledger, lies in it.

    A home whose path holds a glob character is refused: the store's DuckDB views and
    Parquet reads take the path as a glob pattern, where `[1]` matches no folder (every
    read fails) and `*` or `?` also match sibling folders (another home's data is read).
    """
    if os.environ.get(ENV_HOME):
        raw = os.environ[ENV_HOME]
        home = Path(raw).expanduser().resolve()
        source = f"{ENV_HOME}={raw!r} is the project home {home}"
    elif os.environ.get("DAGSTER_HOME"):
        raw = os.environ["DAGSTER_HOME"]
        home = Path(raw).expanduser().resolve() / ".forex_assets"
        source = f"DAGSTER_HOME={raw!r} puts the project home at {home}"
    else:
        home = Path.cwd().resolve() / ".forex_assets"
        source = f"the working directory puts the project home at {home}"
    found = sorted({c for c in str(home) if c in GLOB_CHARACTERS})
    if found:
        raise SettingsError(
            f"{source}, whose path contains the glob character(s) {' '.join(found)}; the "
            "store is read through glob patterns, which would match no file or another "
            f"folder's. Set {ENV_HOME} to a path without {', '.join(GLOB_CHARACTERS)}."
        )
    return home


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
    """`FOREX_ASSETS_RISK_LEDGER`: the risk ledger's PostgreSQL URL, or its SQLite file as
    an absolute path (a relative one resolved against the project home, so every process
    of a deployment finds the same file whatever its working directory); empty:
    `<trading dir>/risk_ledger.sqlite`."""
    raw = os.environ.get(ENV_RISK_LEDGER, "").strip()
    if not raw:
        return ""
    try:
        if is_postgres(raw):
            return raw
    except UnsupportedDatabaseError as error:
        raise SettingsError(f"{ENV_RISK_LEDGER}={error}") from None
    return str(project_home() / Path(raw).expanduser())


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
            raise SettingsError(
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
        raise SettingsError(
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
        raise SettingsError(
            f"{ENV_FEATURE_CONFIG}={raw!r} does not name a file; point it at a TOML feature "
            "configuration or unset it for the built-in indicator set."
        )
    try:
        return load_feature_settings(path)
    except FeatureConfigError as error:
        raise SettingsError(f"{ENV_FEATURE_CONFIG}={raw!r}: {error}") from None
