"""Island-search checkpoints: one sealed JSON file per epoch, in one directory per search.

A directory per search: the island layout (island count, population sizes) follows the
CPU budget a step gets, and `python -m forex_assets train` and `dagster job execute` give
the same asset different budgets on one home. A log replays only under the settings that
wrote it, so each search writes under `search-<hash of its fingerprint>/` of the
checkpoint root: a search resumes its own log and never meets one of another layout.

Sealed files: a resume trusts the logged fitness values without evaluating them again, so
a file that was truncated, overwritten or edited must not be read as a log. Every file
carries the sha256 of its canonical JSON. A file that does not parse, is not a checkpoint
file of this format, holds a log of the wrong shape or does not match its hash is moved
to `damaged/` (never deleted) together with every later epoch (their islands continued
from it), and the search resumes from the last good epoch, or afresh where there is none,
with a `CheckpointWarning` naming the file and what was wrong. The hash finds damage and
hand edits; it is no signature: a file rewritten together with its hash is caught only
where its solutions do not replay (`replay.replay`), not for a forged fitness alone.

The fingerprint (what makes a log replayable) and the epoch payload (each island's new
events, `events.encode_event`) are written and read here too, so this module is the one
place that knows the checkpoint's format; files of another format are set aside, never
read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cma

from forex_assets.storage.atomic import atomic_write_bytes, remove_stale_temp_files
from forex_assets.strategies.islands.events import Event, decode_event, encode_event
from forex_assets.strategies.islands.run import Objective
from forex_assets.strategies.islands.settings import Island, IslandSettings

CHECKPOINT_FORMAT = 2
MANIFEST_NAME = "search.json"
DAMAGED_FOLDER = "damaged"
SEARCH_PREFIX = "search-"
EPOCH_PREFIX = "epoch_"


class CheckpointWarning(UserWarning):
    """A checkpoint file was set aside; the search continues from an earlier epoch."""


class DamagedFile(ValueError):
    """A checkpoint file that cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class LoggedEpoch:
    """One epoch's file: the search's running time at its end and each island's new
    events (none for an island that had stopped)."""

    elapsed_s: float
    islands: tuple[tuple[Event, ...], ...]


@dataclass(frozen=True)
class SetAside:
    original: Path
    moved_to: Path
    problem: str


@dataclass(frozen=True)
class CheckpointReport:
    """Where a search logs, how much of it was resumed and what was set aside on the way.

    `other_searches` names the sibling directories of the checkpoint root (searches with
    other settings, e.g. another CPU budget's island layout) and the fingerprint entries
    each differs in, so a fresh start can say why it did not resume one of them.
    """

    directory: Path
    resumed_epochs: int
    set_aside: tuple[SetAside, ...]
    other_searches: tuple[tuple[str, tuple[str, ...]], ...]

    def warnings(self) -> list[str]:
        """One message per file set aside: which file, what was wrong, where it went."""
        return [
            f"island-search checkpoint file {item.original} {item.problem}; moved it to "
            f"{item.moved_to} (kept for inspection, never read again); {self.describe()}"
            for item in self.set_aside
        ]

    def describe(self) -> str:
        """How the search began: resumed (from how many epochs) or afresh, and where."""
        if self.resumed_epochs:
            return (
                f"island search resumed from its {self.resumed_epochs} logged epoch(s) in "
                f"{self.directory}"
            )
        text = f"island search started afresh in {self.directory}"
        if self.other_searches:
            others = "; ".join(
                f"{name} differs in {', '.join(keys) or 'nothing readable'}"
                for name, keys in self.other_searches
            )
            text += f" (not resumed from other settings' checkpoints beside it: {others})"
        return text


