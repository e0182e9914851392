"""The bar validation policy: which rows are kept, which are quarantined, and why.

Every parsed row ends up in exactly one place: the validated bars or the quarantine
record (file, line, reason, detail, raw text). Nothing is dropped silently and nothing is
repaired silently. Rules, in the order they are applied (a row gets the first that fails):

1. ``unparseable``: a field could not be parsed (the reader's error says which).
2. ``missing_value``: open, high, low or close is NaN/empty (or infinite, which no
   price can be and which the downstream finite-price integrity check rejects).
3. ``non_positive_price``: a price is zero or negative.
4. ``high_below_open_close``: high < max(open, close).
5. ``low_above_open_close``: low > min(open, close). (Together with 4 this rules out
   high < low.)
6. ``negative_volume`` / ``negative_spread``.
7. ``weekend_closure``: the bar opens between Friday 17:00 and Sunday 17:00 New York time
   (switchable with `reject_weekend_closure` for instruments that trade on weekends). A
   wrong source timezone shows up here first, so the message suggests checking it.
8. ``non_monotonic``: within one file, the smallest set of rows whose removal leaves the
   times in order (the complement of a longest non-decreasing subsequence). One stray
   row is quarantined alone instead of taking every later row with it. A file written
   newest-first is read in reverse and the reversal is reported, not quarantined.
9. ``duplicate_timestamp``: across all files of a symbol, the first row for a time (files
   in the order given, then line order) is kept; later rows for the same time are
   quarantined with the file and line of the kept row and whether they were identical
   (equal prices, and equal volume and spread where both rows have them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numba
import numpy as np
import polars as pl

from forex_assets.ingest.bar_files import ParsedFile
from forex_assets.market.bar_schema import M1_SCHEMA, PRICE_COLUMNS, TIME
from forex_assets.market.fx_calendar import in_weekend_closure


class QuarantineReason(StrEnum):
    UNPARSEABLE = "unparseable"
    MISSING_VALUE = "missing_value"
    NON_POSITIVE_PRICE = "non_positive_price"
    HIGH_BELOW_OPEN_CLOSE = "high_below_open_close"
    LOW_ABOVE_OPEN_CLOSE = "low_above_open_close"
    NEGATIVE_VOLUME = "negative_volume"
    NEGATIVE_SPREAD = "negative_spread"
    WEEKEND_CLOSURE = "weekend_closure"
    NON_MONOTONIC = "non_monotonic"
    DUPLICATE_TIMESTAMP = "duplicate_timestamp"


QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    "line": pl.Int64(),
    "reason": pl.String(),
    "detail": pl.String(),
    "raw": pl.String(),
}


@dataclass(frozen=True)
class ValidationPolicy:
    """Switches of the policy; the defaults are right for spot FX and metals."""

    reject_weekend_closure: bool = True


DEFAULT_POLICY = ValidationPolicy()


@dataclass(frozen=True)
class ValidatedBars:
    """Validated bars of one symbol and the quarantine record of everything rejected."""

    bars: pl.DataFrame
    quarantine: pl.DataFrame
    rows_in: int
    notes: tuple[str, ...] = field(default=())

    def reason_counts(self) -> dict[str, int]:
        counts = self.quarantine.get_column("reason").value_counts(sort=True)
        return dict(
            zip(
                counts.get_column("reason").to_list(),
                counts.get_column("count").to_list(),
                strict=True,
            )
        )


def validate_files(
    files: Sequence[ParsedFile], policy: ValidationPolicy = DEFAULT_POLICY
) -> ValidatedBars:
    """Validate every file, then merge them and resolve duplicate times across files."""
    kept: list[pl.DataFrame] = []
    rejected: list[pl.DataFrame] = []
    notes: list[str] = []
    for order, parsed in enumerate(files):
        good, bad, file_notes = _validate_one(parsed, policy)
        kept.append(good.with_columns(_file_order=pl.lit(order, pl.Int32)))
        rejected.append(bad)
        notes += [f"{parsed.path}: {n}" for n in (*parsed.notes, *file_notes)]
    rows_in = sum(p.rows.height for p in files)
    if not kept:
        return ValidatedBars(
            pl.DataFrame(schema=M1_SCHEMA), pl.DataFrame(schema=QUARANTINE_SCHEMA), 0
        )
    merged = pl.concat(kept).sort([TIME, "_file_order", "line"], maintain_order=True)
    # Rows are sorted by time, then file order, then line: the first row of each time is
    # the keeper, and forward-filling its values gives every duplicate its keeper.
    merged = merged.with_columns(_dup=(pl.col(TIME) == pl.col(TIME).shift(1)).fill_null(False))
    merged = merged.with_columns(
        [
            pl.when(~pl.col("_dup")).then(pl.col(c)).forward_fill().alias(f"_kept_{c}")
            for c in ("file", "line", *PRICE_COLUMNS)
        ]
    )
    # Volume and spread are compared where both rows have them (a file without volume does
    # not conflict with one that has it); a struct carries the keeper's nulls through the fill.
    merged = merged.with_columns(
        _kept_extra=pl.when(~pl.col("_dup")).then(pl.struct("volume", "spread")).forward_fill()
    )
    extras = {c: pl.col("_kept_extra").struct.field(c) for c in ("volume", "spread")}
    identical = pl.all_horizontal(
        [pl.col(c) == pl.col(f"_kept_{c}") for c in PRICE_COLUMNS]
        + [pl.col(c).is_null() | kept.is_null() | (pl.col(c) == kept) for c, kept in extras.items()]
    )
    duplicates = merged.filter(pl.col("_dup")).select(
        "file",
        "line",
        pl.lit(QuarantineReason.DUPLICATE_TIMESTAMP.value).alias("reason"),
        pl.format(
            "{} time {} already at {}:{}",
            pl.when(identical).then(pl.lit("identical bar,")).otherwise(pl.lit("conflicting bar,")),
            pl.col(TIME).dt.to_string("%Y-%m-%d %H:%M:%S UTC"),
            "_kept_file",
            "_kept_line",
        ).alias("detail"),
        "raw",
    )
    bars = merged.filter(~pl.col("_dup")).select([pl.col(c).cast(t) for c, t in M1_SCHEMA.items()])
    quarantine = pl.concat([*rejected, duplicates]).select(
        [pl.col(c).cast(t) for c, t in QUARANTINE_SCHEMA.items()]
    )
    assert bars.height + quarantine.height == rows_in, "validation must account for every row"
    return ValidatedBars(bars, quarantine, rows_in, tuple(notes))


def _row_rules(policy: ValidationPolicy) -> list[tuple[QuarantineReason, pl.Expr, pl.Expr]]:
    """(reason, failing-row predicate, detail) in the order rules are applied."""
    o, h, lo, c = (pl.col(n) for n in PRICE_COLUMNS)
    # is_finite is false for NaN and +-inf; a null stays null, hence the explicit check.
    absent = {n: pl.col(n).is_null() | ~pl.col(n).is_finite() for n in PRICE_COLUMNS}
    missing = pl.any_horizontal(list(absent.values()))
    missing_names = pl.concat_str(
        [pl.when(absent[n]).then(pl.lit(n)) for n in PRICE_COLUMNS],
        separator=",",
        ignore_nulls=True,
    )
    rules = [
        (QuarantineReason.UNPARSEABLE, pl.col("error").is_not_null(), pl.col("error")),
        (
            QuarantineReason.MISSING_VALUE,
            missing,
            pl.format("missing or non-finite {}", missing_names),
        ),
        (
            QuarantineReason.NON_POSITIVE_PRICE,
            pl.min_horizontal(o, h, lo, c) <= 0,
            pl.format("open={} high={} low={} close={}", o, h, lo, c),
        ),
        (
            QuarantineReason.HIGH_BELOW_OPEN_CLOSE,
            h < pl.max_horizontal(o, c),
            pl.format("high={} < max(open={}, close={})", h, o, c),
        ),
        (
            QuarantineReason.LOW_ABOVE_OPEN_CLOSE,
            lo > pl.min_horizontal(o, c),
            pl.format("low={} > min(open={}, close={})", lo, o, c),
        ),
        (
            QuarantineReason.NEGATIVE_VOLUME,
            pl.col("volume") < 0,
            pl.format("volume={}", pl.col("volume")),
        ),
        (
            QuarantineReason.NEGATIVE_SPREAD,
            pl.col("spread") < 0,
            pl.format("spread={}", pl.col("spread")),
        ),
    ]
    if policy.reject_weekend_closure:
        rules.append(
            (
                QuarantineReason.WEEKEND_CLOSURE,
                in_weekend_closure(pl.col(TIME)),
                pl.format(
                    "{} is inside the Friday 17:00 - Sunday 17:00 New York closure; "
                    "if many rows say this, check the file's source timezone",
                    pl.col(TIME).dt.to_string("%Y-%m-%d %H:%M UTC"),
                ),
            )
        )
    return rules


def _validate_one(
    parsed: ParsedFile, policy: ValidationPolicy
) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    rows = parsed.rows.with_columns(file=pl.lit(str(parsed.path)))
    reason: pl.Expr = pl.lit(None, pl.String)
    detail: pl.Expr = pl.lit(None, pl.String)
    # Apply rules in reverse so that the first failing rule wins.
    for rule_reason, failing, rule_detail in reversed(_row_rules(policy)):
        hit = failing.fill_null(False)
        reason = pl.when(hit).then(pl.lit(rule_reason.value)).otherwise(reason)
        detail = pl.when(hit).then(rule_detail).otherwise(detail)
    rows = rows.with_columns(reason=reason, detail=detail)
    bad = rows.filter(pl.col("reason").is_not_null())
    good = rows.filter(pl.col("reason").is_null())

    notes: tuple[str, ...] = ()
    times = good.get_column(TIME).dt.epoch("us").to_numpy()
    if times.size > 1 and np.all(np.diff(times) <= 0) and times[0] != times[-1]:
        good = good.reverse()
        times = times[::-1].copy()
        notes = ("rows are newest-first; read in reverse order",)
    if times.size > 1 and np.any(np.diff(times) < 0):
        in_order = _longest_non_decreasing(times)
        out_of_order = good.filter(pl.Series(~in_order)).with_columns(
            reason=pl.lit(QuarantineReason.NON_MONOTONIC.value),
            detail=pl.format(
                "time {} is out of order with the surrounding rows",
                pl.col(TIME).dt.to_string("%Y-%m-%d %H:%M:%S UTC"),
            ),
        )
        bad = pl.concat([bad, out_of_order])
        good = good.filter(pl.Series(in_order))
    if policy.reject_weekend_closure:
        weekend = int((bad.get_column("reason") == QuarantineReason.WEEKEND_CLOSURE.value).sum())
        if weekend > 0.2 * max(1, parsed.rows.height):
            notes += (
                f"{weekend} of {parsed.rows.height} rows fall in the weekend closure: the source "
                f"timezone {parsed.timezone!r} is probably wrong for this file",
            )
    quarantine = bad.select([pl.col(c) for c in QUARANTINE_SCHEMA])
    return good, quarantine, notes


@numba.njit(cache=True)
def _longest_non_decreasing(values: np.ndarray) -> np.ndarray:
    """Mask of one longest non-decreasing subsequence (patience sorting, O(n log n))."""
    n = values.size
    tails = np.empty(n, dtype=np.int64)  # index of the smallest tail of each length
    previous = np.full(n, -1, dtype=np.int64)
    length = 0
    for i in range(n):
        # First tail strictly greater than values[i] (upper bound keeps equal values).
        lo, hi = 0, length
        while lo < hi:
            mid = (lo + hi) // 2
            if values[tails[mid]] <= values[i]:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            previous[i] = tails[lo - 1]
        tails[lo] = i
        if lo == length:
            length += 1
    keep = np.zeros(n, dtype=np.bool_)
    k = tails[length - 1]
    while k >= 0:
        keep[k] = True
        k = previous[k]
    return keep
