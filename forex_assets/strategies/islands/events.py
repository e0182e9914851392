"""An island's log as typed records: what happened to it, in order, and its JSON form.

The log is the island's whole state. The main process merges the logs into the result
(`result`), a worker replays one to rebuild the island's CMA-ES without evaluating
anything (`replay`), and the checkpoint stores the logs epoch by epoch (`checkpoint`).
Records rather than dicts, so every consumer reads fields a type checker knows; and one
decoder here, so a checkpoint file whose events are of the wrong kind, type or shape is
refused with a `ValueError` before a replay could trip over it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

REGIMES = ("initial", "large", "small")


@dataclass(frozen=True, eq=False)
class Start:
    """A run of the island's CMA-ES begins: restart 0 is its first run, later ones follow
    the restart policy. `mean` is in the search space (the unit cube when bounded);
    `after` names the stop conditions that ended the run before (none for the first).
    """

    kind: ClassVar[str] = "start"
    restart: int
    regime: str  # one of REGIMES: BIPOP alternates large and small runs
    popsize: int
    sigma: float
    mean: np.ndarray
    after: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Inject:
    """The previous island's best solutions of the last epoch, in the search space,
    injected just before this epoch's first generation."""

    kind: ClassVar[str] = "inject"
    epoch: int
    X: np.ndarray


@dataclass(frozen=True, eq=False)
class Generation:
    """One generation: the solutions CMA-ES asked for (search space, one per row) and
    their fitness as the ES was told it (NaN/inf already replaced)."""

    kind: ClassVar[str] = "generation"
    epoch: int
    X: np.ndarray
    f: np.ndarray


@dataclass(frozen=True)
class Done:
    """The island used up its restarts; `after` names the stop conditions of its last run."""

    kind: ClassVar[str] = "done"
    after: tuple[str, ...]


Event = Start | Inject | Generation | Done
_RECORDS: dict[str, type[Event]] = {
    record.kind: record for record in (Start, Inject, Generation, Done)
}


@dataclass(frozen=True)
class Tally:
    """What an island's log adds up to, as the stop tests and the result read it."""

    generations: int = 0
    evaluations: int = 0
    popsize: int = 0  # of the island's current run; 0 before its first start
    restart: int = 0  # of the island's current run
    done: bool = False


def tally(log: Sequence[Event]) -> Tally:
    generations = evaluations = popsize = restart = 0
    done = False
    for event in log:
        if isinstance(event, Start):
            popsize, restart = event.popsize, event.restart
        elif isinstance(event, Generation):
            generations += 1
            evaluations += len(event.f)
        elif isinstance(event, Done):
            done = True
    return Tally(generations, evaluations, popsize, restart, done)


def encode_event(event: Event) -> dict[str, Any]:
    """The event as JSON values: its kind and its fields, arrays as nested lists.

    float repr round-trips exactly, so a decoded log replays bit for bit.
    """
    encoded: dict[str, Any] = {"kind": event.kind}
    for field in fields(event):
        value = getattr(event, field.name)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, tuple):
            value = list(value)
        encoded[field.name] = value
    return encoded


def decode_event(value: Any, dim: int, island: int) -> Event:
    """The event `encode_event` wrote, its solutions of `dim` entries each.

    Raises `ValueError` naming the island and what is wrong where `value` is no such event.
    """
    record = _RECORDS.get(value.get("kind")) if isinstance(value, dict) else None
    if record is None or set(value) != {"kind", *(field.name for field in fields(record))}:
        raise ValueError(f"island {island}: {str(value)[:80]} is not a logged event")
    where = f"island {island}, {record.kind} event"
    if record is Done:
        return Done(_names(value["after"], where))
    if record is Start:
        return Start(
            restart=_integer(value["restart"], 0, where, "restart"),
            regime=_regime(value["regime"], where),
            popsize=_integer(value["popsize"], 1, where, "popsize"),
            sigma=_step_size(value["sigma"], where),
            mean=_array(value["mean"], (dim,), where, "mean"),
            after=_names(value["after"], where),
        )
    epoch = _integer(value["epoch"], 0, where, "epoch")
    X = _array(value["X"], (None, dim), where, "X")
    if record is Inject:
        return Inject(epoch, X)
    return Generation(epoch, X, _array(value["f"], (len(X),), where, "f"))


def _integer(value: Any, minimum: int, where: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where}: {name}={value!r} is not an integer >= {minimum}")
    return value


def _regime(value: Any, where: str) -> str:
    if value not in REGIMES:
        raise ValueError(f"{where}: regime={value!r} is not one of {REGIMES}")
    return value


def _step_size(value: Any, where: str) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        sigma = float(value) if number else math.nan
    except OverflowError:  # an integer beyond every float
        sigma = math.inf
    if not 0 < sigma < math.inf:
        raise ValueError(f"{where}: sigma={str(value)[:80]} is not a positive step size")
    return sigma


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValueError(f"{where}: after={str(value)[:80]} is not a list of stop-condition names")
    return tuple(value)


def _array(value: Any, shape: tuple[int | None, ...], where: str, name: str) -> np.ndarray:
    """`value` as a float array of `shape` (None: any length)."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {name} is not an array of numbers ({error})") from None
    if array.ndim != len(shape) or any(
        want is not None and have != want for have, want in zip(array.shape, shape, strict=True)
    ):
        expected = ", ".join("n" if want is None else str(want) for want in shape)
        expected += "," if len(shape) == 1 else ""
        raise ValueError(f"{where}: {name} has shape {array.shape}, expected ({expected})")
    return array