def search_fingerprint(
    objective: Objective, islands: list[Island], settings: IslandSettings
) -> dict:
    """What makes a log replayable; budgets are left out so a search can be extended."""
    function = objective.func if isinstance(objective, functools.partial) else objective
    first = islands[0]
    values = {
        "format": CHECKPOINT_FORMAT,
        "cma": cma.__version__,
        "objective": f"{function.__module__}.{getattr(function, '__qualname__', function)}",
        "dim": first.dim,
        "islands": settings.islands,
        "population_sizes": [island.popsize for island in islands],
        "seed": settings.seed,
        "sigma0": settings.sigma0,
        "lower": None if first.lower is None else first.lower.tolist(),
        "upper": None if first.upper is None else first.upper.tolist(),
        "x0": first.x0.tolist(),
        "migration_interval": settings.migration_interval,
        "migrants": settings.migrants,
        "restarts": settings.restarts,
        "max_restarts": settings.max_restarts,
    }
    return json.loads(json.dumps(values))


def search_directory(root: Path, fingerprint: dict) -> Path:
    """The directory of the search with this fingerprint under `root`."""
    digest = hashlib.sha256(_canonical(fingerprint)).hexdigest()[:16]
    return root / f"{SEARCH_PREFIX}{digest}"


def epoch_path(directory: Path, epoch: int) -> Path:
    return directory / f"{EPOCH_PREFIX}{epoch:05d}.json"


def open_checkpoint(
    root: Path, fingerprint: dict, islands: list[Island]
) -> tuple[CheckpointReport, list[LoggedEpoch]]:
    """The directory of the search with this fingerprint under `root` and its good epochs,
    in order; a file that cannot be used and every later one are set aside."""
    directory = search_directory(Path(root), fingerprint)
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(directory)
    set_aside: list[SetAside] = []
    manifest = directory / MANIFEST_NAME
    try:
        saved = _manifest(manifest) if manifest.exists() else fingerprint
        if saved != fingerprint:
            raise DamagedFile(
                f"records other settings than its directory name hashes (differs in "
                f"{', '.join(_differing(saved, fingerprint))})"
            )
    except DamagedFile as error:
        set_aside.append(_set_aside(directory, manifest, str(error)))
        # Without a trustworthy manifest nothing here is known to belong to this search.
        set_aside += [
            _set_aside(
                directory, path, f"belongs to a search whose manifest {manifest.name} was set aside"
            )
            for _, path in _epoch_files(directory)
        ]
    if not manifest.exists():
        atomic_write_bytes(manifest, _seal({"kind": "manifest", "payload": fingerprint}))

    epochs: list[LoggedEpoch] = []
    files = _epoch_files(directory)
    for epoch, path in files:
        if epoch != len(epochs):
            break
        try:
            epochs.append(_decode_epoch(_unseal(path, "epoch", epoch), islands))
        except DamagedFile as error:
            set_aside.append(_set_aside(directory, path, str(error)))
            break
        except ValueError as error:
            set_aside.append(
                _set_aside(directory, path, f"holds a log of the wrong shape: {error}")
            )
            break
    good = len(epochs)
    set_aside += [
        _set_aside(
            directory, path, f"continues from epoch {good}, which is missing or was set aside"
        )
        for epoch, path in files
        if epoch > good
    ]
    report = CheckpointReport(
        directory, good, tuple(set_aside), _other_searches(Path(root), directory, fingerprint)
    )
    for message in report.warnings():
        warnings.warn(message, CheckpointWarning, stacklevel=3)
    return report, epochs


def write_epoch(directory: Path, epoch: int, logged: LoggedEpoch) -> None:
    """One file per epoch, written whole or not at all: the log only ever grows."""
    payload = {
        "elapsed_s": logged.elapsed_s,
        "islands": [[encode_event(event) for event in events] for events in logged.islands],
    }
    atomic_write_bytes(
        epoch_path(directory, epoch), _seal({"kind": "epoch", "epoch": epoch, "payload": payload})
    )


