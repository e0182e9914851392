"""Column hygiene: uninformative feature columns are dropped with a reason, warm-up rows
are trimmed, and every value that survives is exactly the value that came in."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forex_assets.features.hygiene import (
    DEFAULT_MAX_WARMUP_SHARE,
    DroppedColumn,
    HygieneReport,
    clean_feature_columns,
    missing_share,
)
from forex_assets_tests.conftest import utc

NAN = float("nan")
ROWS = 100


def times(n: int) -> pl.Series:
    start = utc(2024, 1, 8)
    return pl.Series(
        "time", [start + i * timedelta(minutes=5) for i in range(n)], dtype=pl.Datetime("us", "UTC")
    )


def warmed(n: int, warmup: int, seed: int) -> list[float]:
    values = np.random.default_rng(seed).normal(size=n)
    values[:warmup] = np.nan
    return values.tolist()


def sample_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "time": times(ROWS),
            "symbol": ["EURUSD"] * ROWS,
            "empty": [NAN] * ROWS,
            "flat": [1.25] * ROWS,
            "slow": warmed(ROWS, 11, 1),  # beyond 10% of 100 rows
            "fast": warmed(ROWS, 3, 2),
            "medium": warmed(ROWS, 7, 3),
            "clean": warmed(ROWS, 0, 4),
        }
    )


FEATURES = ["empty", "flat", "slow", "fast", "medium", "clean"]


def test_drops_with_reasons_and_trims_warm_up():
    frame = sample_frame()
    out, report = clean_feature_columns(frame, FEATURES, max_warmup_share=0.1)
    reasons = {d.column: d.reason for d in report.dropped}
    assert reasons == {"empty": "all_missing", "flat": "constant", "slow": "warmup_too_long"}
    assert out.columns == ["time", "symbol", "fast", "medium", "clean"]
    assert report.rows_in == ROWS
    assert report.warmup_rows == 7
    assert report.warmup_column == "medium"
    assert report.rows_out == ROWS - 7
    assert out.height == ROWS - 7


def test_surviving_values_are_the_input_values():
    frame = sample_frame()
    out, _ = clean_feature_columns(frame, FEATURES, max_warmup_share=0.1)
    expected = frame.select(["time", "symbol", "fast", "medium", "clean"]).slice(7)
    assert out.equals(expected)
    # Bit for bit, not merely close.
    for column in ("fast", "medium", "clean"):
        assert out[column].to_numpy().tobytes() == frame[column].slice(7).to_numpy().tobytes()
    assert out.schema == expected.schema


def test_non_feature_columns_are_kept_untouched():
    frame = sample_frame().with_columns(pl.lit(NAN).alias("note"))
    out, report = clean_feature_columns(frame, FEATURES, max_warmup_share=0.1)
    # "note" is all-NaN but not a feature column: kept, only sliced.
    assert "note" in out.columns
    assert out["time"].to_list() == frame["time"].slice(7).to_list()
    assert out["symbol"].to_list() == ["EURUSD"] * (ROWS - 7)
    assert all(d.column != "note" for d in report.dropped)


def test_warm_up_limit_is_inclusive():
    frame = pl.DataFrame({"at_limit": warmed(ROWS, 10, 5), "over": warmed(ROWS, 11, 6)})
    out, report = clean_feature_columns(frame, ["at_limit", "over"], max_warmup_share=0.1)
    assert out.columns == ["at_limit"]
    assert report.warmup_rows == 10
    assert [(d.column, d.reason) for d in report.dropped] == [("over", "warmup_too_long")]
    assert "row 11 of 100" in report.dropped[0].detail


def test_null_counts_as_missing():
    frame = pl.DataFrame(
        {
            "nulls": pl.Series([None] * 10, dtype=pl.Float64),
            "mixed": [None, NAN, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )
    out, report = clean_feature_columns(frame, ["nulls", "mixed"], max_warmup_share=0.5)
    assert [(d.column, d.reason) for d in report.dropped] == [("nulls", "all_missing")]
    assert report.warmup_rows == 2
    assert report.warmup_column == "mixed"
    assert out["mixed"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_constant_after_warm_up_is_constant():
    # Varies only in rows the warm-up trims: no information left in what is kept.
    frame = pl.DataFrame(
        {
            "settles": [3.0, 4.0] + [5.0] * 18,
            "feature": warmed(20, 2, 7),
        }
    )
    out, report = clean_feature_columns(frame, ["settles", "feature"], max_warmup_share=0.2)
    assert out.columns == ["feature"]
    assert report.dropped == (DroppedColumn("settles", "constant", "5 on every row with a value"),)


def test_constant_with_missing_values_is_constant():
    frame = pl.DataFrame({"flat": [NAN, 2.0, NAN, 2.0, 2.0], "x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    out, report = clean_feature_columns(frame, ["flat", "x"], max_warmup_share=0.5)
    assert [(d.column, d.reason) for d in report.dropped] == [("flat", "constant")]
    assert report.warmup_rows == 1
    assert out.equals(frame.select("x").slice(1))


def test_no_warm_up_reports_no_warm_up_column():
    frame = pl.DataFrame({"a": [1.0, 2.0, 3.0], "b": [3.0, 1.0, 2.0]})
    out, report = clean_feature_columns(frame, ["a", "b"])
    assert out.equals(frame)
    assert report == HygieneReport(3, 0, None, ())
    assert report.dropped_table() == "no column dropped"


def test_no_feature_columns_changes_nothing():
    frame = sample_frame()
    out, report = clean_feature_columns(frame, [])
    assert out.equals(frame)
    assert report == HygieneReport(ROWS, 0, None, ())


def test_all_dropped_keeps_other_columns_and_all_rows():
    frame = pl.DataFrame({"time": times(5), "empty": [NAN] * 5, "flat": [1.0] * 5})
    out, report = clean_feature_columns(frame, ["empty", "flat"])
    assert out.equals(frame.select("time"))
    assert report.warmup_rows == 0
    assert report.warmup_column is None


def test_dropped_table_lists_every_dropped_column():
    _, report = clean_feature_columns(sample_frame(), FEATURES, max_warmup_share=0.1)
    table = report.dropped_table().splitlines()
    assert table[0] == "| column | reason | detail |"
    assert len(table) == 2 + 3
    for d in report.dropped:
        assert any(line.startswith(f"| {d.column} | {d.reason} |") for line in table)


def test_zero_share_allows_no_warm_up():
    frame = pl.DataFrame({"a": [NAN, 1.0, 2.0], "b": [1.0, 2.0, 3.0]})
    out, report = clean_feature_columns(frame, ["a", "b"], max_warmup_share=0.0)
    assert out.equals(frame.select("b"))
    assert [(d.column, d.reason) for d in report.dropped] == [("a", "warmup_too_long")]


def test_default_share():
    assert DEFAULT_MAX_WARMUP_SHARE == 0.1
    frame = pl.DataFrame({"a": warmed(ROWS, 10, 8), "b": warmed(ROWS, 11, 9)})
    out, _ = clean_feature_columns(frame, ["a", "b"])
    assert out.columns == ["a"]


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5, NAN])
def test_share_outside_unit_interval_raises(share):
    frame = pl.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="max_warmup_share") as raised:
        clean_feature_columns(frame, ["a"], max_warmup_share=share)
    assert repr(share) in str(raised.value)


def test_column_with_values_only_inside_the_warm_up_is_dropped():
    frame = pl.DataFrame({"early": [1.0, 2.0] + [NAN] * 18, "late": warmed(20, 2, 10)})
    out, report = clean_feature_columns(frame, ["early", "late"], max_warmup_share=0.2)
    assert out.columns == ["late"]
    assert [d.column for d in report.dropped] == ["early"]


# --- missing_share ---------------------------------------------------------------------


def test_missing_share_counts_nan_and_null():
    frame = pl.DataFrame(
        {
            "a": [1.0, None, NAN, 4.0],
            "b": [NAN, 2.0, 3.0, 4.0],
            "c": [1.0, 2.0, 3.0, 4.0],
        }
    )
    assert missing_share(frame, ["a", "b"]) == pytest.approx(3 / 8)
    assert missing_share(frame, ["a"]) == pytest.approx(2 / 4)
    assert missing_share(frame, ["c"]) == 0.0
    assert missing_share(frame, ["a", "b", "c"]) == pytest.approx(3 / 12)


def test_missing_share_of_nothing_is_zero():
    frame = pl.DataFrame({"a": [NAN, NAN]})
    assert missing_share(frame, []) == 0.0
    assert missing_share(frame.clear(), ["a"]) == 0.0
    assert missing_share(frame, ["a"]) == 1.0


# --- property ---------------------------------------------------------------------------


@st.composite
def feature_frames(draw):
    rows = draw(st.integers(1, 40))
    n_columns = draw(st.integers(0, 6))
    columns = {}
    for k in range(n_columns):
        kind = draw(st.sampled_from(["varying", "constant", "empty", "null_prefix"]))
        prefix = draw(st.integers(0, rows))
        if kind == "empty":
            values = [NAN] * rows
        elif kind == "constant":
            value = draw(st.floats(-1e6, 1e6))
            values = [NAN] * prefix + [value] * (rows - prefix)
        else:
            body = draw(
                st.lists(
                    st.floats(-1e6, 1e6, allow_nan=False),
                    min_size=rows - prefix,
                    max_size=rows - prefix,
                )
            )
            fill = None if kind == "null_prefix" else NAN
            values = [fill] * prefix + body
        columns[f"f{k}"] = pl.Series(values, dtype=pl.Float64)
    share = draw(st.floats(0.0, 0.99))
    frame = pl.DataFrame({"time": times(rows), **columns})
    return frame, list(columns), share


def _first_present(series: pl.Series) -> int | None:
    values = series.fill_null(NAN).to_numpy()
    present = np.flatnonzero(~np.isnan(values))
    return int(present[0]) if present.size else None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feature_frames())
def test_output_is_input_sliced_and_selected(case):
    frame, features, share = case
    out, report = clean_feature_columns(frame, features, max_warmup_share=share)
    dropped = {d.column: d.reason for d in report.dropped}
    kept = [c for c in frame.columns if c not in dropped]
    assert out.equals(frame.select(kept).slice(report.warmup_rows))
    assert report.rows_out == out.height
    assert "time" in out.columns

    # Independent oracle for the warm-up and each drop reason.
    allowed = int(share * frame.height)
    firsts = {c: _first_present(frame[c]) for c in features}
    short = {c: f for c, f in firsts.items() if f is not None and f <= allowed}
    warmup = max(short.values(), default=0)
    assert report.warmup_rows == warmup
    for column, first in firsts.items():
        if first is None:
            assert dropped[column] == "all_missing"
        elif first > allowed:
            assert dropped[column] == "warmup_too_long"
        elif len(set(frame[column].slice(warmup).drop_nulls().drop_nans().to_list())) == 1:
            assert dropped[column] == "constant"
        else:
            assert column not in dropped
    if warmup:
        assert report.warmup_column in short and short[report.warmup_column] == warmup
    else:
        assert report.warmup_column is None

    if out.height:
        first_row = out.row(0, named=True)
        for column in kept:
            if column in features:
                assert first_row[column] is not None
                assert not np.isnan(first_row[column])
