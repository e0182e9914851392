"""Readers for the bar files FX researchers actually have.

Every reader turns a file into the same *parsed rows* frame: one row per data row of the
file, with its 1-based `line` number (the row number for Parquet), the `raw` text, the
UTC `time`, OHLC, `volume`, `spread`, and an `error` naming the field that could not be
parsed. A row that fails to parse is kept with its error so the validator can quarantine
it by file and line; only a file that cannot be read as bars at all raises
`BarFileError`, naming the file and the reason.

Supported formats (auto-detected from the content, or declared per file):

- ``histdata``: HistData.com ASCII M1, ``20230102 170000;1.07015;1.07021;1.07010;1.07018;0``,
  fixed EST (UTC-5) timestamps.
- ``dukascopy``: Dukascopy CSV exports, ``Gmt time,Open,High,Low,Close,Volume`` with
  ``02.01.2023 00:00:00.000``, or ``Local time`` with a ``GMT+0200`` suffix per row.
- ``mt4``: MetaTrader 4 History Center export, ``2023.01.02,00:00,o,h,l,c,volume``.
- ``mt5``: MetaTrader 5 bar export, tab-separated ``<DATE> <TIME> <OPEN> ... <SPREAD>``
  (spread in points). MetaTrader files are on broker server time, ``NY+7`` by default.
- ``csv``: any delimited file with a header naming a time (or date + time) column and OHLC
  columns in any common spelling, volume optional, with or without a pandas index column.
- ``parquet``: the same columns, or a datetime index written by pandas.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from forex_assets.ingest.timezones import SourceTimezone, parse_timezone
from forex_assets.market.bar_schema import M1_SCHEMA, PRICE_COLUMNS, TIME
from forex_assets.market.instruments import Instrument


class FileFormat(StrEnum):
    AUTO = "auto"
    HISTDATA = "histdata"
    DUKASCOPY = "dukascopy"
    MT4 = "mt4"
    MT5 = "mt5"
    CSV = "csv"
    PARQUET = "parquet"


class BarFileError(ValueError):
    """A file that cannot be read as bars; the message names the file and why."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


# Default source clocks per format (see forex_assets.ingest.timezones).
DEFAULT_TIMEZONES = {
    FileFormat.HISTDATA: "-05:00",
    FileFormat.DUKASCOPY: "UTC",
    FileFormat.MT4: "NY+7",
    FileFormat.MT5: "NY+7",
    FileFormat.CSV: "UTC",
    FileFormat.PARQUET: "UTC",
}

# The bar columns, plus where each row came from and why it could not be parsed.
PARSED_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "raw": pl.String(),
    **M1_SCHEMA,
    "error": pl.String(),
}


@dataclass(frozen=True)
class ParsedFile:
    """A file's rows before validation, plus facts the reader learned about the file."""

    path: Path
    format: FileFormat
    timezone: str
    rows: pl.DataFrame
    notes: tuple[str, ...] = ()


def read_bar_file(
    path: Path | str,
    file_format: FileFormat | str = FileFormat.AUTO,
    timezone: str | None = None,
    instrument: Instrument | None = None,
    head_bytes: int | None = None,
) -> ParsedFile:
    """Parse one bar file; `timezone` overrides the format's default source clock.

    `head_bytes` parses only the lines that end within a text file's first `head_bytes`
    bytes: a quick look that tells a bar file from garbage without reading all of a large
    file. UTF-16 text and Parquet are always read whole.
    """
    path = Path(path)
    fmt = FileFormat(file_format)
    if not path.is_file():
        raise BarFileError(path, "no such file")
    if fmt is FileFormat.AUTO:
        fmt = detect_format(path)
    tz_spec = timezone or DEFAULT_TIMEZONES[fmt]
    try:
        tz = parse_timezone(tz_spec)
    except ValueError as exc:
        raise BarFileError(path, str(exc)) from None
    if fmt is FileFormat.PARQUET:
        rows, notes = _read_parquet(path, tz)
    else:
        lines = _read_text_lines(path, head_bytes)
        reader = {
            FileFormat.HISTDATA: _read_histdata,
            FileFormat.DUKASCOPY: _read_dukascopy,
            FileFormat.MT4: _read_mt4,
            FileFormat.MT5: _read_mt5,
            FileFormat.CSV: _read_generic_csv,
        }[fmt]
        rows, notes = reader(path, lines, tz, instrument)
    rows, volume_notes = _null_absent_volume(rows)
    rows = rows.select([pl.col(c).cast(t) for c, t in PARSED_SCHEMA.items()])
    if rows.height and rows.get_column("error").is_not_null().all():
        first = rows.row(0, named=True)
        raise BarFileError(
            path,
            f"no row could be parsed as {fmt.value} bars; line {first['line']}: {first['error']} "
            f"(raw: {first['raw'][:80]!r}). Check the declared format or the file's content.",
        )
    return ParsedFile(path, fmt, tz.spec, rows, notes + volume_notes)


