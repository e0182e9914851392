"""Names the wiring shares: asset keys, group names and the metadata the gates read.

Written once here, so an asset, the check that guards it, the jobs that select it and the
schedules that watch it cannot drift apart (and the checks need not import the assets).
Pools are `forex_assets.compute.plan.Pool`: the resource plan sizes them.
"""

import dagster as dg

from forex_assets.market.timeframes import Timeframe
from forex_assets.storage.model_store import MODEL_ASSET

DATA_GROUP = "data"
FEATURES_GROUP = "features"
VALIDATION_GROUP = "validation"
MODELS_GROUP = "models"
STRATEGIES_GROUP = "strategies"
TRADING_GROUP = "trading"

BAR_FILES = dg.AssetKey("bar_files")
M1_BARS = dg.AssetKey("m1_bars")
FEATURE_MATRIX = dg.AssetKey("feature_matrix")
CPCV_FOLDS = dg.AssetKey("cpcv_folds")
TRAINED_MODELS = dg.AssetKey(MODEL_ASSET)  # the model store's errors name it too
EVOLVED_STRATEGIES = dg.AssetKey("evolved_strategies")
STRATEGY_PORTFOLIO = dg.AssetKey("strategy_portfolio")
PAPER_TRADING = dg.AssetKey("paper_trading")

# Metadata of a bar_files materialization: the inbox files taken (file, sha256, ...).
INBOX_FILES = "inbox_files"

# Metadata of trained_models that the model gate judges.
DEFLATED_SHARPE_RATIO = "deflated_sharpe_ratio"
PBO = "pbo"


def timeframe_bars_key(timeframe: Timeframe) -> dg.AssetKey:
    return dg.AssetKey(["bars", timeframe.asset_name])


def timeframe_features_key(timeframe: Timeframe) -> dg.AssetKey:
    return dg.AssetKey(["features", timeframe.asset_name])
