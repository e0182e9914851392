"""A text bar file's bytes as numbered lines: UTF-8 or UTF-16, CR/LF line ends only."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import polars as pl

from forex_assets.ingest.bar_format import BarFileError, TextHead

_UTF8_BOM = b"\xef\xbb\xbf"


def decode(path: Path, data: bytes, partial: bool = False) -> str:
    """`data` as text; `partial` data (a file's head) may end inside a character."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace" if partial else "strict")
    if b"\x00" in data[:4096]:
        # UTF-16 without a BOM (MetaTrader 5 writes it) has a NUL in every ASCII char.
        if data[1:2] == b"\x00":
            return data.decode("utf-16-le", errors="replace" if partial else "strict")
        raise BarFileError(path, "binary content (NUL bytes): not a text bar file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if partial:
            return data.decode("utf-8", errors="replace")
        raise BarFileError(
            path, f"not UTF-8 or UTF-16 text ({exc.reason} at byte {exc.start})"
        ) from None


def text_head(path: Path, head: bytes) -> TextHead:
    """The first two non-blank lines of the file whose first bytes are `head`."""
    text = decode(path, head, partial=True)
    non_blank = (ln.strip() for ln in text.splitlines() if ln.strip())
    first = next(non_blank, "")
    if not first:
        raise BarFileError(path, "the file is empty")
    return TextHead(first, next(non_blank, ""))


def read_text_lines(path: Path, head_bytes: int | None = None) -> pl.DataFrame:
    """Non-blank lines (`raw`) with their 1-based `line` numbers in the file.

    `head_bytes` reads only the lines that end within the first `head_bytes` bytes: a quick
    look that tells a bar file from garbage without reading all of a large file. UTF-16
    text is always read whole.

    Only CR/LF end a line, as in editors and `open()`: str.splitlines() also breaks at form
    feeds, NEL and other separators that turn up in corrupt rows, which would split one row
    into several and shift every later line number. polars splits a UTF-8 buffer into
    lines twenty times faster than Python; it is used whenever its line count provably
    matches (no lone CR, no stray field separator), and Python's split otherwise.
    """
    data = path.read_bytes() if head_bytes is None else _read_head(path, head_bytes)
    is_utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]
    text = decode(path, data) if is_utf16 else None
    # polars validates UTF-8 itself; Python decodes only for UTF-16 or when polars declines.
    lines = _polars_lines(
        text.encode("utf-8") if text is not None else data.removeprefix(_UTF8_BOM)
    )
    if lines is None:
        text = text if text is not None else decode(path, data)
        lines = pl.Series("raw", re.split(r"\r\n|\r|\n", text), dtype=pl.String)
    frame = pl.DataFrame(
        {"line": np.arange(1, lines.len() + 1, dtype=np.int64), "raw": lines},
        schema={"line": pl.Int64, "raw": pl.String},
    ).filter(pl.col("raw").str.strip_chars() != "")
    if frame.height == 0:
        raise BarFileError(path, "the file is empty")
    return frame


def _read_head(path: Path, head_bytes: int) -> bytes:
    """The file's lines that end within its first `head_bytes` bytes (all of a UTF-16 file,
    whose line breaks are two bytes wide; the first partial line if no line ends there)."""
    with path.open("rb") as handle:
        data = handle.read(head_bytes + 1)
        if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
            return data + handle.read()
    if len(data) <= head_bytes:
        return data
    end = data.rfind(b"\n", 0, head_bytes)
    return data[: end + 1] if end >= 0 else data[:head_bytes]


def _polars_lines(buffer: bytes) -> pl.Series | None:
    """All lines of `buffer` (blank ones as null), or None where polars could miscount."""
    if b"\x1f" in buffer or (b"\r" in buffer and buffer.count(b"\r") != buffer.count(b"\r\n")):
        return None
    expected = buffer.count(b"\n") + (0 if buffer.endswith(b"\n") else 1)
    try:
        lines = pl.read_csv(
            io.BytesIO(buffer),
            has_header=False,
            separator="\x1f",
            quote_char=None,
            schema={"raw": pl.String},
        ).get_column("raw")
    except pl.exceptions.PolarsError:
        return None
    return lines if lines.len() == expected else None
