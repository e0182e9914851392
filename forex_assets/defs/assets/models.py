"""Validation and models: CPCV folds, and every model type trained per split with OOF paths."""

from collections.abc import Sequence

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from forex_assets.code_version import code_version
from forex_assets.compute.elastic_pool import TASKS_METADATA, task_shape_summary
from forex_assets.compute.plan import Pool
from forex_assets.defs.assets.markdown import markdown_image, markdown_table
from forex_assets.defs.keys import (
    CPCV_FOLDS,
    DEFLATED_SHARPE_RATIO,
    FEATURE_MATRIX,
    MODELS_GROUP,
    PBO,
    TRAINED_MODELS,
    VALIDATION_GROUP,
    timeframe_bars_key,
)
from forex_assets.defs.resources import (
    DuckDBCatalogResource,
    MarketCalendarResource,
    ModelStoreResource,
)
from forex_assets.features.feature_config import FeatureSettings
from forex_assets.features.feature_matrix import matrix_feature_columns
from forex_assets.market.bar_schema import TIME
from forex_assets.market.instruments import instrument_for
from forex_assets.models.cpcv_training import BLEND, CpcvTraining, train_on_cpcv
from forex_assets.models.dataset import PROBABILITY_COLUMNS, TrainingData
from forex_assets.models.plots import curves_of_path, equity_png
from forex_assets.models.registry import model_spec, model_specs
from forex_assets.models.signal_trading import round_trip_cost
from forex_assets.models.stacking import BLENDER_FORMAT
from forex_assets.models.training import FINAL_REFIT, SplitResult, TrainingSettings, split_name
from forex_assets.partitions import symbol_partitions
from forex_assets.storage.model_ledger import ModelRecord, record_models
from forex_assets.validation.cpcv import (
    CpcvSettings,
    combinatorial_purged_cv,
    fold_membership,
    path_table,
    plan_from_membership,
    split_table,
)

TOP_FEATURES = 20


class CpcvConfig(dg.Config):
    n_groups: int = 6
    test_groups: int = 2
    embargo_share: float = 0.01


class TrainingConfig(dg.Config):
    models: list[str] = Field(
        default=[spec.name for spec in model_specs()],
        description="The model types to train and blend (modules of forex_assets.models.types).",
    )
    seed: int = 7
    fallback_cost_pips: float = 1.0
    commission: float = 0.0


@dg.asset(
    key=CPCV_FOLDS,
    ins={"matrix": dg.AssetIn(FEATURE_MATRIX)},
    partitions_def=symbol_partitions,
    group_name=VALIDATION_GROUP,
    kinds={"polars", "parquet"},
    description=(
        "Combinatorial purged cross-validation of the feature matrix: each row's group and "
        "its role in every split (1 test, 0 train, -1 purged, -2 embargoed). Purging uses "
        "the labels' end times (t1); the path table is in the metadata."
    ),
)
def cpcv_folds(
    context: dg.AssetExecutionContext, config: CpcvConfig, matrix: pl.DataFrame
) -> dg.Output:
    settings = CpcvSettings(
        n_groups=config.n_groups,
        test_groups=config.test_groups,
        embargo_share=config.embargo_share,
    )
    t0 = matrix.get_column("close_time").dt.epoch("us").to_numpy()
    t1 = matrix.get_column("tb_t1").dt.epoch("us").to_numpy()
    plan = combinatorial_purged_cv(t0, t1, settings)
    membership = pl.concat([matrix.select(TIME), fold_membership(plan)], how="horizontal")
    splits = split_table(plan)
    context.log.info(f"{len(plan.splits)} splits, {plan.n_paths} paths over {t0.size} rows")
    return dg.Output(
        membership,
        metadata={
            "n_groups": settings.n_groups,
            "test_groups": settings.test_groups,
            "splits": len(plan.splits),
            "paths": plan.n_paths,
            "rows": t0.size,
            "purged_rows_total": int(splits.get_column("purged").sum()),
            "embargoed_rows_total": int(splits.get_column("embargoed").sum()),
            "split_table": dg.MetadataValue.md(markdown_table(splits)),
            "path_table": dg.MetadataValue.md(
                markdown_table(
                    path_table(plan)
                    .pivot("group", index="path", values="split")
                    .rename(lambda c: c if c == "path" else f"group {c}")
                )
            ),
        },
    )


