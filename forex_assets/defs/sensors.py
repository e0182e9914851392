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
from stat import S_ISREG

import dagster as dg
import polars as pl

from forex_assets import settings
from forex_assets.defs.jobs import REFRESH_FEATURES, refresh_features_job
from forex_assets.defs.resources import BarSourceResource
from forex_assets.ingest.bar_files import AUTO, ParsedFile, bar_file_suffixes, read_bar_file
from forex_assets.ingest.bar_format import BarFileError
from forex_assets.ingest.sources import FileOverride, file_symbols, symbols_in_data_dir
from forex_assets.market.instruments import Instrument, instrument_for
from forex_assets.partitions import SYMBOLS_PARTITION_SET, symbol_partitions
from forex_assets.storage.atomic import atomic_write_bytes


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
REPLACED_FOLDER = "replaced"
# The sensor's own folders inside the inbox, never scanned for new files.
_SET_ASIDE_FOLDERS = frozenset({REJECTED_FOLDER, DUPLICATES_FOLDER, REPLACED_FOLDER})
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
# A file is taken only when at least this share of its non-blank data lines parse as bars
# (a row that parses but breaks a validation rule counts as parsed: the validator
# quarantines it by line). Below it the file is mostly something else, and taking it would
# register its symbol and fill the quarantine with the rest.
INBOX_MIN_PARSED_SHARE = 0.5
# A larger text file is first judged on the lines within its first INBOX_HEAD_BYTES, so a
# file of garbage is rejected without being read (or hashed) to the end.
INBOX_HEAD_BYTES = 1 << 20
# Names that are still being written by a browser, rsync, an editor or a copy tool.
_IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".filepart")
_IGNORED_PREFIXES = (".", "~")
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})


class InboxRejection(Exception):
    """A file in the inbox that cannot become a symbol's bar file, and why."""


@dataclass(frozen=True)
class _Accepted:
    symbol: str
    name: str  # path relative to the inbox, which is also its path in the data directory
    digest: str
    destination: Path


@dataclass(frozen=True)
class _InboxScan:
    """What the inbox holds: files to take once settled, and entries refused unopened."""

    files: dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)
    refused: dict[str, str]  # relative path -> what the entry is


def _scan_inbox(inbox: Path) -> _InboxScan:
    """Finished files at any depth of the inbox, as the data directory is read at any depth.

    Nothing is followed or opened here: a symbolic link, FIFO, socket or device is listed in
    `refused` (reading a link would read any file on the machine, opening a FIFO blocks), and
    hidden or still-being-written names and the sensor's own folders are skipped.
    """
    files: dict[str, tuple[int, int]] = {}
    refused: dict[str, str] = {}

    def walk(folder: Path, prefix: str) -> None:
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:  # a folder taken away while being listed
            return
        for entry in entries:
            name, relative = entry.name, f"{prefix}{entry.name}"
            if name.startswith(_IGNORED_PREFIXES) or name.lower().endswith(_IN_PROGRESS_SUFFIXES):
                continue
            try:
                if entry.is_symlink():
                    refused[relative] = "is a symbolic link"
                elif entry.is_dir(follow_symlinks=False):
                    if prefix or name not in _SET_ASIDE_FOLDERS:
                        walk(Path(entry.path), f"{relative}/")
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    files[relative] = (stat.st_size, stat.st_mtime_ns)
                else:
                    refused[relative] = "is not a regular file (a FIFO, socket or device)"
            except FileNotFoundError:  # taken away between listing and stat
                continue

    walk(inbox, "")
    return _InboxScan(files, refused)


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
    """`folder/name`, or `folder/<stem>-2<suffix>`, `-3`, ... when that name or its reason
    file's name is taken (a set-aside file named like a reason file must not be overwritten
    by the reason of a later one)."""

    def taken(path: Path) -> bool:
        return any(p.exists() or p.is_symlink() for p in (path, Path(f"{path}{REASON_SUFFIX}")))

    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while taken(candidate):
        candidate = folder / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


