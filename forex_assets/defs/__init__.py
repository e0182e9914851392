"""The Dagster wiring: assets by domain, checks, jobs, schedules, sensors and resources.

Thin shells over the Dagster-free cores (market, ingest, features, validation, models,
strategies, trading, compute, storage); `forex_assets.definitions` assembles them into the
code location. Nothing outside this package, the executor and the CLI imports Dagster.
"""
