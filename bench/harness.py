"""The common shape of every benchmark module and the helpers they share.

A benchmark is a module ``bench/bench_<name>.py`` with:

- ``DESCRIPTION``: one line saying what it measures;
- ``run(config: BenchConfig) -> BenchResult``: verify correctness first (raise
  `BenchCheckError` on any mismatch), then time "ours" and, where there is one, an
  "anchor" (the straightforward approach a user would otherwise write) side by side;
- optionally ``DEFAULT_CONFIG``: a dict of `BenchConfig` fields that replace the global
  defaults for this benchmark when the command line does not set them (a benchmark whose
  single run takes minutes defaults to ``{"repeats": 1}``).

`bench.run` discovers the modules, runs the requested ones and prints their tables.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

T = TypeVar("T")


class BenchCheckError(AssertionError):
    """A correctness check inside a benchmark failed; its numbers must not be trusted."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchCheckError(message)


@dataclass(frozen=True)
class BenchConfig:
    """Knobs every benchmark honours; each is settable from `python -m bench.run`."""

    repeats: int = 3
    warmup: int = 1
    years: float = 2.0
    symbol: str = "EURUSD"


@dataclass(frozen=True)
class Measurement:
    """Best-of-N wall time of one piece of work over `rows` units."""

    seconds: float
    rows: int
    samples: tuple[float, ...] = ()

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class BenchRow:
    name: str
    ours: Measurement
    anchor: Measurement | None = None
    anchor_does: str = ""
    # Why this row was not measured (e.g. the machine is too small); rendered instead of numbers.
    skipped: str = ""

    @classmethod
    def skip(cls, name: str, reason: str) -> BenchRow:
        """A row that says it was not measured, and why, instead of showing made-up numbers."""
        return cls(name, Measurement(0.0, 0), skipped=reason)

    @property
    def speedup(self) -> float | None:
        if self.skipped or self.anchor is None or self.ours.seconds <= 0:
            return None
        return self.anchor.seconds / self.ours.seconds


@dataclass
class BenchResult:
    name: str
    title: str
    unit: str = "rows"
    rows: list[BenchRow] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def time_best(fn: Callable[[], Any], repeats: int, warmup: int = 0) -> tuple[float, list[float]]:
    """Best wall time of `repeats` calls after `warmup` untimed calls (GC run before each)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(max(1, repeats)):
        gc.collect()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return min(samples), samples


def measure(
    fn: Callable[[], Any], rows: int, config: BenchConfig, warmed: bool = False
) -> Measurement:
    """Time `fn` per `config`; `warmed=True` when the caller already made the warm-up call."""
    best, samples = time_best(fn, config.repeats, 0 if warmed else config.warmup)
    return Measurement(best, rows, tuple(samples))


def warm_and_check(fn: Callable[[], T], config: BenchConfig) -> T:
    """Run the warm-up calls and return the last result, for the caller to verify."""
    result = fn()
    for _ in range(config.warmup - 1):
        result = fn()
    return result


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "usable cores": str(cores),
        "cpu": _cpu_model(),
        "python": sys.version.split()[0],
    }
    for package in ("polars", "pandas", "numpy", "pyarrow"):
        info[package] = _version(package)
    try:
        import polars as pl

        info["polars threads"] = str(pl.thread_pool_size())
    except ImportError:
        pass
    return info


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.1f}"


def render_table(result: BenchResult, config: BenchConfig, machine: dict[str, str]) -> str:
    """The result as a Markdown table with the machine, checks and notes around it."""
    unit = result.unit
    header = [
        "benchmark",
        "ours (s)",
        f"ours ({unit}/s)",
        "anchor (s)",
        f"anchor ({unit}/s)",
        "speedup (anchor/ours)",
        "anchor does",
    ]
    body = []
    for row in result.rows:
        if row.skipped:
            body.append([row.name, "skipped", "-", "-", "-", "-", row.skipped])
            continue
        anchor = row.anchor
        speedup = row.speedup
        body.append(
            [
                row.name,
                _seconds(row.ours.seconds),
                _rate(row.ours.rows_per_s),
                _seconds(anchor.seconds) if anchor else "-",
                _rate(anchor.rows_per_s) if anchor else "-",
                f"{speedup:.2f}x" if speedup is not None else "-",
                row.anchor_does or "-",
            ]
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    right = {1, 2, 3, 4, 5}

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)
        )
        + "|"
    )
    out = [
        f"## {result.name}: {result.title}",
        "",
        "machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        f"timing: best of {config.repeats} after {config.warmup} warm-up; "
        f"total benchmark wall time {result.elapsed_s:.1f} s",
        "",
        line(header),
        rule,
        *(line(r) for r in body),
    ]
    if result.checks:
        out += ["", "checks passed before timing:", *(f"- {c}" for c in result.checks)]
    if result.notes:
        out += ["", "notes:", *(f"- {n}" for n in result.notes)]
    return "\n".join(out) + "\n"