def _copy_into_place(source: Path, destination: Path) -> None:
    """Copy `source` under a hidden name beside `destination`, which every reader here
    ignores, and rename it into place: `destination` appears complete or not at all."""
    staging = destination.with_name(f".{destination.name}.incoming")
    shutil.copy2(source, staging, follow_symlinks=False)
    os.replace(staging, destination)


def _move(source: Path, destination: Path) -> None:
    """Move a file so that `destination` appears complete or not at all.

    Within one filesystem this is a rename. Across filesystems (an inbox on a share) the file
    is copied into place (`_copy_into_place`) and only then removed from the inbox.
    `destination` is a free name (`_free_path`), or a file already preserved elsewhere that
    this replaces in one step: sensor ticks never overlap, so no other writer races for it.
    """
    try:
        os.rename(source, destination)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    _copy_into_place(source, destination)
    source.unlink()


def _preserve(source: Path, keep: Path) -> None:
    """A second name for `source` at `keep` (a hard link, or a copy across filesystems)."""
    try:
        os.link(source, keep, follow_symlinks=False)
    except OSError:
        _copy_into_place(source, keep)


def _set_aside(
    inbox: Path, folder: str, relative: str, text: str, source: Path | None = None
) -> Path:
    """Move the inbox file `relative` (or preserve `source`) under `<inbox>/<folder>/`, at the
    same relative path, with a `.reason.txt` beside it; never deletes."""
    target_dir = (inbox / folder / relative).parent
    target_dir.mkdir(parents=True, exist_ok=True)
    target = _free_path(target_dir, Path(relative).name)
    # The reason first: a file found in rejected/ always has its explanation next to it.
    atomic_write_bytes(target_dir / f"{target.name}{REASON_SUFFIX}", text.encode("utf-8"))
    if source is None:
        _move(inbox / relative, target)
    else:
        _preserve(source, target)
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


def _symbol_for(inbox: Path, relative: str) -> str:
    """The one symbol an inbox file holds, found as the data directory finds it: from its
    folders (`EURUSD/2023.csv`), else from its name (`DAT_ASCII_EURUSD_M1_2023.csv`)."""
    suffix = Path(relative).suffix.lower()
    if suffix not in bar_file_suffixes():
        raise InboxRejection(
            f"the extension {suffix or '(none)'!r} is not read from the data directory; bar "
            f"files end in {', '.join(sorted(bar_file_suffixes()))}"
        )
    symbols = file_symbols(inbox, inbox / relative)
    if not symbols:
        raise InboxRejection(
            "no symbol in the file name: name the file after its pair as vendors do "
            "(DAT_ASCII_EURUSD_M1_2023.csv, EURUSD1.csv, GBPJPY_M1.parquet), or put it in a "
            "folder named after the pair (EURUSD/2023.csv)"
        )
    if len(symbols) > 1:
        where = "its folders name" if "/" in relative else "the file name names"
        raise InboxRejection(
            f"{where} several symbols ({', '.join(symbols)}); a bar file holds one pair: "
            "rename it (or its folder) so that it names exactly one"
        )
    return symbols[0]


def _require_parsed_share(parsed: ParsedFile, scope: str) -> None:
    """Reject a file of which fewer than `INBOX_MIN_PARSED_SHARE` of the data lines parse."""
    errors = parsed.rows.get_column("error")
    lines, good = errors.len(), errors.null_count()
    if lines == 0:
        raise InboxRejection(f"no data rows (read as {parsed.format})")
    if good >= INBOX_MIN_PARSED_SHARE * lines:
        return
    first = parsed.rows.filter(pl.col("error").is_not_null()).row(0, named=True)
    raise InboxRejection(
        f"only {good} of the {lines} non-blank data lines in {scope} parse as "
        f"{parsed.format} bars ({good / lines:.1%}); an inbox file is taken only when at "
        f"least {INBOX_MIN_PARSED_SHARE:.0%} of them do, so that a file that is mostly "
        f"something else registers no symbol and fills no quarantine. First unparseable: "
        f"line {first['line']}: {first['error'][:120]}. Cut the file down to its bars (or "
        "declare its format in the bar_source resource's overrides) and drop it again"
    )


