"""Feature engine: the default indicator set on a million M1 bars, and the whole
feature matrix of one symbol from two years of M1 bars.

Indicators: `compute_indicators(bars, default_indicators())` against two anchors that
compute the same 68 columns:

- TA-Lib called directly (`forex_assets_tests.features.talib_reference`, the parity
  reference: one TA-Lib call per indicator, plus numpy/pandas for what TA-Lib lacks);
- the pure-pandas `ta` package (`bench.ta_anchor`), what a `ta` user would write.

Before timing, ours must equal the TA-Lib reference to 1e-9 relative on every column
and agree with `ta` after warm-up; the `ta` anchor runs once (it takes minutes).

Feature matrix: a fresh process reads two years of M1 bars from Parquet, resamples all
eleven timeframes, computes the features of each (float32, hygiene applied, as the
`features/<tf>` assets do) and builds the labeled `feature_matrix`; wall time and the
process's peak resident memory are reported against the targets (60 s, 2 GB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from bench.harness import (
    BenchConfig,
    BenchResult,
    BenchRow,
    Measurement,
    check,
    measure,
    warm_and_check,
)
from bench.ta_anchor import ta_indicator_set, ta_matches
from forex_assets.features.feature_config import default_indicators
from forex_assets.features.indicator_set import compute_indicators, feature_columns
from forex_assets.ingest.sample import generate_sample_m1
from forex_assets_tests.features.talib_reference import talib_indicators, talib_reference

DESCRIPTION = "default indicator set on 1M M1 bars vs TA-Lib and ta; feature_matrix wall/memory"

INDICATOR_BARS = 1_000_000
# Years of sample M1 bars that hold at least INDICATOR_BARS rows.
INDICATOR_YEARS = 2.7
TA_AGREEMENT = 1e-3
MATRIX_TARGET_S = 60.0
MATRIX_TARGET_BYTES = 2 * 2**30


def _bench_indicators(config: BenchConfig, result: BenchResult) -> None:
    bars = generate_sample_m1(config.symbol, years=INDICATOR_YEARS).head(INDICATOR_BARS)
    n = bars.height
    check(n == INDICATOR_BARS, f"needed {INDICATOR_BARS:,} bars, the generator gave {n:,}")
    specs = default_indicators()
    columns = feature_columns(specs)

    def ours() -> pl.DataFrame:
        return compute_indicators(bars, specs)

    def talib_direct() -> dict[str, np.ndarray]:
        return talib_reference(bars)

    computed = warm_and_check(ours, config)
    reference = warm_and_check(talib_direct, config)
    check(list(reference) == columns, "the TA-Lib reference computes other columns than ours")
    for column in columns:
        a, b = computed.get_column(column).to_numpy(), reference[column]
        check(bool(np.array_equal(np.isnan(a), np.isnan(b))), f"{column}: NaN positions differ")
        valid = ~np.isnan(b)
        np.testing.assert_allclose(a[valid], b[valid], rtol=1e-9, atol=1e-12, err_msg=column)
    result.checks.append(
        f"ours equals TA-Lib called directly on all {len(columns)} columns of the default set "
        "(rtol 1e-9, identical warm-up NaNs)"
    )
    ours_time = measure(ours, n, config, warmed=True)
    result.rows.append(
        BenchRow(
            f"default set ({len(columns)} columns), {n:,} M1 bars",
            ours_time,
            measure(talib_direct, n, config, warmed=True),
            "TA-Lib called directly, numpy/pandas for the rest",
        )
    )

    _bench_talib_subset(bars, specs, config, result)
    frame = bars.to_pandas()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    theirs = ta_indicator_set(frame, specs, timings)
    ta_seconds = time.perf_counter() - started
    agreement = ta_matches({c: computed.get_column(c).to_numpy() for c in columns}, theirs)
    worst = max(agreement, key=agreement.__getitem__)
    check(
        agreement[worst] < TA_AGREEMENT,
        f"the ta anchor disagrees on {worst}: median relative difference {agreement[worst]:.2e}",
    )
    result.checks.append(
        f"the ta anchor agrees with ours on every column after warm-up (worst median relative "
        f"difference {agreement[worst]:.1e}, {worst})"
    )
    result.rows.append(
        BenchRow(
            f"default set ({len(columns)} columns), {n:,} M1 bars",
            ours_time,
            Measurement(ta_seconds, n, (ta_seconds,)),
            "the pure-pandas ta package (run once)",
        )
    )
    slowest = sorted(timings.items(), key=lambda item: -item[1])[:4]
    result.notes.append(
        "ta anchor's slowest indicators: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in slowest)
        + " (ta loops in Python for WMA, CCI, ATR and ADX)"
    )


def _bench_talib_subset(
    bars: pl.DataFrame, specs: list, config: BenchConfig, result: BenchResult
) -> None:
    """Only the indicators TA-Lib has: what wrapping TA-Lib costs, with nothing else mixed in."""
    subset = [spec for spec in specs if spec.indicator.talib_reference]
    columns = feature_columns(subset)

    def ours() -> pl.DataFrame:
        return compute_indicators(bars, subset)

    def talib_direct() -> dict[str, np.ndarray]:
        return talib_indicators(bars)

    computed = warm_and_check(ours, config)
    reference = warm_and_check(talib_direct, config)
    check(list(reference) == columns, "the TA-Lib subset computes other columns than ours")
    result.rows.append(
        BenchRow(
            f"TA-Lib's own indicators only ({len(columns)} columns)",
            measure(ours, bars.height, config, warmed=True),
            measure(talib_direct, bars.height, config, warmed=True),
            "one TA-Lib call per indicator",
        )
    )
    check(computed.width == len(columns) + 1, "ours returned other columns for the subset")


def _bench_matrix(config: BenchConfig, result: BenchResult) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        m1_path = Path(tmp) / "m1.parquet"
        generate_sample_m1(config.symbol, years=config.years).write_parquet(m1_path)
        code = (
            "import json, sys; from bench.feature_chain import build_matrix_from_parquet; "
            "print(json.dumps(build_matrix_from_parquet(sys.argv[1])))"
        )
        samples = []
        for _ in range(max(1, config.repeats)):
            process = subprocess.run(
                [sys.executable, "-c", code, str(m1_path)],
                capture_output=True,
                text=True,
                check=False,
                cwd=Path(__file__).resolve().parents[1],
            )
            check(process.returncode == 0, f"feature chain failed: {process.stderr[-2000:]}")
            samples.append(json.loads(process.stdout.strip().splitlines()[-1]))
    best = min(samples, key=lambda s: s["seconds"])
    peak = max(s["peak_rss_bytes"] for s in samples)
    check(best["rows"] > 0, "the feature matrix came out empty")
    result.rows.append(
        BenchRow(
            f"feature_matrix from {best['m1_rows']:,} M1 bars, 11 timeframes",
            Measurement(best["seconds"], best["m1_rows"], tuple(s["seconds"] for s in samples)),
            anchor_does=f"target < {MATRIX_TARGET_S:.0f} s and < 2 GB; no anchor",
        )
    )
    result.notes.append(
        f"feature_matrix: {best['rows']:,} rows x {best['feature_columns']} feature columns; "
        f"wall {best['seconds']:.1f} s (target {MATRIX_TARGET_S:.0f} s, "
        f"{'met' if best['seconds'] < MATRIX_TARGET_S else 'MISSED'}); peak resident memory of "
        f"the process {peak / 2**30:.2f} GiB (target 2 GiB, "
        f"{'met' if peak < MATRIX_TARGET_BYTES else 'MISSED'}), Python and libraries included"
    )


def run(config: BenchConfig) -> BenchResult:
    result = BenchResult(
        name="features", title="indicator kernels and the feature matrix", unit="bars"
    )
    # The matrix chain first, while this process is small (see feature_chain on memory).
    _bench_matrix(config, result)
    _bench_indicators(config, result)
    result.notes.append(
        "ours = compute_indicators (TA-Lib for what TA-Lib has, shared EMA/ATR/returns, numba "
        "EWMA volatility, session flags from each zone's offset transitions); single-threaded "
        "like both anchors"
    )
    return result
