"""The `inbox_ingest` job: takes the settled inbox entries the `data_inbox` sensor found.

The work (hashing, parsing, the parsed-share rule, moves, reason files) is
`forex_assets.ingest.inbox`; this op gives it the run's entries, adds the symbols of taken
files to the `symbols` partition set (only once a file of theirs is known to be bars) and
records a `bar_files` materialization per symbol, which the `inbox_refresh` sensor answers
with a `refresh_features` run of that symbol.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from pydantic import Field

from forex_assets import settings
from forex_assets.defs.keys import BAR_FILES, INBOX_FILES
from forex_assets.defs.resources import BarSourceResource
from forex_assets.ingest.inbox import InboxIntake, TakenFile
from forex_assets.ingest.inbox_scan import InboxEntry, check_folders
from forex_assets.partitions import register_symbols

INBOX_INGEST = "inbox_ingest"
TAKE_INBOX_FILES = "take_inbox_files"


class InboxEntryConfig(dg.Config):
    """One inbox entry as the sensor saw it."""

    name: str = Field(description="Path relative to the inbox, e.g. 'EURUSD/2023.csv'.")
    size: int
    mtime_ns: int
    inode: int
    refused: str | None = Field(
        default=None, description="Why it is rejected unopened (a symbolic link, a FIFO)."
    )


class InboxIngestConfig(dg.Config):
    entries: list[InboxEntryConfig]


def _taken_metadata(taken: list[TakenFile]) -> list[dict[str, object]]:
    return [
        {
            "file": item.name,
            "sha256": item.digest,
            "format": item.parsed.format,
            "timezone": item.parsed.timezone,
            "rows": item.parsed.rows.height,
            "unparseable": int(item.parsed.rows.get_column("error").is_not_null().sum()),
        }
        for item in taken
    ]


@dg.op(
    name=TAKE_INBOX_FILES,
    out={},
    description=(
        "Takes each inbox entry of the run into the data directory, or sets it aside in "
        "inbox/rejected/, duplicates/ or replaced/ with a reason file, and records a bar_files "
        "materialization per symbol that got files."
    ),
)
def take_inbox_files(
    context: dg.OpExecutionContext, config: InboxIngestConfig, bar_source: BarSourceResource
) -> Iterator[dg.AssetMaterialization]:
    inbox = settings.inbox_dir()
    data_dir = Path(bar_source.data_dir).expanduser().resolve()
    check_folders(inbox, data_dir)
    intake = InboxIntake(inbox, data_dir, bar_source.file_overrides(), context.log)
    for entry in config.entries:
        if entry.refused is not None:
            intake.refuse(entry.name, entry.refused)
        else:
            intake.take(entry.name, InboxEntry(entry.size, entry.mtime_ns, entry.inode))
    report = intake.report
    by_symbol = report.taken_by_symbol()
    new_symbols = register_symbols(context.instance, list(by_symbol))
    if new_symbols:
        context.log.info(f"added new symbols to the 'symbols' partition set: {new_symbols}")
    for symbol, taken in by_symbol.items():
        yield dg.AssetMaterialization(
            asset_key=BAR_FILES,
            partition=symbol,
            description=f"{len(taken)} file(s) taken in from the inbox",
            metadata={
                INBOX_FILES: dg.MetadataValue.json(_taken_metadata(taken)),
                "data_dir": str(data_dir),
            },
        )
    context.log.info(
        f"inbox {inbox}: {len(report.taken)} taken, {len(report.rejected)} rejected, "
        f"{len(report.duplicates)} duplicates, {len(report.replaced)} replacing an older copy, "
        f"{len(report.skipped)} changed or gone since seen, {len(report.failed)} failed"
    )
    if report.failed:
        failures = "; ".join(f"{name}: {error}" for name, error in report.failed.items())
        raise dg.Failure(
            description=(
                f"{len(report.failed)} inbox entries could not be read or moved and stay in "
                f"{inbox} ({failures}); the others were handled. Fix the cause (permissions, "
                "space, a file held open) and re-execute this run, or touch the files so that "
                "the data_inbox sensor requests them again."
            )
        )


@dg.job(
    name=INBOX_INGEST,
    executor_def=dg.in_process_executor,
    description=(
        "Takes the settled files the data_inbox sensor found into the data directory (or sets "
        "them aside with a reason) and records bar_files for each symbol that got files. "
        "Runs in process: it moves files, it computes nothing the budgeted executor sizes."
    ),
)
def inbox_ingest_job() -> None:
    take_inbox_files()