# --------------------------------------------------------------------------- detection

_HISTDATA_RE = re.compile(r"^\d{8} \d{6};")
_MT4_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2},\d{2}:\d{2},")
_MT5_ROW_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2}\t\d{2}:\d{2}")
_DUKASCOPY_HEADER_RE = re.compile(r"^\W*(gmt time|local time|time \((utc|gmt|eet)\))", re.I)
_DUKASCOPY_ROW_RE = re.compile(r"^\d{2}\.\d{2}\.\d{4} ")


def detect_format(path: Path) -> FileFormat:
    """Recognise the format from the file's first bytes and first non-blank line."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"PAR1") or path.suffix.lower() in {".parquet", ".pq"}:
        return FileFormat.PARQUET
    text = _decode(path, head, partial=True)
    non_blank = (ln.strip() for ln in text.splitlines() if ln.strip())
    first = next(non_blank, "")
    second = next(non_blank, "")
    if not first:
        raise BarFileError(path, "the file is empty")
    if first.upper().startswith("<DATE>") or _MT5_ROW_RE.match(first):
        return FileFormat.MT5
    if _HISTDATA_RE.match(first):
        return FileFormat.HISTDATA
    if _MT4_RE.match(first):
        return FileFormat.MT4
    # A Dukascopy header over other dates (the export re-saved with pandas writes ISO
    # times under "Gmt time") is a generic CSV, which knows that column name too.
    if _DUKASCOPY_HEADER_RE.match(first) and (not second or _DUKASCOPY_ROW_RE.match(second)):
        return FileFormat.DUKASCOPY
    if _looks_like_header(first):
        return FileFormat.CSV
    raise BarFileError(
        path,
        f"could not recognise the format from the first line {first[:80]!r}; supported: "
        "HistData ASCII, Dukascopy CSV, MetaTrader 4/5 exports, CSV with a header naming "
        "time and OHLC columns, Parquet. Declare the format if it is one of these.",
    )


def _looks_like_header(line: str) -> bool:
    fields = [_canonical(f) for f in re.split(r"[,;\t|]", line)]
    return any(f in _COLUMN_ALIASES["open"] for f in fields) and any(
        f in _COLUMN_ALIASES["close"] for f in fields
    )


# --------------------------------------------------------------------------- text input


def _decode(path: Path, data: bytes, partial: bool = False) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace" if partial else "strict")
    if b"\x00" in data[:4096]:
        # UTF-16 without a BOM (MetaTrader 5 writes it) has a NUL in every ASCII char.
        if data[1:2] == b"\x00":
            return data.decode("utf-16-le", errors="replace" if partial else "strict")
        raise BarFileError(path, "binary content (NUL bytes): not a text bar file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if partial:
            return data.decode("utf-8", errors="replace")
        raise BarFileError(
            path, f"not UTF-8 or UTF-16 text ({exc.reason} at byte {exc.start})"
        ) from None


_UTF8_BOM = b"\xef\xbb\xbf"


def _read_text_lines(path: Path, head_bytes: int | None = None) -> pl.DataFrame:
    """Non-blank lines with their 1-based line numbers in the file (see `read_bar_file` for
    `head_bytes`).

    Only CR/LF end a line, as in editors and `open()`: str.splitlines() also breaks at form
    feeds, NEL and other separators that turn up in corrupt rows, which would split one row
    into several and shift every later line number. polars splits a UTF-8 buffer into
    lines twenty times faster than Python; it is used whenever its line count provably
    matches (no lone CR, no stray field separator), and Python's split otherwise.
    """
    data = path.read_bytes() if head_bytes is None else _read_head(path, head_bytes)
    is_utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]
    text = _decode(path, data) if is_utf16 else None
    # polars validates UTF-8 itself; Python decodes only for UTF-16 or when polars declines.
    lines = _polars_lines(
        text.encode("utf-8") if text is not None else data.removeprefix(_UTF8_BOM)
    )
    if lines is None:
        text = text if text is not None else _decode(path, data)
        lines = pl.Series("raw", re.split(r"\r\n|\r|\n", text), dtype=pl.String)
    frame = pl.DataFrame(
        {"line": np.arange(1, lines.len() + 1, dtype=np.int64), "raw": lines},
        schema={"line": pl.Int64, "raw": pl.String},
    ).filter(pl.col("raw").str.strip_chars() != "")
    if frame.height == 0:
        raise BarFileError(path, "the file is empty")
    return frame


def _read_head(path: Path, head_bytes: int) -> bytes:
    """The file's lines that end within its first `head_bytes` bytes (all of a UTF-16 file,
    whose line breaks are two bytes wide; the first partial line if no line ends there)."""
    with path.open("rb") as handle:
        data = handle.read(head_bytes + 1)
        if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
            return data + handle.read()
    if len(data) <= head_bytes:
        return data
    end = data.rfind(b"\n", 0, head_bytes)
    return data[: end + 1] if end >= 0 else data[:head_bytes]


def _polars_lines(buffer: bytes) -> pl.Series | None:
    """All lines of `buffer` (blank ones as null), or None where polars could miscount."""
    if b"\x1f" in buffer or (b"\r" in buffer and buffer.count(b"\r") != buffer.count(b"\r\n")):
        return None
    expected = buffer.count(b"\n") + (0 if buffer.endswith(b"\n") else 1)
    try:
        lines = pl.read_csv(
            io.BytesIO(buffer),
            has_header=False,
            separator="\x1f",
            quote_char=None,
            schema={"raw": pl.String},
        ).get_column("raw")
    except pl.exceptions.PolarsError:
        return None
    return lines if lines.len() == expected else None


def _with_errors(frame: pl.DataFrame, failed: pl.Expr, message: pl.Expr) -> pl.DataFrame:
    """Record `message` as the error of rows where `failed` (keeping an earlier error).

    Messages are only formatted when some row failed: formatting a string for each of a
    million clean rows would cost more than parsing them.
    """
    if not frame.select(failed.fill_null(False).any()).item():
        return frame
    return frame.with_columns(
        error=pl.coalesce(pl.col("error"), pl.when(failed.fill_null(False)).then(message))
    )


def _split_fields(lines: pl.DataFrame, separator: str, names: Sequence[str]) -> pl.DataFrame:
    """Split delimited lines into named string fields; a wrong field count is a row error."""
    expected = len(names)
    fields = (
        pl.col("raw").str.split_exact(separator, expected - 1).struct.rename_fields(list(names))
    )
    counts = pl.col("raw").str.count_matches(separator, literal=True) + 1
    frame = lines.with_columns(_fields=fields, error=pl.lit(None, pl.String)).unnest("_fields")
    return _with_errors(
        frame,
        counts != expected,
        pl.format(f"expected {expected} fields separated by {separator!r}, found {{}}", counts),
    )


def _parse_numbers(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Cast string fields to float; a non-empty field that is not a number is a row error.

    The plain cast handles clean files; only when it fails somewhere are spaces and
    quotes stripped and the cast retried, so padding is accepted but never paid for.
    """
    plain = frame.with_columns(
        pl.col(c).cast(pl.Float64, strict=False).alias(f"_n_{c}") for c in columns
    )
    retry = pl.any_horizontal(
        [pl.col(f"_n_{c}").is_null() & pl.col(c).is_not_null() for c in columns]
    )
    if plain.select(retry.any()).item():
        for name in columns:
            text = pl.col(name).str.strip_chars().str.strip_chars('"')
            value = text.cast(pl.Float64, strict=False)
            plain = _with_errors(
                plain.with_columns(value.alias(f"_n_{name}")),
                (text != "") & value.is_null(),
                pl.format(f"{name} {{}} is not a number", text),
            )
    return plain.with_columns(pl.col(f"_n_{c}").alias(c) for c in columns).drop(
        [f"_n_{c}" for c in columns]
    )


