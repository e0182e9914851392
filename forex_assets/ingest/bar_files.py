"""Reading a bar file through the format registry: detection, clock and the parsed rows.

The formats are the modules of `forex_assets.ingest.formats`, each declaring one
`forex_assets.ingest.bar_format.BarFormat`; `python -m forex_assets formats` lists them.
Every reader turns a file into the same parsed rows (`PARSED_SCHEMA`): one row per data
row of the file, with its 1-based `line` number, the `raw` text, the UTC `time`, OHLC,
`volume`, `spread`, and an `error` naming the field that could not be parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

import polars as pl

import forex_assets.ingest.formats as formats_package
from forex_assets.ingest.bar_format import PARSED_SCHEMA, BarFileError, BarFormat, ReadRequest
from forex_assets.ingest.text_lines import text_head
from forex_assets.ingest.timezones import parse_timezone
from forex_assets.market.instruments import Instrument
from forex_assets.plugins import collect

# The declared format that asks for detection.
AUTO = "auto"
_DETECTION_BYTES = 4096


@dataclass(frozen=True)
class ParsedFile:
    """A file's rows before validation, plus facts the reader learned about the file."""

    path: Path
    format: str  # the name of its BarFormat
    timezone: str
    rows: pl.DataFrame
    notes: tuple[str, ...] = ()


def discover_formats(package: ModuleType) -> tuple[BarFormat, ...]:
    """The `FORMAT` of every module of `package`, by name.

    The name is the module's name, so a format's name is written in one place; a module
    without a `FORMAT` is a mistake, not a helper to skip (shared code lives outside the
    package).
    """
    found = collect(package, "FORMAT", BarFormat, many=False, error=ValueError)
    for registered in found:
        declared = registered.item
        if declared.name != registered.module or registered.module == AUTO:
            raise ValueError(
                f"{package.__name__}.{registered.module} declares the format name "
                f"{declared.name!r}; a format is named after its module ({registered.module!r}), "
                f"and {AUTO!r} is reserved for detection. Rename the module or the format so "
                "that they match."
            )
        try:
            parse_timezone(declared.default_timezone)
        except ValueError as exc:
            raise ValueError(
                f"{package.__name__}.{registered.module} declares default_timezone="
                f"{declared.default_timezone!r}, which is no clock: {exc}"
            ) from None
    return tuple(registered.item for registered in found)


@cache
def registry() -> tuple[BarFormat, ...]:
    """Every format of `forex_assets.ingest.formats`, by name."""
    return discover_formats(formats_package)


def bar_file_suffixes() -> frozenset[str]:
    """The name endings of bar files: every registered format's."""
    return frozenset(suffix for f in registry() for suffix in f.suffixes)


def format_names() -> list[str]:
    """What a file's format may be declared as: `AUTO` or a registered format's name."""
    return [AUTO, *(f.name for f in registry())]


def bar_format(name: str) -> BarFormat:
    """The registered format called `name`."""
    for candidate in registry():
        if candidate.name == name:
            return candidate
    raise ValueError(
        f"file format {name!r} is not one of {format_names()}; declare one of these, or "
        f"{AUTO!r} to detect the format from the file's content."
    )


def detect_format(path: Path) -> BarFormat:
    """Recognise the format from the file's first bytes, then its first non-blank lines
    (see `BarFormat` for the order in which formats are asked)."""
    formats = sorted(registry(), key=lambda f: (f.precedence, f.name))
    with path.open("rb") as handle:
        head = handle.read(_DETECTION_BYTES)
    for candidate in formats:
        if candidate.detect_bytes is not None and candidate.detect_bytes(path, head):
            return candidate
    lines = text_head(path, head)
    for candidate in formats:
        if candidate.detect_text is not None and candidate.detect_text(lines):
            return candidate
    supported = ", ".join(f"{f.title} ({f.name})" for f in registry())
    raise BarFileError(
        path,
        f"could not recognise the format from the first line {lines.first[:80]!r}; supported: "
        f"{supported}. Declare the format if it is one of these.",
    )


def read_bar_file(
    path: Path | str,
    file_format: str = AUTO,
    timezone: str | None = None,
    instrument: Instrument | None = None,
    head_bytes: int | None = None,
) -> ParsedFile:
    """Parse one bar file; `timezone` overrides the format's default source clock.

    `head_bytes` parses only the lines that end within a text file's first `head_bytes`
    bytes: a quick look that tells a bar file from garbage without reading all of a large
    file. UTF-16 text and binary formats are always read whole.
    """
    path = Path(path)
    declared = None if file_format == AUTO else bar_format(file_format)
    if not path.is_file():
        raise BarFileError(path, "no such file")
    fmt = declared or detect_format(path)
    try:
        tz = parse_timezone(timezone or fmt.default_timezone)
    except ValueError as exc:
        raise BarFileError(path, str(exc)) from None
    rows, notes = fmt.read(ReadRequest(path, tz, instrument, head_bytes))
    rows, volume_notes = _null_absent_volume(rows)
    rows = rows.select([pl.col(c).cast(t) for c, t in PARSED_SCHEMA.items()])
    if rows.height and rows.get_column("error").is_not_null().all():
        first = rows.row(0, named=True)
        raise BarFileError(
            path,
            f"no row could be parsed as {fmt.name} bars; line {first['line']}: {first['error']} "
            f"(raw: {first['raw'][:80]!r}). Check the declared format or the file's content.",
        )
    return ParsedFile(path, fmt.name, tz.spec, rows, notes + volume_notes)


def _null_absent_volume(rows: pl.DataFrame) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """A volume column that is zero on every row means "no volume", not "no ticks"."""
    volume = rows.get_column("volume")
    if volume.len() and volume.is_not_null().any() and (volume.fill_null(0) == 0).all():
        return rows.with_columns(volume=pl.lit(None, pl.Float64)), (
            "volume column is all zero: treated as absent",
        )
    return rows, ()
