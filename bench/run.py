"""Run the benchmarks: ``python -m bench.run [names...] [--repeats N] [--years Y]``.

Every module ``bench/bench_<name>.py`` is a benchmark named ``<name>`` (see
`bench.harness` for the shape it must have); with no names, all of them run. Each prints
a table of ours vs the anchor; ``--no-write`` skips saving it to bench/results/<name>.md.
Exits non-zero when a benchmark's correctness check (or anything else) fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

from bench.harness import BenchCheckError, BenchConfig, BenchResult, machine_info, render_table

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PREFIX = "bench_"


def available() -> dict[str, str]:
    """Benchmark name -> module name, for every bench/bench_<name>.py."""
    return {
        info.name[len(PREFIX) :]: f"bench.{info.name}"
        for info in sorted(pkgutil.iter_modules([str(BENCH_DIR)]), key=lambda i: i.name)
        if info.name.startswith(PREFIX) and not info.ispkg
    }


def load(module_name: str) -> ModuleType:
    module = importlib.import_module(module_name)
    if not callable(getattr(module, "run", None)):
        raise TypeError(f"{module_name} has no run(config) -> BenchResult")
    return module


def _parse_args(argv: list[str] | None, names: dict[str, str]) -> argparse.Namespace:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Run forex_assets benchmarks (ours vs a plain pandas anchor).",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="name",
        help=f"benchmarks to run (default: all of {sorted(names)})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=defaults.repeats,
        help=f"timed repeats, the best is reported (default {defaults.repeats})",
    )
    parser.add_argument(
        "--warmup", type=int, default=defaults.warmup, help="untimed warm-up calls (default 1)"
    )
    parser.add_argument(
        "--years",
        type=float,
        default=defaults.years,
        help=f"years of sample M1 bars (default {defaults.years:g})",
    )
    parser.add_argument("--symbol", default=defaults.symbol, help="sample symbol (default EURUSD)")
    parser.add_argument(
        "--no-write", action="store_true", help="do not save tables to bench/results/<name>.md"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {sorted(names)}")
    if args.repeats < 1 or args.warmup < 1:
        parser.error("--repeats and --warmup must be at least 1")
    if not args.years > 0:
        parser.error("--years must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    names = available()
    args = _parse_args(argv, names)
    if args.list:
        for name, module_name in names.items():
            print(f"{name}: {getattr(load(module_name), 'DESCRIPTION', '')}")
        return 0
    config = BenchConfig(
        repeats=args.repeats, warmup=args.warmup, years=args.years, symbol=args.symbol
    )
    machine = machine_info()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    print(
        f"config: {', '.join(f'{k}={v}' for k, v in dataclasses.asdict(config).items())}\n",
        flush=True,
    )
    failed = []
    for name in args.names or list(names):
        print(f"running {name} ...", flush=True)
        started = time.perf_counter()
        try:
            result: BenchResult = load(names[name]).run(config)
        except BenchCheckError as exc:
            print(f"\nFAILED {name}: correctness check: {exc}\n", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        except Exception:
            print(f"\nFAILED {name}:", file=sys.stderr)
            traceback.print_exc()
            failed.append(name)
            continue
        result.elapsed_s = time.perf_counter() - started
        table = render_table(result, config, machine)
        print("\n" + table, flush=True)
        if not args.no_write:
            RESULTS_DIR.mkdir(exist_ok=True)
            target = RESULTS_DIR / f"{result.name}.md"
            target.write_text(table, encoding="utf-8")
            print(f"(written to {target.relative_to(BENCH_DIR.parent)})\n", flush=True)
    if failed:
        print(f"benchmarks FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
