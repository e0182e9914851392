"""Markdown for materialization and run metadata: tables of frames and inlined PNG images,
which the Dagster UI renders in place. Light on purpose: the executor imports it in every
worker, where matplotlib (the images are drawn elsewhere) is not needed."""

import base64

import polars as pl


def markdown_table(frame: pl.DataFrame, digits: int = 4) -> str:
    """Every row of `frame`; floats to `digits` significant digits."""

    def cell(value: object) -> str:
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


def markdown_image(png: bytes, alt: str) -> str:
    """A markdown image with the PNG inlined."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
