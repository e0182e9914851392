"""Dagster-free storage: atomic Parquet partitions and the DuckDB catalog over them."""
