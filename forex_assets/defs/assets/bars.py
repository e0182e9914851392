"""Bars: a symbol's bar files, its validated M1 bars and their quarantine record, and the
eleven timeframes."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from forex_assets.compute.plan import Pool
from forex_assets.defs.checks import bar_check_results, bar_check_specs
from forex_assets.defs.keys import BAR_FILES, DATA_GROUP, M1_BARS, timeframe_bars_key
from forex_assets.defs.resources import BarSourceResource, MarketCalendarResource
from forex_assets.market.bar_schema import TIME
from forex_assets.market.resample import resample_bars
from forex_assets.market.timeframes import Timeframe
from forex_assets.partitions import symbol_partitions


def _span_metadata(bars: pl.DataFrame) -> dict[str, object]:
    if bars.height == 0:
        return {"first_bar": "none", "last_bar": "none"}
    times = bars.get_column(TIME)
    return {"first_bar": str(times.min()), "last_bar": str(times.max())}


# Not materialized by Dagster: the files are whatever the data directory holds. The
# `inbox_ingest` job records a materialization of a symbol's partition each time it takes
# files in for it, which the `inbox_refresh` sensor answers with a refresh of the symbol.
bar_files = dg.AssetSpec(
    BAR_FILES,
    partitions_def=symbol_partitions,
    group_name=DATA_GROUP,
    kinds={"file"},
    description=(
        "A symbol's bar files in the data directory, in any format `python -m forex_assets "
        "formats` lists, in a folder named after the symbol or with the symbol in the file "
        "name. Materialized when the data inbox takes new files in for the symbol."
    ),
)


@dg.multi_asset(
    deps=[BAR_FILES],
    outs={
        "m1_bars": dg.AssetOut(
            description=(
                "Validated, de-duplicated M1 OHLCV bars in UTC, from the symbol's files in the "
                "data directory or, when it has none, the embedded sample generator."
            ),
            kinds={"polars", "parquet"},
        ),
        "m1_quarantine": dg.AssetOut(
            description="Every rejected input row: file, line, reason, detail and the raw text.",
            kinds={"polars", "parquet"},
        ),
    },
    partitions_def=symbol_partitions,
    group_name=DATA_GROUP,
    check_specs=bar_check_specs(M1_BARS),
)
def m1_bars(
    context: dg.AssetExecutionContext,
    bar_source: BarSourceResource,
    market_calendar: MarketCalendarResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    symbol = context.partition_key
    loaded = bar_source.load(symbol, context.log.info)
    validated = loaded.validated
    for note in validated.notes:
        context.log.warning(note)
    reasons = validated.reason_counts()
    yield dg.Output(
        validated.bars,
        output_name="m1_bars",
        metadata={
            "source": loaded.source,
            "rows_in": validated.rows_in,
            "rows_kept": validated.bars.height,
            "rows_quarantined": validated.quarantine.height,
            "quarantine_by_reason": dg.MetadataValue.json(reasons),
            "files": dg.MetadataValue.md(_files_table(loaded.files))
            if loaded.files
            else "sample generator",
            "notes": dg.MetadataValue.json(list(validated.notes)),
            **_span_metadata(validated.bars),
        },
    )
    yield dg.Output(
        validated.quarantine,
        output_name="m1_quarantine",
        metadata={
            "rows_quarantined": validated.quarantine.height,
            **{f"reason/{k}": v for k, v in reasons.items()},
        },
    )
    yield from bar_check_results(M1_BARS, validated.bars, Timeframe.M1, market_calendar.calendar)


def _files_table(rows: list[dict]) -> str:
    header = "| file | format | timezone | rows | quarantined |\n|---|---|---|---:|---:|\n"
    return header + "\n".join(
        f"| {r['file']} | {r['format']} | {r['timezone']} | {r['rows']} | {r['quarantined']} |"
        for r in rows
    )


def build_timeframe_bars(timeframe: Timeframe) -> dg.AssetsDefinition:
    """One asset (and one step in pool `tf_loads`) per timeframe, resampled from M1."""
    key = timeframe_bars_key(timeframe)

    @dg.asset(
        key=key,
        ins={"m1": dg.AssetIn(M1_BARS)},
        partitions_def=symbol_partitions,
        group_name=DATA_GROUP,
        pool=Pool.TF_LOADS.value,
        check_specs=bar_check_specs(key),
        kinds={"polars", "parquet"},
        description=(
            f"{timeframe.value} bars resampled from M1 on the FX session clock (daily close "
            "per the market calendar). The last bar is marked complete=false when its period "
            "had not elapsed when the data ended."
        ),
    )
    def timeframe_bars(
        context: dg.AssetExecutionContext, m1: pl.DataFrame, market_calendar: MarketCalendarResource
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        calendar = market_calendar.calendar
        bars = resample_bars(m1, timeframe, calendar)
        incomplete = bars.height - int(bars.get_column("complete").sum())
        yield dg.Output(
            bars,
            metadata={
                "timeframe": timeframe.value,
                "day_close": calendar.day_close.value,
                "bars": bars.height,
                "incomplete_bars": incomplete,
                **_span_metadata(bars),
            },
        )
        yield from bar_check_results(key, bars, timeframe, calendar)

    return timeframe_bars


timeframe_bars_assets = [build_timeframe_bars(tf) for tf in Timeframe]
