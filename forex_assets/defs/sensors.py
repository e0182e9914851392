"""Sensors: keep the `symbols` partition set in step with configuration and data files,
watch the inbox for settled files (`data_inbox`) and refresh the symbols that got files
(`inbox_refresh`)."""

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from forex_assets import settings
from forex_assets.defs.inbox_ingest import TAKE_INBOX_FILES, inbox_ingest_job
from forex_assets.defs.jobs import REFRESH_FEATURES, refresh_features_job
from forex_assets.defs.keys import BAR_FILES, INBOX_FILES
from forex_assets.defs.resources import BarSourceResource
from forex_assets.ingest.inbox_scan import InboxEntry, check_folders, ready_entries, scan_inbox
from forex_assets.ingest.sources import symbols_in_data_dir
from forex_assets.partitions import SYMBOLS_PARTITION_SET, symbol_partitions


@dg.sensor(
    name="symbol_registry",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Adds the configured symbols and every symbol with files in the data directory to "
        "the 'symbols' partition set, so they appear in the UI's partition pickers."
    ),
)
def symbol_registry_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET))
    wanted = [*settings.configured_symbols(), *symbols_in_data_dir(Path(settings.data_dir()))]
    new = [s for s in dict.fromkeys(wanted) if s not in known]
    if not new:
        return dg.SensorResult(skip_reason="every configured and file-backed symbol is registered")
    context.log.info(f"registering symbols {new}")
    return dg.SensorResult(dynamic_partitions_requests=[symbol_partitions.build_add_request(new)])


# --------------------------------------------------------------------------- data inbox

INBOX_SENSOR = "data_inbox"
INBOX_REFRESH_SENSOR = "inbox_refresh"
TRIGGER_TAG = "forex_assets/trigger"
INBOX_FILES_TAG = "forex_assets/inbox_files"
# bar_files materializations answered per tick; more are answered by the next tick.
INBOX_REFRESH_BATCH = 100


@dataclasses.dataclass(frozen=True)
class InboxCursor:
    """What `data_inbox` remembers between ticks, for entries still in the inbox only (so it
    stays as small as the inbox): how each was seen last, which were requested as seen, and
    how many runs it requested (part of each run key)."""

    seen: dict[str, InboxEntry]
    requested: dict[str, InboxEntry]
    requests: int

    @classmethod
    def load(cls, cursor: str | None) -> "InboxCursor":
        if not cursor:
            return cls({}, {}, 0)
        try:
            stored = json.loads(cursor)
            return cls(
                _entries(stored["seen"]), _entries(stored["requested"]), int(stored["requests"])
            )
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            # An older or hand-edited cursor: observe every entry afresh.
            return cls({}, {}, 0)

    def dump(self) -> str:
        def plain(entries: dict[str, InboxEntry]) -> dict[str, tuple]:
            return {n: dataclasses.astuple(e) for n, e in sorted(entries.items())}

        return json.dumps(
            {
                "seen": plain(self.seen),
                "requested": plain(self.requested),
                "requests": self.requests,
            }
        )


def _entries(stored: dict) -> dict[str, InboxEntry]:
    return {
        str(name): InboxEntry(
            int(size), int(mtime_ns), int(inode), None if refused is None else str(refused)
        )
        for name, (size, mtime_ns, inode, refused) in stored.items()
    }


def inbox_ingest_run_key(requests: int, entries: list[dict]) -> str:
    """The run key of the `requests`-th inbox_ingest run, over `entries` (its run config).

    A re-evaluated tick (same cursor) gets the same key, so Dagster launches it once; the
    count makes a later drop of the very same file (`cp -p` keeps its time) a new run.
    """
    digest = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()
    return f"inbox_ingest:{requests}:{digest[:16]}"


