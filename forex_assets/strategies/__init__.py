"""Strategies: the backtest kernel, prop-firm rules, genes, CMA-ES islands, discovery."""
