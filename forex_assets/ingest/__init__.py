"""Dagster-free ingestion: bar file formats and readers, the validation policy, the data
inbox intake and the sample generator."""
