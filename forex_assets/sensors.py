"""Sensors: keep the `symbols` partition set in step with configuration and data files."""

from pathlib import Path

import dagster as dg

from forex_assets import settings
from forex_assets.ingest.sources import symbols_in_data_dir
from forex_assets.partitions import SYMBOLS_PARTITION_SET, symbol_partitions


@dg.sensor(
    name="symbol_registry",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Adds the configured symbols and every symbol with files in the data directory to "
        "the 'symbols' partition set, so they appear in the UI's partition pickers."
    ),
)
def symbol_registry_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET))
    wanted = [*settings.configured_symbols(), *symbols_in_data_dir(Path(settings.data_dir()))]
    new = [s for s in dict.fromkeys(wanted) if s not in known]
    if not new:
        return dg.SensorResult(skip_reason="every configured and file-backed symbol is registered")
    context.log.info(f"registering symbols {new}")
    return dg.SensorResult(dynamic_partitions_requests=[symbol_partitions.build_add_request(new)])