def _decode_epoch(payload: Any, islands: list[Island]) -> LoggedEpoch:
    """The epoch `write_epoch` wrote; a `ValueError` names what is wrong with it."""
    if not isinstance(payload, dict) or set(payload) != {"elapsed_s", "islands"}:
        raise ValueError("expected an object with the keys elapsed_s and islands")
    elapsed, logs = payload["elapsed_s"], payload["islands"]
    if not isinstance(elapsed, int | float) or not math.isfinite(elapsed) or elapsed < 0:
        raise ValueError(f"elapsed_s={elapsed!r} is not a number of seconds")
    if not (
        isinstance(logs, list)
        and len(logs) == len(islands)
        and all(isinstance(log, list) for log in logs)
    ):
        raise ValueError(f"expected a list of {len(islands)} island logs")
    return LoggedEpoch(
        float(elapsed),
        tuple(
            tuple(decode_event(event, island.dim, island.index) for event in log)
            for log, island in zip(logs, islands, strict=True)
        ),
    )


def _canonical(document: Any) -> bytes:
    # float repr round-trips exactly, so a parsed file re-encodes to the bytes it hashed.
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _seal(body: dict) -> bytes:
    body = {"format": CHECKPOINT_FORMAT, **body}
    return _canonical({**body, "sha256": hashlib.sha256(_canonical(body)).hexdigest()})


def _unseal(path: Path, kind: str, epoch: int | None = None) -> Any:
    """The payload of the sealed file at `path`; `DamagedFile` says why it is unusable."""
    raw = path.read_bytes()
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DamagedFile(f"is not UTF-8 text (byte {error.start} of {len(raw)})") from None
    except json.JSONDecodeError as error:
        raise DamagedFile(
            f"is not valid JSON ({error.msg}: character {error.pos} of its {len(raw)} bytes), "
            "so it was truncated or overwritten"
        ) from None
    keys = {"format", "kind", "payload", "sha256"} | ({"epoch"} if kind == "epoch" else set())
    if (
        not isinstance(document, dict)
        or set(document) != keys
        or document["format"] != CHECKPOINT_FORMAT
        or document["kind"] != kind
    ):
        raise DamagedFile(
            f"is not a format-{CHECKPOINT_FORMAT} {kind} file of an island-search checkpoint "
            f"(expected the keys {sorted(keys)})"
        )
    sealed = document.pop("sha256")
    try:
        actual = hashlib.sha256(_canonical(document)).hexdigest()
    except ValueError as error:  # NaN or inf, which the writer never produces
        raise DamagedFile(f"holds values no checkpoint is written with ({error})") from None
    if actual != sealed:
        raise DamagedFile(
            f"does not match the sha256 it carries ({str(sealed)[:16]}..., content hashes to "
            f"{actual[:16]}...): it was edited or damaged after it was written"
        )
    if epoch is not None and document["epoch"] != epoch:
        raise DamagedFile(f"holds epoch {document['epoch']} but is named for epoch {epoch}")
    return document["payload"]


def _epoch_files(directory: Path) -> list[tuple[int, Path]]:
    files = []
    for path in directory.glob(f"{EPOCH_PREFIX}*.json"):
        number = path.name[len(EPOCH_PREFIX) : -len(".json")]
        if number.isdigit() and path == epoch_path(directory, int(number)):
            files.append((int(number), path))
    return sorted(files)


def _set_aside(directory: Path, path: Path, problem: str) -> SetAside:
    """Move `path` into `damaged/` under a name no earlier set-aside file holds."""
    folder = directory / DAMAGED_FOLDER
    folder.mkdir(exist_ok=True)
    target, copy = folder / path.name, 1
    while target.exists():
        target, copy = folder / f"{path.name}.{copy}", copy + 1
    path.rename(target)
    return SetAside(path, target, problem)


def _manifest(path: Path) -> dict:
    fingerprint = _unseal(path, "manifest")
    if not isinstance(fingerprint, dict):
        raise DamagedFile(f"holds a {type(fingerprint).__name__} where a fingerprint belongs")
    return fingerprint


def _differing(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _other_searches(
    root: Path, directory: Path, fingerprint: dict
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    others = []
    for sibling in sorted(root.glob(f"{SEARCH_PREFIX}*")):
        if sibling == directory or not (sibling / MANIFEST_NAME).is_file():
            continue
        try:
            differing = tuple(_differing(_manifest(sibling / MANIFEST_NAME), fingerprint))
        except DamagedFile:
            differing = ()
        others.append((sibling.name, differing))
    return tuple(others)
