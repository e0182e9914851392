"""Dukascopy CSV exports: ``Gmt time,Open,High,Low,Close,Volume`` over rows such as
``02.01.2023 00:00:00.000``, or ``Local time`` with a ``GMT+0200`` suffix per row.

A ``Time (EET)`` column is on Eastern European time; every other export is GMT.
"""

from __future__ import annotations

import re

import polars as pl

from forex_assets.ingest.bar_format import BarFileError, BarFormat, ReadRequest, Rows, TextHead
from forex_assets.ingest.columns import canonical
from forex_assets.ingest.parsing import parse_numbers, parse_time, split_fields, with_errors
from forex_assets.ingest.text_lines import read_text_lines
from forex_assets.ingest.timezones import parse_timezone
from forex_assets.market.bar_schema import PRICE_COLUMNS, TIME

_HEADER_RE = re.compile(r"^\W*(gmt time|local time|time \((utc|gmt|eet)\))", re.I)
_ROW_RE = re.compile(r"^\d{2}\.\d{2}\.\d{4} ")
_OFFSET_RE = r"\s*(?:GMT|UTC)([+-])(\d{2}):?(\d{2})\s*$"


def _detect(head: TextHead) -> bool:
    # A Dukascopy header over other dates (the export re-saved with pandas writes ISO
    # times under "Gmt time") is a generic CSV, which knows that column name too.
    return bool(_HEADER_RE.match(head.first)) and (
        not head.second or bool(_ROW_RE.match(head.second))
    )


def _read(request: ReadRequest) -> Rows:
    path, tz = request.path, request.timezone
    lines = read_text_lines(path, request.head_bytes)
    header_line = lines.item(0, "raw")
    separator = ";" if header_line.count(";") > header_line.count(",") else ","
    header = [canonical(h) for h in header_line.split(separator)]
    if len(header) < 5 or not all(c in header for c in PRICE_COLUMNS):
        raise BarFileError(path, f"Dukascopy header {header_line!r} lacks Open/High/Low/Close")
    time_name = header[0]
    names = ["stamp", *header[1:]]
    frame = split_fields(lines.slice(1), separator, names)
    numeric = [*PRICE_COLUMNS, *(["volume"] if "volume" in names else [])]
    frame = parse_numbers(frame, numeric)
    stamp = pl.col("stamp").str.strip_chars()
    notes: tuple[str, ...] = ()
    if "local" in time_name:
        # Each row carries its own offset, e.g. "02.01.2023 00:00:00.000 GMT+0200".
        offset = stamp.str.extract_groups(_OFFSET_RE)
        sign = pl.when(offset.struct.field("1") == "-").then(-1).otherwise(1)
        minutes = sign * (
            offset.struct.field("2").cast(pl.Int64) * 60 + offset.struct.field("3").cast(pl.Int64)
        )
        local = stamp.str.replace(_OFFSET_RE, "")
        frame = parse_time(frame, local, "%d.%m.%Y %H:%M:%S%.f", parse_timezone("UTC"))
        frame = with_errors(
            frame.with_columns(pl.col(TIME) - pl.duration(minutes=minutes)),
            minutes.is_null(),
            pl.format("time {} has no GMT offset suffix", stamp),
        )
        notes = ("timestamps converted from the per-row GMT offset",)
    else:
        if "eet" in time_name:
            tz = parse_timezone("EET")
        frame = parse_time(frame, stamp, "%d.%m.%Y %H:%M:%S%.f", tz)
    volume = pl.col("volume") if "volume" in names else pl.lit(None, pl.Float64)
    return frame.with_columns(volume=volume, spread=pl.lit(None, pl.Float64)), notes


FORMAT = BarFormat(
    name="dukascopy",
    title="Dukascopy CSV",
    example="Gmt time,Open,High,Low,Close,Volume / 02.01.2023 00:00:00.000,...",
    suffixes=(".csv",),
    default_timezone="UTC",
    precedence=40,
    detect_text=_detect,
    read=_read,
)
