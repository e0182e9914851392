"""MetaTrader 5 bar export: tab-separated ``<DATE> <TIME> <OPEN> ... <SPREAD>``.

UTF-8 or UTF-16, with or without the header; the spread is in points, so it is kept only
when the file's instrument (its point size) is known. MetaTrader files are on broker
server time, ``NY+7`` at most brokers.
"""

from __future__ import annotations

import re

import polars as pl

from forex_assets.ingest.bar_format import BarFileError, BarFormat, ReadRequest, Rows, TextHead
from forex_assets.ingest.parsing import parse_numbers, parse_time, split_fields
from forex_assets.ingest.text_lines import read_text_lines
from forex_assets.ingest.timezones import NEW_YORK_CLOSE_SERVER
from forex_assets.market.bar_schema import PRICE_COLUMNS

_ROW_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2}\t\d{2}:\d{2}")


def _detect(head: TextHead) -> bool:
    return head.first.upper().startswith("<DATE>") or bool(_ROW_RE.match(head.first))


def _read(request: ReadRequest) -> Rows:
    lines = read_text_lines(request.path, request.head_bytes)
    first = lines.item(0, "raw")
    separator = "\t" if "\t" in first else ","
    notes: list[str] = []
    if first.upper().startswith("<DATE>"):
        header = [h.strip().strip("<>").lower() for h in first.split(separator)]
        lines = lines.slice(1)
    else:
        header = ["date", "time", "open", "high", "low", "close", "tickvol", "vol", "spread"]
    missing = {"date", "time", *PRICE_COLUMNS} - set(header)
    if missing:
        raise BarFileError(
            request.path, f"MetaTrader 5 header lacks {sorted(missing)}; found {header}"
        )
    renamed = ["clock" if h == "time" else h for h in header]
    frame = split_fields(lines, separator, renamed)
    volume_column = "tickvol" if "tickvol" in renamed else ("vol" if "vol" in renamed else None)
    numeric = [*PRICE_COLUMNS, *(c for c in ("tickvol", "vol", "spread") if c in renamed)]
    frame = parse_numbers(frame, numeric)
    clock = pl.col("clock").str.strip_chars()
    stamp = pl.concat_str(
        "date",
        pl.when(clock.str.len_chars() == 5).then(clock + ":00").otherwise(clock),
        separator=" ",
    )
    frame = parse_time(frame, stamp, "%Y.%m.%d %H:%M:%S", request.timezone, width=19)
    volume = pl.col(volume_column) if volume_column else pl.lit(None, pl.Float64)
    if "spread" in renamed and request.instrument is not None:
        spread = pl.col("spread") * request.instrument.point
    else:
        spread = pl.lit(None, pl.Float64)
        if "spread" in renamed:
            notes.append("spread column ignored: points need the instrument's point size")
    return frame.with_columns(volume=volume, spread=spread), tuple(notes)


FORMAT = BarFormat(
    name="mt5",
    title="MetaTrader 5 bar export",
    example="<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD> (tabs)",
    suffixes=(".csv", ".txt", ".tsv"),
    default_timezone=NEW_YORK_CLOSE_SERVER,
    precedence=10,
    detect_text=_detect,
    read=_read,
)
