"""The one error every backtest input check raises."""


class BacktestInputError(ValueError):
    """Bars, signals or rules the kernel cannot run; the message says which and why."""
