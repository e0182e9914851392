"""Sensors: keep the `symbols` partition set in step with configuration and data files,
and take new bar files from the inbox into the data directory (`data_inbox`)."""

import errno
import fnmatch
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from forex_assets import settings
from forex_assets.ingest.readers import BarFileError, FileFormat, ParsedFile, read_bar_file
from forex_assets.ingest.sources import (
    BAR_FILE_SUFFIXES,
    FileOverride,
    symbols_in_data_dir,
)
from forex_assets.jobs import REFRESH_FEATURES, refresh_features_job
from forex_assets.market.instruments import instrument_for, symbols_in_text
from forex_assets.partitions import SYMBOLS_PARTITION_SET, symbol_partitions
from forex_assets.resources import BarSourceResource


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
REJECTED_FOLDER = "rejected"
DUPLICATES_FOLDER = "duplicates"
REASON_SUFFIX = ".reason.txt"
TRIGGER_TAG = "forex_assets/trigger"
INBOX_FILES_TAG = "forex_assets/inbox_files"
# A file is taken when two ticks (at least minimum_interval_seconds apart) saw the same size
# and modification time and nothing wrote to it for this long; see `data_inbox_sensor`.
INBOX_QUIET_SECONDS = 5.0
# Per tick, so one evaluation stays well inside Dagster's sensor timeout (60 s); files left
# over are taken by the next tick.
INBOX_MAX_FILES_PER_TICK = 20
INBOX_TICK_BUDGET_SECONDS = 20.0
# Names that are still being written by a browser, rsync, an editor or a copy tool.
_IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".filepart")
_IGNORED_PREFIXES = (".", "~")


class InboxRejection(Exception):
    """A file in the inbox that cannot become a symbol's bar file, and why."""


@dataclass(frozen=True)
class _Accepted:
    symbol: str
    name: str
    digest: str
    destination: Path


def _inbox_files(inbox: Path) -> dict[str, tuple[int, int]]:
    """Top-level files of the inbox that a writer has finished naming: name -> (size, mtime_ns)."""
    found = {}
    with os.scandir(inbox) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(_IGNORED_PREFIXES) or name.lower().endswith(_IN_PROGRESS_SUFFIXES):
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except FileNotFoundError:  # taken away between listing and stat
                continue
            found[name] = (stat.st_size, stat.st_mtime_ns)
    return found


def _load_inbox_cursor(cursor: str | None) -> dict[str, tuple[int, int]]:
    if not cursor:
        return {}
    try:
        seen = json.loads(cursor).get("seen", {})
        return {str(name): (int(obs[0]), int(obs[1])) for name, obs in seen.items()}
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return {}  # an older or hand-edited cursor: observe every file afresh


