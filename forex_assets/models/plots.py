"""Equity-curve images for materialization metadata (PNG, rendered by the Dagster UI)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display in a step process

import matplotlib.pyplot as plt
import numpy as np

from forex_assets.models.evaluation import EquityCurve


def equity_png(curves: Sequence[EquityCurve], title: str) -> bytes:
    """One chart of the given curves (equity against exit time), as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # no display in a step process

    figure, axes = plt.subplots(figsize=(8, 3.2), dpi=90)
    try:
        for curve in curves:
            times = curve.exit_us.astype("datetime64[us]")
            axes.plot(times, curve.equity, label=curve.model, linewidth=1.0)
        axes.axhline(1.0, color="grey", linewidth=0.6)
        axes.set_title(title)
        axes.set_ylabel("equity")
        if curves:
            axes.legend(loc="upper left", fontsize=8)
        figure.autofmt_xdate()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def curves_of_path(curves: Sequence[EquityCurve], path: int) -> list[EquityCurve]:
    return [c for c in curves if c.path == path and np.size(c.equity)]
