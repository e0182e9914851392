"""MetaTrader 4 History Center export: ``2023.01.02,00:00,o,h,l,c,volume``.

MetaTrader files are on broker server time, ``NY+7`` at most brokers.
"""

from __future__ import annotations

import re

import polars as pl

from forex_assets.ingest.bar_format import BarFormat, ReadRequest, Rows, TextHead
from forex_assets.ingest.parsing import parse_numbers, parse_time, split_fields
from forex_assets.ingest.text_lines import read_text_lines
from forex_assets.ingest.timezones import NEW_YORK_CLOSE_SERVER
from forex_assets.market.bar_schema import PRICE_COLUMNS

_ROW_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2},\d{2}:\d{2},")


def _detect(head: TextHead) -> bool:
    return bool(_ROW_RE.match(head.first))


def _read(request: ReadRequest) -> Rows:
    lines = read_text_lines(request.path, request.head_bytes)
    names = ["date", "clock", "open", "high", "low", "close", "volume"]
    frame = split_fields(lines, ",", names)
    frame = parse_numbers(frame, [*PRICE_COLUMNS, "volume"])
    stamp = pl.concat_str("date", "clock", separator=" ")
    frame = parse_time(frame, stamp, "%Y.%m.%d %H:%M", request.timezone, width=16)
    return frame.with_columns(spread=pl.lit(None, pl.Float64)), ()


FORMAT = BarFormat(
    name="mt4",
    title="MetaTrader 4 history export",
    example="2023.01.02,00:00,1.07015,1.07021,1.07010,1.07018,123",
    suffixes=(".csv", ".txt"),
    default_timezone=NEW_YORK_CLOSE_SERVER,
    precedence=30,
    detect_text=_detect,
    read=_read,
)