@dg.sensor(
    name=INBOX_SENSOR,
    job=refresh_features_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Watches the inbox folder (FOREX_ASSETS_INBOX, default <project home>/inbox), and "
        "folders in it, for new bar files in any supported format. A file that reads as bars "
        "is moved into the data directory at the same relative path (a newer file of a taken "
        "name replaces the older, which goes to inbox/replaced/), its symbol is added to the "
        "'symbols' partition set and a refresh_features run is requested for it; an unreadable "
        "file, one that is mostly not bars, or a symbolic link goes to inbox/rejected/ with a "
        ".reason.txt; a copy of a file already in the data directory goes to inbox/duplicates/."
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

    Folders are taken file by file, each to the same relative path in the data directory, so
    `inbox/EURUSD/2023.csv` becomes `<data dir>/EURUSD/2023.csv` and belongs to EURUSD by its
    folder, as the data directory is read. Symbolic links (and FIFOs, sockets, devices) are
    rejected on sight without being opened. A file is rejected when fewer than
    `INBOX_MIN_PARSED_SHARE` of its data lines parse, judged first on its head for a large
    file so that garbage is not read to the end.

    One `refresh_features` run is requested per symbol that got files in the tick, with run
    key `inbox:<symbol>:<file>#<sha256 prefix>[,...]` over those files, sorted: Dagster
    launches one run per key and sensor, so a re-evaluated tick or the same file dropped again
    never launches a second run. A file byte-identical to one already in the data directory
    (every bar field equal, volume and spread included) is not moved in but set aside in
    `duplicates/`. A different file under a taken path is a new version of that file: it
    replaces the older copy in one rename, and the older copy is kept in `replaced/` with a
    reason file; the log says so. (Kept side by side, the older copy's rows would win every
    overlapping time and the correction would be quarantined.) Nothing is ever deleted.

    The moves happen while the tick is evaluated, before Dagster launches its runs. Should
    the runs be lost after that (a tick previewed in the UI, which launches nothing), the
    files are in the data directory, the `symbol_registry` sensor registers their symbols,
    and the next `daily_refresh` reads them.
    """
    inbox = settings.inbox_dir()
    data_dir = Path(bar_source.data_dir).expanduser().resolve()
    _check_folders(inbox, data_dir)
    inbox.mkdir(parents=True, exist_ok=True)
    previous = _load_inbox_cursor(context.cursor)
    scan = _scan_inbox(inbox)
    current = scan.files
    quiet_before_ns = time.time_ns() - int(INBOX_QUIET_SECONDS * 1e9)
    ready = sorted(
        name
        for name, observed in current.items()
        if previous.get(name) == observed and observed[1] <= quiet_before_ns
    )
    overrides = [FileOverride(o.pattern, o.format, o.timezone) for o in bar_source.overrides]
    tick = _InboxTick(context, inbox, data_dir, overrides)
    for name, what in sorted(scan.refused.items()):
        tick.refuse(name, what)
    started = time.monotonic()
    for taken, name in enumerate(ready):
        if (
            taken >= INBOX_MAX_FILES_PER_TICK
            or time.monotonic() - started > INBOX_TICK_BUDGET_SECONDS
        ):
            context.log.info(f"{len(ready) - taken} ready files left for the next tick")
            break
        tick.take(name, observed=current[name])

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
                    INBOX_FILES_TAG: ", ".join(
                        sorted(i.destination.relative_to(data_dir).as_posix() for i in items)
                    ),
                },
            )
            for symbol, items in sorted(by_symbol.items())
        ],
        dynamic_partitions_requests=(
            [symbol_partitions.build_add_request(new_symbols)] if new_symbols else []
        ),
        cursor=cursor,
    )


def _check_folders(inbox: Path, data_dir: Path) -> None:
    """Refuse a data directory that overlaps the inbox or the project's own folders.

    The data directory is read at any depth and the inbox scanned at any depth: the pipeline
    would read its own Parquet store or model files as bar files, and the sensor would take
    files before they are checked (or the data directory's files as new drops).
    """
    if inbox == data_dir or data_dir in inbox.parents:
        raise dg.DagsterInvariantViolationError(
            f"{settings.ENV_INBOX}={inbox} is inside the data directory {data_dir}: the pipeline "
            "would read files before they are checked, and rejected ones too. Point the inbox "
            "elsewhere (default: <project home>/inbox)."
        )
    own = {
        f"inbox ({settings.ENV_INBOX})": inbox,
        "Parquet store": settings.storage_root(),
        "DuckDB catalog": settings.catalog_path(),
        "model folder": settings.models_root(),
        "trading folder": settings.trading_dir(),
    }
    for what, path in own.items():
        if data_dir in path.parents:
            relation = "contains"
        elif path == data_dir or path in data_dir.parents:
            relation = "is inside"
        else:
            continue
        raise dg.DagsterInvariantViolationError(
            f"the data directory {data_dir} (bar_source data_dir, from {settings.ENV_DATA_DIR}) "
            f"{relation} the project's {what} {path}: bar files are read from the data "
            "directory at any depth and inbox files moved into it, so the pipeline's own files "
            f"would be read as bars or overwritten. Point {settings.ENV_DATA_DIR} at a folder of "
            f"its own (default: {settings.project_home() / 'data'})."
        )


class _InboxTick:
    """One evaluation's work on the inbox: take, reject, replace or set aside each file."""

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

    def refuse(self, name: str, what: str) -> None:
        """Reject a symbolic link or special file without opening it."""
        path = self.inbox / name
        try:
            if what == "is a symbolic link":
                reason = (
                    f"is a symbolic link (to {os.readlink(path)}); the sensor never opens a "
                    "link's target, which could be any file on this machine. Put the real file "
                    "in the inbox (copy it, e.g. cp -L), not a link to it"
                )
            else:
                reason = f"{what}; the inbox takes regular files only: copy the data into one"
            self._reject(name, reason)
        except FileNotFoundError:
            self.log.info(f"inbox entry {name} went away before it was refused")
        except OSError as exc:
            self.log.error(f"could not refuse inbox entry {name}: {exc}; retrying next tick")

    def take(self, name: str, observed: tuple[int, int]) -> None:
        path = self.inbox / name
        try:
            stat = os.lstat(path)
            if not S_ISREG(stat.st_mode) or (stat.st_size, stat.st_mtime_ns) != observed:
                # Rewritten or swapped (for a link, say) since it was seen: look again later.
                self.log.info(f"inbox file {name} changed since it was seen; waiting again")
                return
            self._take(name, stat.st_size)
        except FileNotFoundError:
            self.log.info(f"inbox file {name} went away before it was taken")
        except OSError as exc:  # unreadable or unmovable for now: keep it and retry next tick
            self.log.error(f"could not take inbox file {name}: {exc}; retrying next tick")
            return
        self.handled.add(name)

    def _take(self, name: str, size: int) -> None:
        path = self.inbox / name
        if self._index is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._index = _bar_file_index(self.data_dir)
        try:
            symbol = _symbol_for(self.inbox, name)
            override = next((o for o in self.overrides if fnmatch.fnmatch(name, o.pattern)), None)
            how = (
                override.format if override else AUTO,
                override.timezone if override else None,
                instrument_for(symbol),
            )
            if path.suffix.lower() not in _PARQUET_SUFFIXES and size > INBOX_HEAD_BYTES:
                head = _read_bars(path, *how, head_bytes=INBOX_HEAD_BYTES)
                _require_parsed_share(
                    head, f"its first {INBOX_HEAD_BYTES:,} bytes (the rest was not read)"
                )
            digest = _sha256(path)
            twin = self._identical_file(size, digest)
            if twin is None:
                parsed = _read_bars(path, *how)
                _require_parsed_share(parsed, "the file")
        except InboxRejection as rejection:
            self._reject(name, str(rejection))
            return
        if twin is not None:
            reason = f"identical (sha256 {digest}) to {twin}, already in the data directory"
            text = _reason_text(name, reason, "duplicate", _DUPLICATE_ADVICE)
            target = _set_aside(self.inbox, DUPLICATES_FOLDER, name, text)
            self.log.warning(f"inbox file {name} not taken: {reason}. Moved to {target}")
            self.counts["duplicates"] += 1
            return
        destination = self.data_dir / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if destination.exists() or destination.is_symlink():
            self._replace(name, destination, digest)
        else:
            _move(path, destination)
        self._index.setdefault(size, []).append(destination)
        self._hashes[destination] = digest
        self.accepted.append(_Accepted(symbol, name, digest, destination))
        errors = parsed.rows.get_column("error").is_not_null().sum()
        self.log.info(
            f"took inbox file {name} for {symbol} into {destination}: {parsed.format}, "
            f"clock {parsed.timezone}, {parsed.rows.height} rows"
            + (f" ({errors} unparseable, to be quarantined)" if errors else "")
        )

    def _replace(self, name: str, destination: Path, digest: str) -> None:
        """Put the inbox file `name` over `destination`, keeping the older copy in replaced/.

        The older copy is preserved first and the new file then renamed over it, so the data
        directory holds one version of the file at every moment and a crash loses neither.
        """
        reason = (
            f"replaced in the data directory by the newer inbox file {name} (sha256 {digest}), "
            "which has the same path and different content"
        )
        text = _reason_text(name, reason, "replaced", _REPLACED_ADVICE)
        kept = _set_aside(self.inbox, REPLACED_FOLDER, name, text, source=destination)
        _move(self.inbox / name, destination)
        for paths in (self._index or {}).values():
            if destination in paths:
                paths.remove(destination)
        self._hashes.pop(destination, None)
        self.log.warning(
            f"inbox file {name} replaced {destination}, a different file of the same path: the "
            f"newer file wins and the older copy is kept in {kept}. Bars only the older copy "
            "has are no longer read; drop it again under another name to keep them."
        )

    def _reject(self, name: str, reason: str) -> None:
        text = _reason_text(name, reason, "rejected", _REJECTED_ADVICE)
        target = _set_aside(self.inbox, REJECTED_FOLDER, name, text)
        self.log.warning(
            f"rejected inbox file {name}: {reason}. Moved to {target}, reason in "
            f"{target.name}{REASON_SUFFIX}"
        )
        self.counts["rejected"] += 1
        self.handled.add(name)

    def _identical_file(self, size: int, digest: str) -> Path | None:
        """A data directory file with the same bytes (so the same bars, to the last volume
        and spread digit), hashing only the files of the same size."""
        for candidate in (self._index or {}).get(size, []):
            if candidate not in self._hashes:
                try:
                    self._hashes[candidate] = _sha256(candidate)
                except OSError:
                    continue
            if self._hashes[candidate] == digest:
                return candidate
        return None


def _read_bars(
    path: Path,
    file_format: str,
    timezone: str | None,
    instrument: Instrument,
    head_bytes: int | None = None,
) -> ParsedFile:
    """`read_bar_file`, with every way a file fails to be bars turned into a rejection; an
    OSError (unreadable for now) propagates so the file is retried, not rejected."""
    try:
        return read_bar_file(path, file_format, timezone, instrument, head_bytes=head_bytes)
    except BarFileError as exc:
        raise InboxRejection(exc.reason) from None
    except OSError:
        raise
    except Exception as exc:  # a reader that fails on odd bytes must not stop the sensor
        raise InboxRejection(f"could not be read as bars: {type(exc).__name__}: {exc}") from None


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
_REPLACED_ADVICE = (
    "Nothing was lost: this is the older copy. The data directory now reads the newer file "
    "only; to have this one read as well, rename it and drop it in the inbox again."
)


def _reason_text(name: str, reason: str, outcome: str, advice: str) -> str:
    when = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        f"file: {name}\n{outcome}: {when} by the {INBOX_SENSOR} sensor\nreason: {reason}\n"
        f"{advice}\n"
    )