def _parse_time(
    frame: pl.DataFrame, text: pl.Expr, fmt: str, tz: SourceTimezone, width: int | None = None
) -> pl.DataFrame:
    """Parse naive local timestamps in `fmt` and convert them to UTC.

    `width` makes fixed-width layouts strict: chrono would otherwise read "17020" as
    17:02:00 and turn a truncated field into a plausible, wrong time. Padded values are
    stripped and retried only when the plain parse fails somewhere.
    """

    def parse(values: pl.Expr) -> pl.Expr:
        naive = values.str.to_datetime(fmt, strict=False, time_unit="us")
        return naive if width is None else pl.when(values.str.len_bytes() == width).then(naive)

    parsed = frame.with_columns(parse(text).alias("_naive"))
    if parsed.select((pl.col("_naive").is_null() & text.is_not_null()).any()).item():
        text = text.str.strip_chars()
        parsed = parsed.with_columns(parse(text).alias("_naive"))
    naive = pl.col("_naive")
    parsed = parsed.with_columns(tz.to_utc(naive).alias("_utc"))
    parsed = _with_errors(
        parsed, naive.is_null(), pl.format(f"time {{}} does not match {fmt}", text)
    )
    parsed = _with_errors(
        parsed,
        naive.is_not_null() & pl.col("_utc").is_null(),
        pl.format(f"local time {{}} does not exist in {tz.spec}", text),
    )
    # The time column is written last: `text` may read a source column that is named "time".
    return parsed.with_columns(pl.col("_utc").alias(TIME)).drop("_naive", "_utc")


