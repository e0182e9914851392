"""Metrics: classification scores for model evaluation and trading statistics for backtests."""
