"""Taking settled inbox files into the data directory: take, reject, replace or set aside.

A file is taken to the same relative path in the data directory, so `inbox/EURUSD/2023.csv`
becomes `<data dir>/EURUSD/2023.csv` and belongs to EURUSD by its folder, as the data
directory is read. It is rejected (moved to `rejected/` with a reason file) when no single
symbol is in its path, when it cannot be read as bars, or when fewer than
`INBOX_MIN_PARSED_SHARE` of its data lines parse, judged first on its head for a large
text file so that garbage is not read to the end. A file byte-identical to one already in
the data directory (every bar field equal, volume and spread included) is set aside in
`duplicates/`. A different file under a taken path is a new version of that file: it
replaces the older copy in one rename, and the older copy is kept in `replaced/` (kept side
by side, the older copy's rows would win every overlapping time and the correction would be
quarantined). Symbolic links and special files are rejected without being opened. Nothing
is ever deleted.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Protocol

import polars as pl

from forex_assets.ingest.bar_files import (
    AUTO,
    ParsedFile,
    bar_file_suffixes,
    bar_format,
    detect_format,
    read_bar_file,
)
from forex_assets.ingest.bar_format import BarFileError
from forex_assets.ingest.inbox_moves import REASON_SUFFIX, move, set_aside
from forex_assets.ingest.inbox_scan import (
    DUPLICATES_FOLDER,
    REJECTED_FOLDER,
    REPLACED_FOLDER,
    SYMBOLIC_LINK,
    InboxEntry,
)
from forex_assets.ingest.sources import IGNORED_PREFIXES, FileOverride, file_symbols
from forex_assets.market.instruments import Instrument, instrument_for

# A file is taken only when at least this share of its non-blank data lines parse as bars
# (a row that parses but breaks a validation rule counts as parsed: the validator
# quarantines it by line). Below it the file is mostly something else, and taking it would
# register its symbol and fill the quarantine with the rest.
INBOX_MIN_PARSED_SHARE = 0.5
# A larger text file is first judged on the lines within its first INBOX_HEAD_BYTES, so a
# file of garbage is rejected without being read (or hashed) to the end.
INBOX_HEAD_BYTES = 1 << 20


class IntakeLog(Protocol):
    """Where the intake reports each outcome (a `logging.Logger`, a Dagster run's log)."""

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...

    def error(self, msg: str) -> None: ...


class InboxRejection(Exception):
    """A file in the inbox that cannot become a symbol's bar file, and why."""


@dataclass(frozen=True)
class TakenFile:
    """An inbox file now in the data directory at `destination`."""

    symbol: str
    name: str  # path relative to the inbox, which is also its path in the data directory
    digest: str  # sha256 of its bytes
    destination: Path
    parsed: ParsedFile


@dataclass
class IntakeReport:
    """What became of each entry the intake was given."""

    taken: list[TakenFile] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    # Changed or gone since the sensor saw them: the next look decides.
    skipped: list[str] = field(default_factory=list)
    # Could not be read or moved for now (an OSError): left in the inbox, name -> error.
    failed: dict[str, str] = field(default_factory=dict)

    def taken_by_symbol(self) -> dict[str, list[TakenFile]]:
        by_symbol: dict[str, list[TakenFile]] = {}
        for item in self.taken:
            by_symbol.setdefault(item.symbol, []).append(item)
        return dict(sorted(by_symbol.items()))


class InboxIntake:
    """Takes inbox entries into `data_dir` one by one, reporting to `log` and `report`."""

    def __init__(
        self, inbox: Path, data_dir: Path, overrides: Sequence[FileOverride], log: IntakeLog
    ):
        self.inbox = inbox
        self.data_dir = data_dir
        self.overrides = overrides
        self.log = log
        self.report = IntakeReport()
        self._index: dict[int, list[Path]] | None = None
        self._hashes: dict[Path, str] = {}

    def refuse(self, name: str, what: str) -> None:
        """Reject a symbolic link or special file without opening it."""
        path = self.inbox / name
        try:
            if what == SYMBOLIC_LINK:
                reason = (
                    f"{SYMBOLIC_LINK} (to {os.readlink(path)}); the intake never opens a "
                    "link's target, which could be any file on this machine. Put the real file "
                    "in the inbox (copy it, e.g. cp -L), not a link to it"
                )
            else:
                reason = f"{what}; the inbox takes regular files only: copy the data into one"
            self._reject(name, reason)
        except FileNotFoundError:
            self.log.info(f"inbox entry {name} went away before it was refused")
            self.report.skipped.append(name)
        except OSError as exc:
            self._fail(name, exc)

    def take(self, name: str, seen: InboxEntry) -> None:
        """Take the regular file `name`, as it was `seen` when it had settled."""
        path = self.inbox / name
        try:
            stat = os.lstat(path)
            if not S_ISREG(stat.st_mode) or InboxEntry.of(stat) != seen:
                # Rewritten or swapped (for a link, say) since it was seen: look again later.
                self.log.info(f"inbox file {name} changed since it was seen; waiting again")
                self.report.skipped.append(name)
                return
            self._take(name, stat.st_size)
        except FileNotFoundError:
            self.log.info(f"inbox file {name} went away before it was taken")
            self.report.skipped.append(name)
        except OSError as exc:  # unreadable or unmovable for now: keep it in the inbox
            self._fail(name, exc)

    def _fail(self, name: str, exc: OSError) -> None:
        self.log.error(f"could not take inbox entry {name}: {exc}; it stays in the inbox")
        self.report.failed[name] = str(exc)

    def _take(self, name: str, size: int) -> None:
        path = self.inbox / name
        if self._index is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._index = _bar_file_index(self.data_dir)
        try:
            symbol = symbol_for(self.inbox, name)
            override = next((o for o in self.overrides if fnmatch.fnmatch(name, o.pattern)), None)
            file_format = override.format if override else AUTO
            timezone = override.timezone if override else None
            instrument = instrument_for(symbol)
            if size > INBOX_HEAD_BYTES:
                file_format = _format_of(path, file_format)
                if bar_format(file_format).is_text:
                    head = _read_bars(path, file_format, timezone, instrument, INBOX_HEAD_BYTES)
                    _require_parsed_share(
                        head, f"its first {INBOX_HEAD_BYTES:,} bytes (the rest was not read)"
                    )
            digest = _sha256(path)
            twin = self._identical_file(size, digest)
            if twin is None:
                parsed = _read_bars(path, file_format, timezone, instrument)
                _require_parsed_share(parsed, "the file")
        except InboxRejection as rejection:
            self._reject(name, str(rejection))
            return
        if twin is not None:
            reason = f"identical (sha256 {digest}) to {twin}, already in the data directory"
            text = _reason_text(name, reason, "duplicate", _DUPLICATE_ADVICE)
            target = set_aside(self.inbox, DUPLICATES_FOLDER, name, text)
            self.log.warning(f"inbox file {name} not taken: {reason}. Moved to {target}")
            self.report.duplicates.append(name)
            return
        destination = self.data_dir / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if destination.exists() or destination.is_symlink():
            self._replace(name, destination, digest)
        else:
            move(path, destination)
        self._index.setdefault(size, []).append(destination)
        self._hashes[destination] = digest
        self.report.taken.append(TakenFile(symbol, name, digest, destination, parsed))
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
        kept = set_aside(self.inbox, REPLACED_FOLDER, name, text, source=destination)
        move(self.inbox / name, destination)
        for paths in (self._index or {}).values():
            if destination in paths:
                paths.remove(destination)
        self._hashes.pop(destination, None)
        self.report.replaced.append(name)
        self.log.warning(
            f"inbox file {name} replaced {destination}, a different file of the same path: the "
            f"newer file wins and the older copy is kept in {kept}. Bars only the older copy "
            "has are no longer read; drop it again under another name to keep them."
        )

    def _reject(self, name: str, reason: str) -> None:
        text = _reason_text(name, reason, "rejected", _REJECTED_ADVICE)
        target = set_aside(self.inbox, REJECTED_FOLDER, name, text)
        self.log.warning(
            f"rejected inbox file {name}: {reason}. Moved to {target}, reason in "
            f"{target.name}{REASON_SUFFIX}"
        )
        self.report.rejected.append(name)

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


def symbol_for(inbox: Path, relative: str) -> str:
    """The one symbol an inbox file holds, found as the data directory finds it: from its
    folders (`EURUSD/2023.csv`), else from its name (`DAT_ASCII_EURUSD_M1_2023.csv`)."""
    suffix = Path(relative).suffix.lower()
    suffixes = bar_file_suffixes()
    if suffix not in suffixes:
        raise InboxRejection(
            f"the extension {suffix or '(none)'!r} is not read from the data directory; bar "
            f"files end in {', '.join(sorted(suffixes))}"
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


def _format_of(path: Path, declared: str) -> str:
    """The declared format, or the detected one (detected once, for the head and the file)."""
    if declared != AUTO:
        return declared
    try:
        return detect_format(path).name
    except BarFileError as exc:
        raise InboxRejection(exc.reason) from None


def _read_bars(
    path: Path,
    file_format: str,
    timezone: str | None,
    instrument: Instrument,
    head_bytes: int | None = None,
) -> ParsedFile:
    """`read_bar_file`, with every way a file fails to be bars turned into a rejection; an
    OSError (unreadable for now) propagates so the file stays in the inbox, not rejected."""
    try:
        return read_bar_file(path, file_format, timezone, instrument, head_bytes=head_bytes)
    except BarFileError as exc:
        raise InboxRejection(exc.reason) from None
    except OSError:
        raise
    except Exception as exc:  # a reader that fails on odd bytes must not stop the intake
        raise InboxRejection(f"could not be read as bars: {type(exc).__name__}: {exc}") from None


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bar_file_index(data_dir: Path) -> dict[int, list[Path]]:
    """The data directory's files by size, to find an identical file without hashing all."""
    index: dict[int, list[Path]] = {}
    if data_dir.is_dir():
        for path in data_dir.rglob("*"):
            relative = path.relative_to(data_dir).parts
            if path.is_file() and not any(p.startswith(IGNORED_PREFIXES) for p in relative):
                index.setdefault(path.stat().st_size, []).append(path)
    return index


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
    return f"file: {name}\n{outcome}: {when} by the data inbox\nreason: {reason}\n{advice}\n"
