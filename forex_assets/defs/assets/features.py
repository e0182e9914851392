"""Features: the indicator set per timeframe, and the labeled feature matrix per symbol."""

from collections.abc import Sequence

import dagster as dg
import polars as pl

from forex_assets.compute.plan import Pool
from forex_assets.defs.assets.markdown import markdown_table
from forex_assets.defs.keys import (
    FEATURE_MATRIX,
    FEATURES_GROUP,
    timeframe_bars_key,
    timeframe_features_key,
)
from forex_assets.features.feature_config import FeatureSettings
from forex_assets.features.feature_matrix import (
    KEY_COLUMNS,
    build_feature_matrix,
    higher_timeframes,
)
from forex_assets.features.hygiene import HygieneReport, clean_feature_columns, missing_share
from forex_assets.features.indicator_set import compute_indicators
from forex_assets.market.timeframes import Timeframe
from forex_assets.partitions import symbol_partitions

PREVIEW_ROWS = 5
PREVIEW_COLUMNS = 8


def _markdown_preview(frame: pl.DataFrame, columns: Sequence[str]) -> str:
    """The last rows of `columns` as a markdown table (the last rows are past warm-up)."""
    return markdown_table(frame.select(columns).tail(PREVIEW_ROWS), digits=6)


def _feature_metadata(
    frame: pl.DataFrame, features: Sequence[str], hygiene: HygieneReport
) -> dict[str, object]:
    preview = [c for c in KEY_COLUMNS if c in frame.columns][:2] + list(features[:PREVIEW_COLUMNS])
    return {
        "rows": frame.height,
        "feature_columns": len(features),
        "nan_share": round(missing_share(frame, features), 6),
        "warmup_rows_trimmed": hygiene.warmup_rows,
        "warmup_set_by": hygiene.warmup_column or "none",
        "columns_dropped": len(hygiene.dropped),
        "dropped_columns": dg.MetadataValue.md(hygiene.dropped_table()),
        "preview": dg.MetadataValue.md(_markdown_preview(frame, preview)),
    }


def build_timeframe_features(
    timeframe: Timeframe, settings: FeatureSettings
) -> dg.AssetsDefinition:
    """One asset, and one step in pool `features`, per timeframe."""

    @dg.asset(
        key=timeframe_features_key(timeframe),
        ins={"bars": dg.AssetIn(timeframe_bars_key(timeframe))},
        partitions_def=symbol_partitions,
        group_name=FEATURES_GROUP,
        pool=Pool.FEATURES.value,
        kinds={"polars", "parquet"},
        description=(
            f"The configured indicator set on {timeframe.value} bars, float32, with "
            "uninformative columns dropped and warm-up rows trimmed (see metadata). Keeps "
            "close_time and complete so consumers join only finished bars."
        ),
    )
    def timeframe_features(context: dg.AssetExecutionContext, bars: pl.DataFrame) -> dg.Output:
        computed = compute_indicators(bars, settings.indicators, float32=True)
        columns = [c for c in computed.columns if c not in KEY_COLUMNS]
        features, hygiene = clean_feature_columns(computed, columns, settings.max_warmup_share)
        kept = [c for c in features.columns if c not in KEY_COLUMNS]
        context.log.info(
            f"{timeframe.value}: {len(kept)} of {len(columns)} feature columns kept, "
            f"{hygiene.warmup_rows} warm-up rows trimmed"
        )
        return dg.Output(
            features,
            metadata={
                "timeframe": timeframe.value,
                "feature_config": settings.source,
                **_feature_metadata(features, kept, hygiene),
            },
        )

    return timeframe_features


def _class_balance(frame: pl.DataFrame, column: str) -> dict[str, int]:
    counts = frame.get_column(column).drop_nulls().value_counts(sort=False)
    return {str(value): int(count) for value, count in sorted(counts.iter_rows())}


def build_feature_matrix_asset(settings: FeatureSettings) -> dg.AssetsDefinition:
    base = settings.base_timeframe
    timeframes = [base, *higher_timeframes(base)]
    ins = {tf.asset_name: dg.AssetIn(timeframe_features_key(tf)) for tf in timeframes}
    # Bars too: labels need the base bars, the confluence every timeframe's closes.
    ins |= {f"bars_{tf.asset_name}": dg.AssetIn(timeframe_bars_key(tf)) for tf in timeframes}

    @dg.asset(
        key=FEATURE_MATRIX,
        ins=ins,
        partitions_def=symbol_partitions,
        group_name=FEATURES_GROUP,
        kinds={"polars", "parquet"},
        description=(
            f"One row per completed {base.value} bar: its features plus every higher "
            "timeframe's as of the last completed higher-timeframe bar (never one still "
            "forming), a cross-timeframe trend confluence, triple-barrier and meta labels "
            "with their end times (t1) for purging."
        ),
    )
    def feature_matrix(context: dg.AssetExecutionContext, **inputs: pl.DataFrame) -> dg.Output:
        bars = {tf: inputs.pop(f"bars_{tf.asset_name}") for tf in timeframes}
        features = {Timeframe.parse(name): frame for name, frame in inputs.items()}
        matrix = build_feature_matrix(features, bars, settings)
        frame = matrix.frame
        return dg.Output(
            frame,
            metadata={
                "base_timeframe": base.value,
                "feature_config": settings.source,
                **_feature_metadata(frame, matrix.feature_columns, matrix.hygiene),
                "label_columns": dg.MetadataValue.json(list(matrix.label_columns)),
                "unlabeled_rows_dropped": matrix.unlabeled_rows,
                "triple_barrier_balance": dg.MetadataValue.json(_class_balance(frame, "tb_label")),
                "meta_label_balance": dg.MetadataValue.json(_class_balance(frame, "meta_label")),
                "meta_events": int(frame.get_column("meta_side").is_not_null().sum()),
                "label_settings": dg.MetadataValue.json(vars(settings.labels)),
            },
        )

    return feature_matrix


def feature_assets(settings: FeatureSettings) -> list[dg.AssetsDefinition]:
    return [
        *(build_timeframe_features(tf, settings) for tf in Timeframe),
        build_feature_matrix_asset(settings),
    ]
