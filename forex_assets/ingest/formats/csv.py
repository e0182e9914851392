"""Any delimited file with a header naming a time (or date + time) column and OHLC columns
in any common spelling (``Open``, ``<OPEN>``, ``o``, ...), volume optional, with or without
a pandas index column; times as ISO 8601 (with or without an offset) or epoch numbers.

It is the catch-all text format, asked last: the vendors' own layouts come first.
"""

from __future__ import annotations

import polars as pl

from forex_assets.ingest.bar_format import BarFileError, BarFormat, ReadRequest, Rows, TextHead
from forex_assets.ingest.columns import looks_like_header, map_columns, parse_text_timestamps
from forex_assets.ingest.parsing import parse_numbers, split_fields
from forex_assets.ingest.text_lines import read_text_lines
from forex_assets.market.bar_schema import PRICE_COLUMNS


def _detect(head: TextHead) -> bool:
    return looks_like_header(head.first)


def _read(request: ReadRequest) -> Rows:
    path = request.path
    lines = read_text_lines(path, request.head_bytes)
    header_line = lines.item(0, "raw")
    separator = max([",", ";", "\t", "|"], key=header_line.count)
    names = [h.strip().strip('"') for h in header_line.split(separator)]
    roles = map_columns(path, names)
    safe = [f"c{i}" for i in range(len(names))]
    by_name = dict(zip(names, safe, strict=True))
    frame = split_fields(lines.slice(1), separator, safe)
    if frame.height == 0:
        raise BarFileError(path, "the file has a header but no data rows")
    numeric_roles = [r for r in (*PRICE_COLUMNS, "volume", "spread") if r in roles]
    frame = frame.with_columns(pl.col(by_name[roles[r]]).alias(r) for r in numeric_roles)
    if separator == ";" and frame.get_column("close").str.contains(",").any():
        # Decimal commas (European locale exports).
        frame = frame.with_columns(
            pl.col(r).str.replace(",", ".", literal=True) for r in numeric_roles
        )
    frame = parse_numbers(frame, numeric_roles)
    if "time" in roles:
        text = pl.col(by_name[roles["time"]])
    else:
        text = pl.concat_str(by_name[roles["date"]], by_name[roles["clock"]], separator=" ")
    frame = parse_text_timestamps(path, frame, text, request.timezone)
    return frame.with_columns(
        *[pl.lit(None, pl.Float64).alias(r) for r in ("volume", "spread") if r not in roles]
    ), ()


FORMAT = BarFormat(
    name="csv",
    title="CSV with a header naming time and OHLC columns",
    example="time,open,high,low,close,volume / 2023-01-02 17:00:00,1.07015,...",
    suffixes=(".csv", ".txt", ".tsv"),
    default_timezone="UTC",
    precedence=100,
    detect_text=_detect,
    read=_read,
)