# --------------------------------------------------------------------------- fixed layouts


def _read_histdata(path, lines, tz, instrument):
    frame = _split_fields(lines, ";", ["stamp", "open", "high", "low", "close", "volume"])
    frame = _parse_numbers(frame, [*PRICE_COLUMNS, "volume"])
    frame = _parse_time(frame, pl.col("stamp"), "%Y%m%d %H%M%S", tz, width=15)
    return frame.with_columns(spread=pl.lit(None, pl.Float64)), ()


def _read_mt4(path, lines, tz, instrument):
    names = ["date", "clock", "open", "high", "low", "close", "volume"]
    frame = _split_fields(lines, ",", names)
    frame = _parse_numbers(frame, [*PRICE_COLUMNS, "volume"])
    stamp = pl.concat_str("date", "clock", separator=" ")
    frame = _parse_time(frame, stamp, "%Y.%m.%d %H:%M", tz, width=16)
    return frame.with_columns(spread=pl.lit(None, pl.Float64)), ()


def _read_mt5(path, lines, tz, instrument):
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
        raise BarFileError(path, f"MetaTrader 5 header lacks {sorted(missing)}; found {header}")
    renamed = ["clock" if h == "time" else h for h in header]
    frame = _split_fields(lines, separator, renamed)
    volume_column = "tickvol" if "tickvol" in renamed else ("vol" if "vol" in renamed else None)
    numeric = [*PRICE_COLUMNS, *(c for c in ("tickvol", "vol", "spread") if c in renamed)]
    frame = _parse_numbers(frame, numeric)
    clock = pl.col("clock").str.strip_chars()
    stamp = pl.concat_str(
        "date",
        pl.when(clock.str.len_chars() == 5).then(clock + ":00").otherwise(clock),
        separator=" ",
    )
    frame = _parse_time(frame, stamp, "%Y.%m.%d %H:%M:%S", tz, width=19)
    volume = pl.col(volume_column) if volume_column else pl.lit(None, pl.Float64)
    if "spread" in renamed and instrument is not None:
        spread = pl.col("spread") * instrument.point
    else:
        spread = pl.lit(None, pl.Float64)
        if "spread" in renamed:
            notes.append("spread column ignored: points need the instrument's point size")
    return frame.with_columns(volume=volume, spread=spread), tuple(notes)


