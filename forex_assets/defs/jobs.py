"""Jobs. `symbol_pipeline` materializes the research chain for one symbol partition;
`refresh_features` and `retrain` split it where the schedules run them (see
`forex_assets.defs.schedules`); `paper_trading_job` trades the result behind its quality gate."""

import dagster as dg

from forex_assets.defs.checks import MODEL_GATE
from forex_assets.defs.keys import (
    DATA_GROUP,
    FEATURES_GROUP,
    MODELS_GROUP,
    PAPER_TRADING,
    STRATEGIES_GROUP,
    TRADING_GROUP,
    TRAINED_MODELS,
    VALIDATION_GROUP,
)

SYMBOL_PIPELINE = "symbol_pipeline"
MODEL_GATE_CHECK = dg.AssetCheckKey(TRAINED_MODELS, MODEL_GATE)

# The research chain and its checks, without paper trading and the gate in front of it: on
# data without an edge (the embedded sample is a random walk) the gate rightly fails, and
# that verdict belongs to the trading run, not to the research run.
symbol_pipeline_job = dg.define_asset_job(
    SYMBOL_PIPELINE,
    selection=(
        dg.AssetSelection.all()
        - dg.AssetSelection.groups(TRADING_GROUP)
        - dg.AssetSelection.checks(MODEL_GATE_CHECK)
    ),
    description=(
        "Every research asset of one symbol, from M1 bars to the strategy portfolio. Run it "
        "with `dagster job execute -m forex_assets -j symbol_pipeline --tags "
        '\'{"dagster/partition": "EURUSD"}\'` or `python -m forex_assets train --symbol EURUSD`.'
    ),
)

REFRESH_FEATURES = "refresh_features"
RETRAIN = "retrain"

# The jobs select asset groups, so they take whatever the groups hold when the code location
# loads: an asset added to one of these groups joins its job. `retrain` ends with paper
# trading, so the model gate decides whether the retrained models trade.
# Both jobs are partitioned by `symbols`, which Dagster infers from the selected assets (every
# asset is partitioned by it; `define_asset_job(partitions_def=...)` is deprecated in 1.13).
REFRESH_FEATURES_GROUPS = (DATA_GROUP, FEATURES_GROUP)
RETRAIN_GROUPS = (VALIDATION_GROUP, MODELS_GROUP, STRATEGIES_GROUP, TRADING_GROUP)

refresh_features_job = dg.define_asset_job(
    REFRESH_FEATURES,
    selection=dg.AssetSelection.groups(*REFRESH_FEATURES_GROUPS),
    description=(
        "One symbol's data and features: M1 bars (and their quarantine) from the data directory "
        "or the sample generator, every timeframe's bars, features per timeframe and the "
        "feature matrix. Launched after each FX day by the `daily_refresh` schedule and for new "
        "files by the `data_inbox` sensor."
    ),
)

retrain_job = dg.define_asset_job(
    RETRAIN,
    selection=dg.AssetSelection.groups(*RETRAIN_GROUPS),
    description=(
        "One symbol's research on its stored features: CPCV folds, trained models, evolved "
        "strategies, the strategy portfolio and every asset of the groups "
        f"{', '.join(RETRAIN_GROUPS)}. Needs the symbol's `refresh_features` outputs; launched "
        "after the FX week closes by the `weekly_retrain` schedule."
    ),
)

PAPER_TRADING_JOB = "paper_trading_job"

paper_trading_job = dg.define_asset_job(
    PAPER_TRADING_JOB,
    selection=dg.AssetSelection.assets(PAPER_TRADING) | dg.AssetSelection.checks(MODEL_GATE_CHECK),
    description=(
        "Replays one symbol's held-out period through the blended model and the strategy "
        "portfolio, via the risk manager and the paper broker, from the latest materialized "
        f"models and strategies, once the `{MODEL_GATE}` gate on trained_models passes."
    ),
)
