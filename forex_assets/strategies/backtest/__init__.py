"""Bar-by-bar backtest of one instrument: a numba kernel for one signal or thousands.

Strategy search evaluates many candidate rule sets on the same bars, so the simulation is
one serial numba loop that `run.backtest` runs once, with trade and equity records, and
`run.backtest_batch` runs per candidate in parallel, keeping only the metrics and the
per-day equity that prop-firm rules need.

- `market`: the bars as arrays (`Market`), with the ATR and the trading days.
- `rules`: a strategy's exit rules and sizing (`TradeRules`, one row of a batch's table).
- `records`: what a run returns (trades as a structured record, equity, days, metrics).
- `kernel`: the simulation, and the exact semantics of fills, exits, money and days.
- `run`: the public entry points, which check their inputs before the kernel sees them.
"""