_DUKASCOPY_OFFSET_RE = r"\s*(?:GMT|UTC)([+-])(\d{2}):?(\d{2})\s*$"


def _read_dukascopy(path, lines, tz, instrument):
    header_line = lines.item(0, "raw")
    separator = ";" if header_line.count(";") > header_line.count(",") else ","
    header = [_canonical(h) for h in header_line.split(separator)]
    if len(header) < 5 or not all(c in header for c in PRICE_COLUMNS):
        raise BarFileError(path, f"Dukascopy header {header_line!r} lacks Open/High/Low/Close")
    time_name = header[0]
    names = ["stamp", *header[1:]]
    frame = _split_fields(lines.slice(1), separator, names)
    numeric = [*PRICE_COLUMNS, *(["volume"] if "volume" in names else [])]
    frame = _parse_numbers(frame, numeric)
    stamp = pl.col("stamp").str.strip_chars()
    notes: tuple[str, ...] = ()
    if "local" in time_name:
        # Each row carries its own offset, e.g. "02.01.2023 00:00:00.000 GMT+0200".
        offset = stamp.str.extract_groups(_DUKASCOPY_OFFSET_RE)
        sign = pl.when(offset.struct.field("1") == "-").then(-1).otherwise(1)
        minutes = sign * (
            offset.struct.field("2").cast(pl.Int64) * 60 + offset.struct.field("3").cast(pl.Int64)
        )
        local = stamp.str.replace(_DUKASCOPY_OFFSET_RE, "")
        frame = _parse_time(frame, local, "%d.%m.%Y %H:%M:%S%.f", parse_timezone("UTC"))
        frame = _with_errors(
            frame.with_columns(pl.col(TIME) - pl.duration(minutes=minutes)),
            minutes.is_null(),
            pl.format("time {} has no GMT offset suffix", stamp),
        )
        notes = ("timestamps converted from the per-row GMT offset",)
    else:
        if "eet" in time_name:
            tz = parse_timezone("EET")
        frame = _parse_time(frame, stamp, "%d.%m.%Y %H:%M:%S%.f", tz)
    volume = pl.col("volume") if "volume" in names else pl.lit(None, pl.Float64)
    return frame.with_columns(volume=volume, spread=pl.lit(None, pl.Float64)), notes


# --------------------------------------------------------------------------- generic columns


def _canonical(name: str) -> str:
    return re.sub(r"[\s<>\"'_\-.]", "", name).lower()


_COLUMN_ALIASES: dict[str, set[str]] = {
    "time": {
        "time", "timestamp", "datetime", "datetimeutc", "timeutc", "time(utc)", "gmttime",
        "localtime", "date_time", "dt", "ts", "index", "level0", "unnamed:0", "",
        "opentime", "bartime",
        # pandas stores an unnamed index in Parquet as "__index_level_0__".
        "indexlevel0",
    },
    "date": {"date", "day"},
    "clock": {"time", "clock", "hour"},
    "open": {"open", "o", "openbid", "bidopen", "openprice", "first"},
    "high": {"high", "h", "highbid", "bidhigh", "highprice", "max"},
    "low": {"low", "l", "lowbid", "bidlow", "lowprice", "min"},
    "close": {"close", "c", "closebid", "bidclose", "closeprice", "last"},
    "volume": {"volume", "vol", "v", "tickvol", "tickvolume", "ticks", "realvolume", "volumes"},
    "spread": {"spread"},
}  # fmt: skip

_NAIVE_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d.%m.%Y %H:%M:%S%.f",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y%m%d %H%M%S",
    "%Y%m%d %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
)
_AWARE_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
)
_OFFSET_SUFFIX_RE = r"(?:Z|[+-]\d{2}:?\d{2})$"


