"""HistData.com ASCII M1: ``20230102 170000;1.07015;1.07021;1.07010;1.07018;0``.

HistData writes fixed EST (UTC-5, no DST) timestamps and a volume of 0 on every row.
"""

from __future__ import annotations

import re

import polars as pl

from forex_assets.ingest.bar_format import BarFormat, ReadRequest, Rows, TextHead
from forex_assets.ingest.parsing import parse_numbers, parse_time, split_fields
from forex_assets.ingest.text_lines import read_text_lines
from forex_assets.market.bar_schema import PRICE_COLUMNS

_ROW_RE = re.compile(r"^\d{8} \d{6};")


def _detect(head: TextHead) -> bool:
    return bool(_ROW_RE.match(head.first))


def _read(request: ReadRequest) -> Rows:
    lines = read_text_lines(request.path, request.head_bytes)
    frame = split_fields(lines, ";", ["stamp", "open", "high", "low", "close", "volume"])
    frame = parse_numbers(frame, [*PRICE_COLUMNS, "volume"])
    frame = parse_time(frame, pl.col("stamp"), "%Y%m%d %H%M%S", request.timezone, width=15)
    return frame.with_columns(spread=pl.lit(None, pl.Float64)), ()


FORMAT = BarFormat(
    name="histdata",
    title="HistData.com ASCII M1",
    example="20230102 170000;1.07015;1.07021;1.07010;1.07018;0",
    suffixes=(".csv", ".txt"),
    default_timezone="-05:00",
    precedence=20,
    detect_text=_detect,
    read=_read,
)
