"""Field parsing shared by the readers: every failure becomes a row error, not an exception.

A frame here carries an `error` column; each step records why a row failed (keeping the
first reason) and leaves the other rows alone, so one bad row costs one quarantined line.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from forex_assets.ingest.timezones import SourceTimezone
from forex_assets.market.bar_schema import TIME


def with_errors(frame: pl.DataFrame, failed: pl.Expr, message: pl.Expr) -> pl.DataFrame:
    """Record `message` as the error of rows where `failed` (keeping an earlier error).

    Messages are only formatted when some row failed: formatting a string for each of a
    million clean rows would cost more than parsing them.
    """
    if not frame.select(failed.fill_null(False).any()).item():
        return frame
    return frame.with_columns(
        error=pl.coalesce(pl.col("error"), pl.when(failed.fill_null(False)).then(message))
    )


def split_fields(lines: pl.DataFrame, separator: str, names: Sequence[str]) -> pl.DataFrame:
    """Split delimited lines into named string fields; a wrong field count is a row error."""
    expected = len(names)
    fields = (
        pl.col("raw").str.split_exact(separator, expected - 1).struct.rename_fields(list(names))
    )
    counts = pl.col("raw").str.count_matches(separator, literal=True) + 1
    frame = lines.with_columns(_fields=fields, error=pl.lit(None, pl.String)).unnest("_fields")
    return with_errors(
        frame,
        counts != expected,
        pl.format(f"expected {expected} fields separated by {separator!r}, found {{}}", counts),
    )


def parse_numbers(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
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
            plain = with_errors(
                plain.with_columns(value.alias(f"_n_{name}")),
                (text != "") & value.is_null(),
                pl.format(f"{name} {{}} is not a number", text),
            )
    return plain.with_columns(pl.col(f"_n_{c}").alias(c) for c in columns).drop(
        [f"_n_{c}" for c in columns]
    )


def parse_time(
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
    parsed = with_errors(
        parsed, naive.is_null(), pl.format(f"time {{}} does not match {fmt}", text)
    )
    parsed = with_errors(
        parsed,
        naive.is_not_null() & pl.col("_utc").is_null(),
        pl.format(f"local time {{}} does not exist in {tz.spec}", text),
    )
    # The time column is written last: `text` may read a source column that is named "time".
    return parsed.with_columns(pl.col("_utc").alias(TIME)).drop("_naive", "_utc")


def epoch_times(frame: pl.DataFrame, text: pl.Expr, values: pl.Series) -> pl.DataFrame:
    """Epoch numbers (`text`) as UTC times, the unit (s, ms, us, ns) read off their size."""
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
    checked = with_errors(
        frame, number.is_null(), pl.format("time {} is not an epoch number", text)
    )
    return checked.with_columns(stamp.dt.cast_time_unit("us").alias(TIME))
