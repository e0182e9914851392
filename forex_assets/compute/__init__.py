"""Dagster-free resource planning: what the machine offers and who gets which share."""