def _dump_inbox_cursor(seen: dict[str, tuple[int, int]]) -> str:
    return json.dumps({"seen": {name: list(obs) for name, obs in sorted(seen.items())}})


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _free_path(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/<stem>-2<suffix>`, `-3`, ... when that name is taken."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = folder / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


def _move(source: Path, destination: Path) -> None:
    """Move a file so that `destination` appears complete or not at all.

    Within one filesystem this is a rename. Across filesystems (an inbox on a share) the file
    is copied under a hidden name next to its destination, which the data directory's reader
    ignores, renamed into place, and only then removed from the inbox. `destination` must be
    a free name (`_free_path`): sensor ticks never overlap, so no other writer races for it.
    """
    try:
        os.rename(source, destination)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    staging = destination.with_name(f".{destination.name}.incoming")
    shutil.copy2(source, staging)
    os.replace(staging, destination)
    source.unlink()


def _set_aside(inbox: Path, folder: str, path: Path, text: str) -> Path:
    """Move `path` into `<inbox>/<folder>/` with a `.reason.txt` beside it; never deletes."""
    target_dir = inbox / folder
    target_dir.mkdir(exist_ok=True)
    target = _free_path(target_dir, path.name)
    # The reason first: a file found in rejected/ always has its explanation next to it.
    (target_dir / f"{target.name}{REASON_SUFFIX}").write_text(text, encoding="utf-8")
    _move(path, target)
    return target


def _bar_file_index(data_dir: Path) -> dict[int, list[Path]]:
    """The data directory's files by size, to find an identical file without hashing all."""
    index: dict[int, list[Path]] = {}
    if data_dir.is_dir():
        for path in data_dir.rglob("*"):
            relative = path.relative_to(data_dir).parts
            if path.is_file() and not any(p.startswith(_IGNORED_PREFIXES) for p in relative):
                index.setdefault(path.stat().st_size, []).append(path)
    return index


def _validate_bar_file(
    path: Path, destination_name: str, overrides: list[FileOverride]
) -> tuple[str, ParsedFile]:
    """The file's symbol and parsed rows, read as the data directory will read it."""
    suffix = path.suffix.lower()
    if suffix not in BAR_FILE_SUFFIXES:
        raise InboxRejection(
            f"the extension {suffix or '(none)'!r} is not read from the data directory; bar "
            f"files end in {', '.join(sorted(BAR_FILE_SUFFIXES))}"
        )
    symbols = symbols_in_text(path.name)
    if not symbols:
        raise InboxRejection(
            "no symbol in the file name: name the file after its pair as vendors do "
            "(DAT_ASCII_EURUSD_M1_2023.csv, EURUSD1.csv, GBPJPY_M1.parquet)"
        )
    if len(symbols) > 1:
        raise InboxRejection(
            f"the file name names several symbols ({', '.join(symbols)}); a bar file holds one "
            "pair: rename it so that it names exactly one"
        )
    symbol = symbols[0]
    override = next((o for o in overrides if fnmatch.fnmatch(destination_name, o.pattern)), None)
    file_format = override.format if override else FileFormat.AUTO
    timezone = override.timezone if override else None
    try:
        parsed = read_bar_file(path, file_format, timezone, instrument_for(symbol))
    except BarFileError as exc:
        raise InboxRejection(exc.reason) from None
    except Exception as exc:  # a reader that fails on odd bytes must not stop the sensor
        raise InboxRejection(f"could not be read as bars: {type(exc).__name__}: {exc}") from None
    if parsed.rows.height == 0:
        raise InboxRejection(f"no data rows (read as {parsed.format.value})")
    return symbol, parsed


@dg.sensor(
    name=INBOX_SENSOR,
    job=refresh_features_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches the inbox folder (FOREX_ASSETS_INBOX, default <project home>/inbox) for new "
        "bar files in any supported format. A file that reads as bars is moved into the data "
        "directory, its symbol is added to the 'symbols' partition set and a refresh_features "
        "run is requested for it; an unreadable one goes to inbox/rejected/ with a .reason.txt; "
        "a copy of a file already in the data directory goes to inbox/duplicates/."
    ),
)
def data_inbox_sensor(
    context: dg.SensorEvaluationContext, bar_source: BarSourceResource
) -> dg.SensorResult:
    """Take finished files from the inbox into the data directory and refresh their symbols.

    When is a file finished? A file is taken only when two ticks, at least
    `minimum_interval_seconds` (30 s) apart, saw the same size and modification time, and
    nothing has written to it for `INBOX_QUIET_SECONDS`. The modification time alone is not
    enough: unzip, `cp -p` and some sync tools stamp files with old times, and clocks on file
    shares drift, so "older than N seconds" can take a half-copied file; an unchanged
    observation across ticks relies on nothing but the file not changing. The cost is one
    tick of latency (30-60 s), nothing next to a daily refresh. Writers that can should copy
    under a hidden or temporary name (`.name`, `~name`, `*.part`, `*.tmp`) and rename when
    done: such names are never looked at. The cursor holds only those observations, for files
    still in the inbox, so it stays as small as the inbox and every file is opened once.

    One `refresh_features` run is requested per symbol that got files in the tick, with run
    key `inbox:<symbol>:<file>#<sha256 prefix>[,...]` over those files, sorted: Dagster
    launches one run per key and sensor, so a re-evaluated tick or the same file dropped again
    never launches a second run. A file identical to one already in the data directory is not
    moved in (its every row would be a duplicate) but set aside in `duplicates/` with a reason
    file; a different file under a taken name is moved in as `<stem>-2<suffix>`. Nothing is
    ever deleted or overwritten.

    The moves happen while the tick is evaluated, before Dagster launches its runs. Should
    the runs be lost after that (a tick previewed in the UI, which launches nothing), the
    files are in the data directory, the `symbol_registry` sensor registers their symbols,
    and the next `daily_refresh` reads them.
    """
    inbox = settings.inbox_dir()
    data_dir = Path(bar_source.data_dir).expanduser().resolve()
    if inbox == data_dir or data_dir in inbox.parents:
        raise dg.DagsterInvariantViolationError(
            f"{settings.ENV_INBOX}={inbox} is inside the data directory {data_dir}: the pipeline "
            "would read files before they are checked, and rejected ones too. Point the inbox "
            "elsewhere (default: <project home>/inbox)."
        )
    inbox.mkdir(parents=True, exist_ok=True)
    previous = _load_inbox_cursor(context.cursor)
    current = _inbox_files(inbox)
    quiet_before_ns = time.time_ns() - int(INBOX_QUIET_SECONDS * 1e9)
    ready = sorted(
        name
        for name, observed in current.items()
        if previous.get(name) == observed and observed[1] <= quiet_before_ns
    )
    overrides = [
        FileOverride(o.pattern, FileFormat(o.format), o.timezone) for o in bar_source.overrides
    ]
    tick = _InboxTick(context, inbox, data_dir, overrides)
    started = time.monotonic()
    for name in ready:
        if (
            len(tick.handled) >= INBOX_MAX_FILES_PER_TICK
            or time.monotonic() - started > INBOX_TICK_BUDGET_SECONDS
        ):
            context.log.info(f"{len(ready) - len(tick.handled)} ready files left for the next tick")
            break
        tick.take(name, size=current[name][0])

    cursor = _dump_inbox_cursor({n: o for n, o in current.items() if n not in tick.handled})
    by_symbol: dict[str, list[_Accepted]] = {}
    for item in tick.accepted:
        by_symbol.setdefault(item.symbol, []).append(item)
    if not by_symbol:
        tick.counts["waiting to settle"] = len(current) - len(ready)
        details = ", ".join(f"{n} {what}" for what, n in tick.counts.items() if n)
        summary = f"no new bar files in {inbox}" + (f" ({details})" if details else "")
        return dg.SensorResult(skip_reason=summary, cursor=cursor)
    known = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET))
    new_symbols = [s for s in by_symbol if s not in known]
    if new_symbols:
        context.log.info(f"adding new symbols to '{SYMBOLS_PARTITION_SET}': {new_symbols}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=inbox_run_key(symbol, [(i.name, i.digest) for i in items]),
                job_name=REFRESH_FEATURES,
                partition_key=symbol,
                tags={
                    TRIGGER_TAG: INBOX_SENSOR,
                    INBOX_FILES_TAG: ", ".join(sorted(i.destination.name for i in items)),
                },
            )
            for symbol, items in sorted(by_symbol.items())
        ],
        dynamic_partitions_requests=(
            [symbol_partitions.build_add_request(new_symbols)] if new_symbols else []
        ),
        cursor=cursor,
    )


class _InboxTick:
    """One evaluation's work on ready inbox files: take, reject or set aside each one."""

    def __init__(
        self,
        context: dg.SensorEvaluationContext,
        inbox: Path,
        data_dir: Path,
        overrides: list[FileOverride],
    ):
        self.log = context.log
        self.inbox = inbox
        self.data_dir = data_dir
        self.overrides = overrides
        self.accepted: list[_Accepted] = []
        self.handled: set[str] = set()
        self.counts = {"rejected": 0, "duplicates": 0}
        self._index: dict[int, list[Path]] | None = None
        self._hashes: dict[Path, str] = {}

    def take(self, name: str, size: int) -> None:
        path = self.inbox / name
        try:
            self._take(path, size)
        except FileNotFoundError:
            self.log.info(f"inbox file {name} went away before it was taken")
        except OSError as exc:  # unreadable or unmovable for now: keep it and retry next tick
            self.log.error(f"could not take inbox file {name}: {exc}; retrying next tick")
            return
        self.handled.add(name)

    def _take(self, path: Path, size: int) -> None:
        name = path.name
        if self._index is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._index = _bar_file_index(self.data_dir)
        digest = _sha256(path)
        twin = self._identical_file(size, digest)
        if twin is not None:
            reason = f"identical (sha256 {digest}) to {twin}, already in the data directory"
            target = _set_aside(
                self.inbox,
                DUPLICATES_FOLDER,
                path,
                _reason_text(name, reason, "duplicate", _DUPLICATE_ADVICE),
            )
            self.log.warning(f"inbox file {name} not taken: {reason}. Moved to {target}")
            self.counts["duplicates"] += 1
            return
        destination = _free_path(self.data_dir, name)
        try:
            symbol, parsed = _validate_bar_file(path, destination.name, self.overrides)
        except InboxRejection as rejection:
            target = _set_aside(
                self.inbox,
                REJECTED_FOLDER,
                path,
                _reason_text(name, str(rejection), "rejected", _REJECTED_ADVICE),
            )
            self.log.warning(
                f"rejected inbox file {name}: {rejection}. Moved to {target}, reason in "
                f"{target.name}{REASON_SUFFIX}"
            )
            self.counts["rejected"] += 1
            return
        _move(path, destination)
        self._index.setdefault(size, []).append(destination)
        self._hashes[destination] = digest
        self.accepted.append(_Accepted(symbol, name, digest, destination))
        errors = parsed.rows.get_column("error").is_not_null().sum()
        self.log.info(
            f"took inbox file {name} for {symbol} into {destination}: {parsed.format.value}, "
            f"clock {parsed.timezone}, {parsed.rows.height} rows"
            + (f" ({errors} unparseable, to be quarantined)" if errors else "")
        )

    def _identical_file(self, size: int, digest: str) -> Path | None:
        for candidate in (self._index or {}).get(size, []):
            if candidate not in self._hashes:
                try:
                    self._hashes[candidate] = _sha256(candidate)
                except OSError:
                    continue
            if self._hashes[candidate] == digest:
                return candidate
        return None


def inbox_run_key(symbol: str, files: list[tuple[str, str]]) -> str:
    """The run key of a refresh for `symbol` after taking `files` ((name, sha256) pairs)."""
    return f"inbox:{symbol}:" + ",".join(f"{name}#{digest[:16]}" for name, digest in sorted(files))


_REJECTED_ADVICE = (
    "Nothing was deleted. Fix the file (or declare its format and clock in the bar_source "
    "resource's overrides) and drop it in the inbox again."
)
_DUPLICATE_ADVICE = (
    "Nothing was lost: the data directory already holds these exact bytes. Delete this copy, "
    "or drop it in the inbox again if its content changes."
)


def _reason_text(name: str, reason: str, outcome: str, advice: str) -> str:
    when = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        f"file: {name}\n{outcome}: {when} by the {INBOX_SENSOR} sensor\nreason: {reason}\n"
        f"{advice}\n"
    )
