"""Jobs. `symbol_pipeline` materializes the whole chain for one symbol partition."""

import dagster as dg

SYMBOL_PIPELINE = "symbol_pipeline"

symbol_pipeline_job = dg.define_asset_job(
    SYMBOL_PIPELINE,
    selection=dg.AssetSelection.all(),
    description=(
        "Every asset of one symbol, from M1 bars to the end of the chain. Run it with "
        "`dagster job execute -m forex_assets -j symbol_pipeline --tags "
        '\'{"dagster/partition": "EURUSD"}\'` or `python -m forex_assets train --symbol EURUSD`.'
    ),
)
