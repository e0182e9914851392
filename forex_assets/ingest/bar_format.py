"""What a bar file format declares: its name, default clock, detection and reader.

A format is one module under `forex_assets.ingest.formats` that defines
``FORMAT = BarFormat(...)``; `forex_assets.ingest.bar_files` finds it there, so adding a
format touches nothing else. A reader turns a file into *parsed rows*: one row per data
row of the file with the columns of `PARSED_SCHEMA`, a row that fails to parse kept with
its `error` so the validator can quarantine it by file and line. Only a file that cannot
be read as bars at all raises `BarFileError`, naming the file and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from forex_assets.ingest.timezones import SourceTimezone
from forex_assets.market.bar_schema import M1_SCHEMA
from forex_assets.market.instruments import Instrument


class BarFileError(ValueError):
    """A file that cannot be read as bars; the message names the file and why."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


# The bar columns, plus where each row came from (1-based `line`, the row number for
# Parquet, and its `raw` text) and why it could not be parsed.
PARSED_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "raw": pl.String(),
    **M1_SCHEMA,
    "error": pl.String(),
}


@dataclass(frozen=True)
class ReadRequest:
    """One file to read, on the source clock `timezone`.

    `instrument` is known when the file's symbol is (MetaTrader spreads are in points of
    it). `head_bytes` asks a text reader for only the lines that end within the file's
    first `head_bytes` bytes (see `forex_assets.ingest.text_lines.read_text_lines`).
    """

    path: Path
    timezone: SourceTimezone
    instrument: Instrument | None = None
    head_bytes: int | None = None


@dataclass(frozen=True)
class TextHead:
    """What text detection sees: the first two non-blank lines, stripped ('' if none)."""

    first: str
    second: str


# Parsed rows (at least the columns of PARSED_SCHEMA) and notes on what the reader inferred.
Rows = tuple[pl.DataFrame, tuple[str, ...]]


@dataclass(frozen=True)
class BarFormat:
    """One file format. `name` is the module's name, the name users declare in overrides.

    Detection asks binary formats first (`detect_bytes`, on the file's first 4 KiB, before
    anything is decoded: a binary file is not text), then text formats (`detect_text`), each
    kind in ascending `precedence` (ties by name). A format sets exactly one of the two. A
    specific layout takes a low precedence so that it is recognised before a generic one
    that would also accept it (the header-driven ``csv`` comes last).
    """

    name: str
    title: str  # what people call it, for error messages and the format list
    example: str  # a header or row of the format, for the format list
    # The name endings (lower case) of its files: only files with a registered format's
    # suffix are read from the data directory and taken from the inbox.
    suffixes: tuple[str, ...]
    default_timezone: str  # the clock of files that declare none (forex_assets.ingest.timezones)
    precedence: int
    read: Callable[[ReadRequest], Rows]
    detect_bytes: Callable[[Path, bytes], bool] | None = None
    detect_text: Callable[[TextHead], bool] | None = None

    @property
    def is_text(self) -> bool:
        """Text formats read lines, so a reader can stop at a head of them (`head_bytes`);
        a binary file is always read whole."""
        return self.detect_text is not None

    def __post_init__(self) -> None:
        if (self.detect_bytes is None) == (self.detect_text is None):
            raise ValueError(
                f"bar format {self.name!r} sets detect_bytes={self.detect_bytes!r} and "
                f"detect_text={self.detect_text!r}; a format is recognised either from its "
                "bytes (binary) or from its first lines (text): set exactly one."
            )