def _map_columns(path: Path, names: Sequence[str]) -> dict[str, str]:
    """Map canonical roles (time/date/clock/open/...) to the file's own column names."""
    canonical = {name: _canonical(name) for name in names}
    roles: dict[str, str] = {}
    for role in ("open", "high", "low", "close", "volume", "spread"):
        for name in names:
            if canonical[name] in _COLUMN_ALIASES[role] and name not in roles.values():
                roles[role] = name
                break
    date = next((n for n in names if canonical[n] in _COLUMN_ALIASES["date"]), None)
    clock = next((n for n in names if canonical[n] in _COLUMN_ALIASES["clock"] and n != date), None)
    stamp = next(
        (n for n in names if canonical[n] in _COLUMN_ALIASES["time"] and n not in roles.values()),
        None,
    )
    if date is not None and clock is not None:
        roles["date"], roles["clock"] = date, clock
    elif stamp is not None:
        roles["time"] = stamp
    elif date is not None:
        roles["time"] = date
    missing = [r for r in PRICE_COLUMNS if r not in roles]
    if "time" not in roles and "date" not in roles:
        missing.insert(0, "time")
    if missing:
        raise BarFileError(
            path,
            f"no column for {missing} among {list(names)}; expected a time (or date + time) "
            "column and open/high/low/close columns, volume optional.",
        )
    return roles


def _read_generic_csv(path, lines, tz, instrument):
    header_line = lines.item(0, "raw")
    separator = max([",", ";", "\t", "|"], key=header_line.count)
    names = [h.strip().strip('"') for h in header_line.split(separator)]
    roles = _map_columns(path, names)
    safe = [f"c{i}" for i in range(len(names))]
    by_name = dict(zip(names, safe, strict=True))
    frame = _split_fields(lines.slice(1), separator, safe)
    if frame.height == 0:
        raise BarFileError(path, "the file has a header but no data rows")
    numeric_roles = [r for r in (*PRICE_COLUMNS, "volume", "spread") if r in roles]
    frame = frame.with_columns(pl.col(by_name[roles[r]]).alias(r) for r in numeric_roles)
    if separator == ";" and frame.get_column("close").str.contains(",").any():
        # Decimal commas (European locale exports).
        frame = frame.with_columns(
            pl.col(r).str.replace(",", ".", literal=True) for r in numeric_roles
        )
    frame = _parse_numbers(frame, numeric_roles)
    if "time" in roles:
        text = pl.col(by_name[roles["time"]])
    else:
        text = pl.concat_str(by_name[roles["date"]], by_name[roles["clock"]], separator=" ")
    frame = _parse_text_timestamps(path, frame, text, tz)
    return frame.with_columns(
        *[pl.lit(None, pl.Float64).alias(r) for r in ("volume", "spread") if r not in roles]
    ), ()


def _parse_text_timestamps(
    path: Path, frame: pl.DataFrame, text: pl.Expr, tz: SourceTimezone
) -> pl.DataFrame:
    """Timestamps of unknown layout: epoch numbers, ISO with offsets, or a naive format."""
    stripped = text.str.strip_chars().str.strip_chars('"')
    values = frame.select(stripped.alias("t")).get_column("t")
    sample = values.drop_nulls().head(1000)
    if sample.len() == 0:
        raise BarFileError(path, "the time column is empty")
    # The layout is what most values look like, not all: one garbage row must stay a row
    # error instead of making an epoch or ISO-offset file unreadable.
    if sample.str.contains(r"^\d{9,19}$").mean() > 0.5:
        return _epoch_times(frame, stripped, values)
    if sample.str.contains(_OFFSET_SUFFIX_RE).mean() > 0.5:
        normalized = stripped.str.replace(r"Z$", "+00:00")
        fmt = _best_format(path, frame, normalized, _AWARE_TIME_FORMATS, aware=True)
        if fmt is None:
            raise BarFileError(
                path, f"time values such as {sample[0]!r} carry an offset in no known layout"
            )
        parsed = normalized.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
        checked = _with_errors(
            frame.with_columns(parsed.alias("_utc")),
            pl.col("_utc").is_null(),
            pl.format(f"time {{}} does not match {fmt}", stripped),
        )
        return checked.with_columns(pl.col("_utc").alias(TIME)).drop("_utc")
    fmt = _best_format(path, frame, stripped, _NAIVE_TIME_FORMATS, aware=False)
    if fmt is None:
        raise BarFileError(
            path,
            f"time values such as {sample[0]!r} match no known layout; write them as ISO 8601 "
            "(2023-01-02 17:00:00) or epoch seconds/milliseconds.",
        )
    return _parse_time(frame, stripped, fmt, tz)