def _importance_table(results: Sequence[SplitResult]) -> str:
    """Each model type's importance share per feature over all splits (for the types that
    measure one), the features ranked by their mean share."""
    rows = [
        (model, feature, value)
        for result in results
        for model, importance in result.importance.items()
        for feature, value in importance.items()
    ]
    if not rows:
        return "No model type trained measures feature importance."
    frame = (
        pl.DataFrame(rows, schema=["model", "feature", "value"], orient="row")
        .group_by("model", "feature", maintain_order=True)
        .agg(pl.col("value").sum())
        .with_columns(share=pl.col("value") / pl.col("value").sum().over("model"))
        .pivot("model", index="feature", values="share")
    )
    ranked = frame.sort(pl.mean_horizontal(pl.exclude("feature")), descending=True)
    return markdown_table(ranked.head(TOP_FEATURES))


def _ledger_records(symbol: str, run_id: str, trained: CpcvTraining) -> list[ModelRecord]:
    version = code_version()
    summary = {row["model"]: row for row in trained.evaluation.summary.iter_rows(named=True)}
    names = tuple(spec.name for spec in trained.models)

    def record(
        model: str, file_format: str, file: str, split: str, metrics: dict[str, float]
    ) -> ModelRecord:
        features = names if model == BLEND else trained.feature_names
        return ModelRecord(
            symbol, run_id, model, split, file, file_format, features,
            trained.fingerprint, version, metrics,
        )  # fmt: skip

    def fit_metrics(model: str, result: SplitResult) -> dict[str, float]:
        return {
            "validation_loss": result.validation_loss[model],
            "best_iteration": float(result.best_iteration[model]),
            "train_rows": float(result.train_rows),
        }

    def out_of_fold(model: str) -> dict[str, float]:
        return {f"oof_{k}": float(v) for k, v in summary[model].items() if k != "model"}

    records = [
        record(
            spec.name,
            spec.format,
            result.files[spec.name],
            split_name(result.index),
            fit_metrics(spec.name, result)
            | (out_of_fold(spec.name) if result.index == FINAL_REFIT else {}),
        )
        for result in [*trained.results, trained.final]
        for spec in trained.models
    ]
    final = split_name(FINAL_REFIT)
    records.append(
        record(BLEND, BLENDER_FORMAT, str(trained.blender_file), final, out_of_fold(BLEND))
    )
    return records


def _oof_frame(times: pl.Series, path_proba: dict[str, np.ndarray]) -> pl.DataFrame:
    frames = []
    for model, proba in path_proba.items():
        for path in range(proba.shape[0]):
            frames.append(
                pl.DataFrame(
                    {
                        TIME: times,
                        "path": np.full(times.len(), path, dtype=np.int16),
                        "model": np.full(times.len(), model),
                        **{name: proba[path, :, i] for i, name in enumerate(PROBABILITY_COLUMNS)},
                    }
                )
            )
    return pl.concat(frames)


