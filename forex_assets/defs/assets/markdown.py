"""Frames as markdown tables: how the Dagster UI shows tabular materialization metadata."""

import polars as pl


def markdown_table(frame: pl.DataFrame, digits: int = 4) -> str:
    """Every row of `frame`; floats to `digits` significant digits."""

    def cell(value: object) -> str:
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)