def _best_format(
    path: Path, frame: pl.DataFrame, text: pl.Expr, formats: Sequence[str], aware: bool
) -> str | None:
    """The format that parses the most values; day/month order must not be ambiguous."""
    head = frame.head(20_000)
    kwargs = {"time_zone": "UTC"} if aware else {}
    scores = head.select(
        text.str.to_datetime(fmt, strict=False, time_unit="us", **kwargs)
        .is_not_null()
        .sum()
        .alias(str(i))
        for i, fmt in enumerate(formats)
    ).row(0)
    best = int(np.argmax(scores))
    if scores[best] == 0:
        return None
    chosen = formats[best]
    if chosen.startswith("%d/%m"):
        twin = formats.index(chosen.replace("%d/%m", "%m/%d"))
        if scores[twin] == scores[best]:
            raise BarFileError(
                path,
                "dates like 01/02/2023 are ambiguous (day/month or month/day); write ISO dates",
            )
    return chosen


def _epoch_times(frame: pl.DataFrame, text: pl.Expr, values: pl.Series) -> pl.DataFrame:
    magnitude = values.drop_nulls().head(1000).cast(pl.Int64, strict=False).max()
    unit = (
        "ns"
        if magnitude > 10**17
        else "us"
        if magnitude > 10**14
        else "ms"
        if magnitude > 10**11
        else "s"
    )
    number = text.cast(pl.Int64, strict=False)
    stamp = pl.from_epoch(number, time_unit=unit).dt.replace_time_zone("UTC")
    checked = _with_errors(
        frame, number.is_null(), pl.format("time {} is not an epoch number", text)
    )
    return checked.with_columns(stamp.dt.cast_time_unit("us").alias(TIME))


# --------------------------------------------------------------------------- parquet


def _read_parquet(path: Path, tz: SourceTimezone) -> tuple[pl.DataFrame, tuple[str, ...]]:
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise BarFileError(path, f"unreadable Parquet ({type(exc).__name__}: {exc})") from None
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    roles = _map_columns(path, frame.columns)
    if "time" not in roles:
        raise BarFileError(
            path, "Parquet bar files need one timestamp column (or a datetime index)"
        )
    numeric_roles = [r for r in (*PRICE_COLUMNS, "volume", "spread") if r in roles]
    frame = frame.with_row_index("line", offset=1).with_columns(
        pl.col("line").cast(pl.Int64),
        pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("null") for c in frame.columns], separator=","
        ).alias("raw"),
        error=pl.lit(None, pl.String),
    )
    for role in numeric_roles:
        column = frame.get_column(roles[role])
        if column.dtype.is_numeric():
            frame = frame.with_columns(pl.col(roles[role]).cast(pl.Float64).alias(role))
        else:
            frame = frame.with_columns(pl.col(roles[role]).cast(pl.String).alias(role))
            frame = _parse_numbers(frame, [role])
    time_column = frame.get_column(roles["time"])
    if isinstance(time_column.dtype, pl.Datetime):
        if time_column.dtype.time_zone is None:
            stamp = tz.to_utc(pl.col(roles["time"]).dt.cast_time_unit("us"))
        else:
            stamp = pl.col(roles["time"]).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        frame = frame.with_columns(stamp.alias(TIME))
    elif time_column.dtype.is_integer():
        frame = _epoch_times(
            frame, pl.col(roles["time"]).cast(pl.String), time_column.cast(pl.String)
        )
    else:
        frame = _parse_text_timestamps(path, frame, pl.col(roles["time"]).cast(pl.String), tz)
    missing = [pl.lit(None, pl.Float64).alias(r) for r in ("volume", "spread") if r not in roles]
    return frame.with_columns(missing), ()


# --------------------------------------------------------------------------- shared


def _null_absent_volume(rows: pl.DataFrame) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """A volume column that is zero on every row means "no volume", not "no ticks"."""
    volume = rows.get_column("volume")
    if volume.len() and volume.is_not_null().any() and (volume.fill_null(0) == 0).all():
        return rows.with_columns(volume=pl.lit(None, pl.Float64)), (
            "volume column is all zero: treated as absent",
        )
    return rows, ()