def build_trained_models(settings: FeatureSettings) -> dg.AssetsDefinition:
    base = settings.base_timeframe

    @dg.asset(
        key=TRAINED_MODELS,
        ins={
            "matrix": dg.AssetIn(FEATURE_MATRIX),
            "folds": dg.AssetIn(CPCV_FOLDS),
            "base_bars": dg.AssetIn(timeframe_bars_key(base)),
        },
        partitions_def=symbol_partitions,
        group_name=MODELS_GROUP,
        pool=Pool.TRAINING.value,
        kinds={*(spec.kind for spec in model_specs()), "parquet"},
        description=(
            "Every model type of forex_assets.models.types (LightGBM and a torch MLP) "
            "trained on every CPCV split in parallel within the step's CPU budget (early "
            "stopping on a time-ordered inner slice), a final refit on all rows, and a "
            "time-ordered stacking blender. Stores the out-of-fold probabilities of every "
            "path; model files and the final model go to the model store and the ledger."
        ),
    )
    def trained_models(
        context: dg.AssetExecutionContext,
        config: TrainingConfig,
        model_store: ModelStoreResource,
        duckdb_catalog: DuckDBCatalogResource,
        market_calendar: MarketCalendarResource,
        matrix: pl.DataFrame,
        folds: pl.DataFrame,
        base_bars: pl.DataFrame,
    ) -> dg.Output:
        symbol = context.partition_key
        plan = plan_from_membership(folds)
        run_directory = model_store.run_directory(symbol, context.run.run_id)
        prices = matrix.select(TIME).join(
            base_bars.select(TIME, "close", "spread"), on=TIME, how="left"
        )
        cost = round_trip_cost(
            prices.get_column("close").to_numpy(),
            prices.get_column("spread").fill_null(np.nan).to_numpy(),
            instrument_for(symbol).pip_size,
            config.fallback_cost_pips,
            config.commission,
        )

        def progress(result: SplitResult) -> None:
            name = "final refit" if result.index < 0 else f"split {result.index}"
            context.log.info(
                f"{name}: {result.seconds:.1f} s on {result.devices}, best iterations "
                f"{result.best_iteration}"
            )

        trained = train_on_cpcv(
            TrainingData.from_matrix(matrix, matrix_feature_columns(matrix)),
            plan,
            TrainingSettings(
                models={name: model_spec(name).settings() for name in config.models},
                seed=config.seed,
            ),
            cost,
            run_directory,
            progress,
            market_calendar.calendar,
        )
        results, evaluation = trained.results, trained.evaluation
        record_models(
            duckdb_catalog.get_catalog(), _ledger_records(symbol, context.run.run_id, trained)
        )
        judged = evaluation.overfitting
        deflated = judged.deflated_sharpe
        plots = {
            f"equity_path_{path}": dg.MetadataValue.md(
                markdown_image(
                    equity_png(
                        curves_of_path(evaluation.curves, path),
                        f"{symbol} out-of-fold equity, path {path}",
                    ),
                    f"equity path {path}",
                )
            )
            for path in range(plan.n_paths)
        }
        return dg.Output(
            _oof_frame(matrix.get_column(TIME), trained.path_proba),
            metadata={
                "splits": len(results),
                "paths": plan.n_paths,
                "rows": trained.rows,
                "features": len(trained.feature_names),
                "devices": dg.MetadataValue.json(results[0].devices if results else {}),
                "split_seconds": dg.MetadataValue.json([round(r.seconds, 2) for r in results]),
                TASKS_METADATA: dg.MetadataValue.json([t.as_json() for t in trained.tasks]),
                "task_threads": dg.MetadataValue.text(task_shape_summary(trained.tasks)),
                "path_metrics": dg.MetadataValue.md(markdown_table(evaluation.per_path)),
                "model_summary": dg.MetadataValue.md(markdown_table(evaluation.summary)),
                "strategies_tried": len(evaluation.strategies),
                "selected_strategy": judged.selected or "none",
                DEFLATED_SHARPE_RATIO: float(deflated.dsr) if deflated else float("nan"),
                "selected_sharpe_per_day": float(deflated.sharpe) if deflated else float("nan"),
                "expected_max_sharpe_per_day": (
                    float(deflated.benchmark) if deflated else float("nan")
                ),
                "dsr_note": judged.dsr_note or "over every (model, threshold) strategy tried",
                PBO: float(judged.pbo.pbo) if judged.pbo else float("nan"),
                "pbo_note": judged.pbo_note or "CSCV over daily returns of every strategy",
                "feature_importance": dg.MetadataValue.md(_importance_table(results)),
                "model_directory": dg.MetadataValue.path(str(run_directory)),
                "code_version": code_version(),
                "data_fingerprint": trained.fingerprint,
                **plots,
            },
        )

    return trained_models


def model_assets(settings: FeatureSettings) -> list[dg.AssetsDefinition]:
    return [cpcv_folds, build_trained_models(settings)]
