"""Where M1 bars come from: real files in the data directory, else the sample generator."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field, field_validator

from forex_assets import settings
from forex_assets.ingest.bar_files import AUTO, format_names, registry
from forex_assets.ingest.sample import (
    DEFAULT_SEED,
    DEFAULT_START,
    SAMPLE_PROFILES,
    generate_sample_m1,
)
from forex_assets.ingest.sources import (
    FileOverride,
    FileSpec,
    discover_symbol_files,
    load_symbol_bars,
)
from forex_assets.ingest.timezones import parse_timezone
from forex_assets.ingest.validation import QUARANTINE_SCHEMA, ValidatedBars, ValidationPolicy
from forex_assets.market.instruments import instrument_for


class FileOverrideConfig(dg.Config):
    """Declare the format and/or source timezone of files matching a glob."""

    pattern: str = Field(description="Glob relative to data_dir, e.g. 'EURUSD/*.csv'.")
    format: str = Field(
        default=AUTO,
        description=f"{AUTO} (detect from the content) or a format: "
        + ", ".join(f.name for f in registry()),
    )
    timezone: str | None = Field(default=None, description="UTC, +02:00, Europe/London or NY+7")

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        allowed = format_names()
        if value not in allowed:
            raise ValueError(f"format={value!r} is not one of {allowed}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            parse_timezone(value)
        return value


@dataclass(frozen=True)
class LoadedBars:
    validated: ValidatedBars
    source: str  # "files" or "sample"
    files: list[dict]


class BarSourceResource(dg.ConfigurableResource):
    """Real files for a symbol win; a sample symbol with no files gets generated bars."""

    data_dir: str = Field(default_factory=lambda: str(settings.data_dir()))
    overrides: list[FileOverrideConfig] = Field(default_factory=list)
    use_sample: str = Field(
        default="auto",
        description="auto: sample only when no files exist; always; never (fail without files).",
    )
    sample_start: str = DEFAULT_START.isoformat()
    sample_years: float = Field(default_factory=settings.sample_years)
    sample_seed: int = DEFAULT_SEED
    reject_weekend_closure: bool = True

    @field_validator("use_sample")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in {"auto", "always", "never"}:
            raise ValueError(f"use_sample={value!r} is not one of auto, always, never")
        return value

    def file_overrides(self) -> list[FileOverride]:
        return [FileOverride(o.pattern, o.format, o.timezone) for o in self.overrides]

    def files_for(self, symbol: str) -> list[FileSpec]:
        return discover_symbol_files(Path(self.data_dir), symbol, self.file_overrides())

    def load(self, symbol: str, progress: Callable[[str], None]) -> LoadedBars:
        instrument = instrument_for(symbol)
        files = [] if self.use_sample == "always" else self.files_for(symbol)
        if files:

            def report(index: int, total: int, spec: FileSpec) -> None:
                progress(f"reading file {index + 1}/{total}: {spec.path}")

            policy = ValidationPolicy(reject_weekend_closure=self.reject_weekend_closure)
            validated, summary = load_symbol_bars(files, instrument, policy, report)
            return LoadedBars(validated, "files", summary)
        if self.use_sample == "never" or symbol not in SAMPLE_PROFILES:
            raise dg.Failure(
                description=(
                    f"No bar files for {symbol} under data_dir={self.data_dir!r} "
                    f"(looked for a folder named {symbol} or files with {symbol} in their name)"
                    + (
                        " and use_sample='never'."
                        if symbol in SAMPLE_PROFILES
                        else f"; the sample generator only covers {', '.join(SAMPLE_PROFILES)}."
                    )
                    + " Put the symbol's files there, as "
                    + ", ".join(f.title for f in registry())
                    + "."
                )
            )
        progress(f"generating {self.sample_years} years of sample M1 bars for {symbol}")
        bars = generate_sample_m1(
            symbol,
            start=date.fromisoformat(self.sample_start),
            years=self.sample_years,
            seed=self.sample_seed,
        )
        validated = ValidatedBars(bars, pl.DataFrame(schema=QUARANTINE_SCHEMA), bars.height)
        return LoadedBars(validated, "sample", [])
