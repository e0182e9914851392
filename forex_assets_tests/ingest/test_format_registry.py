"""The format registry: a format is one module of `forex_assets.ingest.formats`, and the
detection, the declared formats of the `bar_source` resource and the format list follow."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pydantic
import pytest

import forex_assets.ingest.formats as formats_package
from forex_assets.cli import main
from forex_assets.defs.resources.bar_source import FileOverrideConfig
from forex_assets.ingest.bar_files import (
    AUTO,
    detect_format,
    discover_formats,
    format_names,
    read_bar_file,
    registry,
)
from forex_assets.ingest.bar_format import BarFormat
from forex_assets.ingest.sources import FileSpec, discover_symbol_files

# A format none of the shipped ones reads: a "#pipebars" header over pipe-separated rows.
FORMAT_EXAMPLE = "#pipebars / 2023-01-02T00:00|1.07015|1.07021|1.07010|1.07018"
PIPEBARS_MODULE = f'''
"""Pipe bars: a ``#pipebars`` line, then ``2023-01-02T00:00|open|high|low|close``."""

import polars as pl

from forex_assets.ingest.bar_format import BarFormat
from forex_assets.ingest.sources import FileSpec, discover_symbol_files
from forex_assets.ingest.parsing import parse_numbers, parse_time, split_fields
from forex_assets.ingest.text_lines import read_text_lines


def _read(request):
    lines = read_text_lines(request.path, request.head_bytes).slice(1)
    frame = split_fields(lines, "|", ["stamp", "open", "high", "low", "close"])
    frame = parse_numbers(frame, ["open", "high", "low", "close"])
    frame = parse_time(frame, pl.col("stamp"), "%Y-%m-%dT%H:%M", request.timezone)
    return frame.with_columns(volume=pl.lit(None, pl.Float64), spread=pl.lit(None, pl.Float64)), ()


FORMAT = BarFormat(
    name="pipebars",
    title="Pipe bars",
    example="{FORMAT_EXAMPLE}",
    suffixes=(".pipes",),
    default_timezone="+01:00",
    precedence=50,
    detect_text=lambda head: head.first == "#pipebars",
    read=_read,
)
'''
PIPEBARS_FILE = "#pipebars\n2023-01-02T01:00|1.07015|1.07021|1.07010|1.07018\n"


@pytest.fixture
def formats_folder(tmp_path, monkeypatch) -> Path:
    """A second folder of `forex_assets.ingest.formats`, where a test drops format modules
    as a contributor would drop one into the package."""
    folder = tmp_path / "more_formats"
    folder.mkdir()
    monkeypatch.setattr(formats_package, "__path__", [*formats_package.__path__, str(folder)])
    registry.cache_clear()
    yield folder
    registry.cache_clear()
    for name in [m for m in sys.modules if m.startswith(f"{formats_package.__name__}.")]:
        if Path(sys.modules[name].__file__).parent == folder:
            del sys.modules[name]


def test_a_new_format_is_one_module(formats_folder, tmp_path, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / "EURUSD_M1.pipes"
    path.write_text(PIPEBARS_FILE)
    assert "pipebars" not in format_names()
    assert discover_symbol_files(data_dir, "EURUSD") == []  # not a bar file's suffix
    with pytest.raises(pydantic.ValidationError, match="'pipebars' is not one of"):
        FileOverrideConfig(pattern="*.txt", format="pipebars")

    (formats_folder / "pipebars.py").write_text(PIPEBARS_MODULE)
    registry.cache_clear()

    shipped = ["csv", "dukascopy", "histdata", "mt4", "mt5", "parquet"]
    assert format_names() == [AUTO, *shipped, "pipebars"]
    assert discover_symbol_files(data_dir, "EURUSD") == [FileSpec(path)]
    assert detect_format(path).name == "pipebars"
    parsed = read_bar_file(path)
    assert (parsed.format, parsed.timezone) == ("pipebars", "+01:00")  # its default clock
    assert parsed.rows.get_column("time").to_list() == [datetime(2023, 1, 2, 0, 0, tzinfo=UTC)]
    assert parsed.rows.get_column("close").to_list() == [1.07018]
    assert FileOverrideConfig(pattern="*.txt", format="pipebars").format == "pipebars"
    assert main(["formats"]) == 0
    [listed] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("pipebars ")]
    assert listed.split(maxsplit=2)[1:] == ["+01:00", "Pipe bars: " + FORMAT_EXAMPLE]


def test_a_module_that_is_no_format_is_refused_by_name(formats_folder):
    (formats_folder / "helpers.py").write_text("SEPARATOR = '|'\n")
    with pytest.raises(ValueError, match=r"formats\.helpers defines FORMAT=None"):
        discover_formats(formats_package)
    (formats_folder / "helpers.py").unlink()
    (formats_folder / "tabs.py").write_text(PIPEBARS_MODULE)  # declares "pipebars"
    with pytest.raises(ValueError, match=r"declares the format name 'pipebars'.*'tabs'"):
        discover_formats(formats_package)


def test_the_shipped_formats_and_their_default_clocks():
    clocks = {f.name: f.default_timezone for f in registry()}
    assert clocks == {
        "csv": "UTC",
        "dukascopy": "UTC",
        "histdata": "-05:00",
        "mt4": "NY+7",
        "mt5": "NY+7",
        "parquet": "UTC",
    }


@pytest.mark.parametrize(
    "detectors", [{}, {"detect_bytes": lambda path, head: True, "detect_text": bool}]
)
def test_a_format_is_detected_from_its_bytes_or_its_text_not_both(detectors):
    with pytest.raises(ValueError, match=r"bar format 'odd' sets .* set exactly one"):
        BarFormat("odd", "Odd", "", (".odd",), "UTC", 1, read=lambda request: ((), ()), **detectors)
