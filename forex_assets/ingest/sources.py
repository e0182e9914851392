"""Where a symbol's bar files are, and how they are turned into validated M1 bars.

A data directory holds files per symbol either in a folder named after the symbol
(``data/EURUSD/*.csv``) or anywhere with the symbol in the file name, as the vendors
name them (``DAT_ASCII_EURUSD_M1_2023.csv``, ``EURUSD_Candlestick_1_M_BID_...csv``,
``EURUSD1.csv``). Each file's format and source timezone are detected, or declared by
an override matched against its path relative to the data directory.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from forex_assets.ingest.bar_files import AUTO, bar_file_suffixes, read_bar_file
from forex_assets.ingest.validation import (
    DEFAULT_POLICY,
    ValidatedBars,
    ValidationPolicy,
    validate_files,
)
from forex_assets.market.instruments import Instrument, symbols_in_text


@dataclass(frozen=True)
class FileSpec:
    """One file to ingest; `format` (a format's name) and `timezone` override detection
    and the format's default clock."""

    path: Path
    format: str = AUTO
    timezone: str | None = None


@dataclass(frozen=True)
class FileOverride:
    """Declared format/timezone for files whose relative path matches `pattern` (a glob)."""

    pattern: str
    format: str = AUTO
    timezone: str | None = None


# Names starting with these are hidden or temporary (".ipynb_checkpoints/", ".~lock...#",
# Excel's "~$EURUSD.csv" lock file): stale copies or binary junk, never a symbol's data.
IGNORED_PREFIXES = (".", "~")


def _bar_files(data_dir: Path) -> Iterable[Path]:
    if not data_dir.is_dir():
        return []
    # Hidden folders count too: a Jupyter checkpoint copy sorts before the real file and
    # would become the keeper of every duplicate time.
    suffixes = bar_file_suffixes()
    return sorted(
        p
        for p in data_dir.rglob("*")
        if p.is_file()
        and p.suffix.lower() in suffixes
        and not any(part.startswith(IGNORED_PREFIXES) for part in p.relative_to(data_dir).parts)
    )


def file_symbols(data_dir: Path, path: Path) -> list[str]:
    """The symbols a file in `data_dir` belongs to: those its folders name, else those its
    name names (one, for a well-named file)."""
    relative = path.relative_to(data_dir)
    folder_symbols = [s for part in relative.parts[:-1] for s in symbols_in_text(part)]
    return folder_symbols or symbols_in_text(path.name)


def discover_symbol_files(
    data_dir: Path, symbol: str, overrides: Sequence[FileOverride] = ()
) -> list[FileSpec]:
    """Files in `data_dir` that belong to `symbol`, with any matching override applied."""
    specs = []
    for path in _bar_files(data_dir):
        if symbol not in file_symbols(data_dir, path):
            continue
        relative = path.relative_to(data_dir).as_posix()
        override = next((o for o in overrides if fnmatch.fnmatch(relative, o.pattern)), None)
        if override is None:
            specs.append(FileSpec(path))
        else:
            specs.append(FileSpec(path, override.format, override.timezone))
    return specs


def symbols_in_data_dir(data_dir: Path) -> list[str]:
    """Every symbol that has at least one file in `data_dir`."""
    found: set[str] = set()
    for path in _bar_files(data_dir):
        found.update(file_symbols(data_dir, path))
    return sorted(found)


def load_symbol_bars(
    files: Sequence[FileSpec],
    instrument: Instrument,
    policy: ValidationPolicy = DEFAULT_POLICY,
    progress: Callable[[int, int, FileSpec], None] | None = None,
) -> tuple[ValidatedBars, list[Mapping[str, object]]]:
    """Read and validate a symbol's files; also returns one summary row per file."""
    parsed = []
    for index, spec in enumerate(files):
        if progress is not None:
            progress(index, len(files), spec)
        parsed.append(read_bar_file(spec.path, spec.format, spec.timezone, instrument))
    validated = validate_files(parsed, policy)
    rejected = validated.quarantine.group_by("file").len()
    rejected_by_file = dict(
        zip(rejected.get_column("file"), rejected.get_column("len"), strict=True)
    )
    summary = [
        {
            "file": str(p.path),
            "format": p.format,
            "timezone": p.timezone,
            "rows": p.rows.height,
            "quarantined": int(rejected_by_file.get(str(p.path), 0)),
        }
        for p in parsed
    ]
    return validated, summary
