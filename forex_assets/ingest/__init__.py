"""Dagster-free ingestion: file readers, the validation policy and the sample generator."""