@dg.sensor(
    name=INBOX_SENSOR,
    job=inbox_ingest_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches the inbox folder (FOREX_ASSETS_INBOX, default <project home>/inbox), and "
        "folders in it, for new bar files, and requests an inbox_ingest run for the files that "
        "have settled (unchanged across two ticks). The run moves a file that reads as bars "
        "into the data directory at the same relative path (a newer file of a taken name "
        "replaces the older, which goes to inbox/replaced/) and adds its symbol to the "
        "'symbols' partition set; an unreadable file, one that is mostly not bars, or a "
        "symbolic link goes to inbox/rejected/ with a .reason.txt; a copy of a file already in "
        "the data directory goes to inbox/duplicates/. The inbox_refresh sensor then requests "
        "a refresh_features run per symbol that got files."
    ),
)
def data_inbox_sensor(
    context: dg.SensorEvaluationContext, bar_source: BarSourceResource
) -> dg.SensorResult:
    """Request an inbox_ingest run for the inbox entries that have settled; open none.

    An entry settles as `forex_assets.ingest.inbox_scan` describes: the cost is one tick of
    latency (30-60 s), nothing next to a daily refresh. A symbolic link or special file is
    requested at once, to be rejected unopened. An entry stays requested while it is
    unchanged, so it is in one run only; once changed it settles again. An entry the run
    could not read or move (an OSError) fails that run and stays in the inbox: re-execute
    the run, or touch the file. Runs of this sensor start one at a time (dagster.yaml).
    """
    inbox = settings.inbox_dir()
    check_folders(inbox, Path(bar_source.data_dir).expanduser().resolve())
    inbox.mkdir(parents=True, exist_ok=True)
    previous = InboxCursor.load(context.cursor)
    current = scan_inbox(inbox)
    requested = {n: e for n, e in previous.requested.items() if current.get(n) == e}
    ready = [n for n in ready_entries(previous.seen, current, time.time_ns()) if n not in requested]
    if not ready:
        details = [
            f"{n} {what}"
            for what, n in (
                ("waiting to settle", len(current) - len(requested)),
                ("in a requested run", len(requested)),
            )
            if n
        ]
        return dg.SensorResult(
            skip_reason=f"no new bar files in {inbox}"
            + (f" ({', '.join(details)})" if details else ""),
            cursor=InboxCursor(current, requested, previous.requests).dump(),
        )
    entries = [{"name": name, **dataclasses.asdict(current[name])} for name in ready]
    context.log.info(f"requesting an inbox_ingest run for {len(ready)} settled entries: {ready}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=inbox_ingest_run_key(previous.requests, entries),
                run_config={"ops": {TAKE_INBOX_FILES: {"config": {"entries": entries}}}},
                tags={TRIGGER_TAG: INBOX_SENSOR},
            )
        ],
        cursor=InboxCursor(
            current, requested | {n: current[n] for n in ready}, previous.requests + 1
        ).dump(),
    )


def inbox_run_key(symbol: str, files: list[tuple[str, str]]) -> str:
    """The run key of a refresh for `symbol` after taking `files` ((name, sha256) pairs)."""
    return f"inbox:{symbol}:" + ",".join(f"{name}#{digest[:16]}" for name, digest in sorted(files))


@dg.sensor(
    name=INBOX_REFRESH_SENSOR,
    job=refresh_features_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Requests a refresh_features run for each symbol whose bar_files were materialized "
        "(by an inbox_ingest run taking files in, or reported by hand), so new files reach "
        "the features without waiting for the daily refresh."
    ),
)
def inbox_refresh_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """One `refresh_features` run per bar_files materialization after the cursor (a storage
    id), with run key `inbox:<symbol>:<file>#<sha256 prefix>[,...]` over the files taken:
    the same files taken again never launch a second run."""
    after = int(context.cursor) if context.cursor else None
    found = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=BAR_FILES, after_storage_id=after),
        limit=INBOX_REFRESH_BATCH,
        ascending=True,
    )
    if not found.records:
        return dg.SensorResult(skip_reason="no bar files materialized since the last tick")
    requests = []
    for record in found.records:
        symbol = record.partition_key
        if symbol is None:
            context.log.warning(f"bar_files materialization {record.storage_id} names no symbol")
            continue
        taken = record.asset_materialization.metadata.get(INBOX_FILES)
        if taken is None:  # reported by hand: refresh once per report
            run_key, tags = f"bar_files:{symbol}:{record.storage_id}", {}
        else:
            files = [(item["file"], item["sha256"]) for item in taken.value]
            run_key = inbox_run_key(symbol, files)
            tags = {INBOX_FILES_TAG: ", ".join(sorted(name for name, _ in files))}
        requests.append(
            dg.RunRequest(
                run_key=run_key,
                job_name=REFRESH_FEATURES,
                partition_key=symbol,
                tags={TRIGGER_TAG: INBOX_SENSOR, **tags},
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=str(found.records[-1].storage_id))
