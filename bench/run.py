"""Run the benchmarks: ``python -m bench.run [names...] [--repeats N] [--years Y]``.

Every module ``bench/bench_<name>.py`` is a benchmark named ``<name>`` (see
`bench.harness` for the shape it must have); with no names, all of them run. Each prints
a table of ours vs the anchor; ``--no-write`` skips saving it to bench/results/<name>.md.
A benchmark's ``DEFAULT_CONFIG`` replaces the global defaults for the options not given
on the command line. Exits non-zero when a benchmark's correctness check (or anything
else) fails.
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
    # None = not given: the benchmark's DEFAULT_CONFIG, else BenchConfig's default, applies.
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed repeats, the best is reported (default {defaults.repeats}, "
        "or the benchmark's own DEFAULT_CONFIG)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"untimed warm-up calls (default {defaults.warmup}, or the benchmark's own)",
    )
    parser.add_argument(
        "--years",
        type=float,
        default=None,
        help=f"years of sample M1 bars (default {defaults.years:g})",
    )
    parser.add_argument("--symbol", default=None, help="sample symbol (default EURUSD)")
    parser.add_argument(
        "--no-write", action="store_true", help="do not save tables to bench/results/<name>.md"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {sorted(names)}")
    if (args.repeats is not None and args.repeats < 1) or (
        args.warmup is not None and args.warmup < 1
    ):
        parser.error("--repeats and --warmup must be at least 1")
    if args.years is not None and not args.years > 0:
        parser.error("--years must be positive")
    return args


def config_for(args: argparse.Namespace, module: ModuleType | None = None) -> BenchConfig:
    """The command line's options, else the benchmark's DEFAULT_CONFIG, else BenchConfig's."""
    defaults = dataclasses.asdict(BenchConfig())
    own = getattr(module, "DEFAULT_CONFIG", {}) if module is not None else {}
    unknown = set(own) - set(defaults)
    if unknown:
        raise TypeError(f"{module.__name__}.DEFAULT_CONFIG has unknown fields {sorted(unknown)}")
    given = {k: getattr(args, k) for k in defaults if getattr(args, k) is not None}
    return BenchConfig(**{**defaults, **own, **given})


def _describe(config: BenchConfig) -> str:
    return ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items())


def main(argv: list[str] | None = None) -> int:
    names = available()
    args = _parse_args(argv, names)
    if args.list:
        for name, module_name in names.items():
            print(f"{name}: {getattr(load(module_name), 'DESCRIPTION', '')}")
        return 0
    base = config_for(args)
    machine = machine_info()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    print(f"config: {_describe(base)}\n", flush=True)
    failed = []
    for name in args.names or list(names):
        print(f"running {name} ...", flush=True)
        started = time.perf_counter()
        config = base
        try:
            module = load(names[name])
            config = config_for(args, module)
            if config != base:
                print(f"config for {name}: {_describe(config)}", flush=True)
            result: BenchResult = module.run(config)
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
