"""Dagster-free market model: instruments, the FX calendar, timeframes and bar resampling."""
