"""Command line: `python -m forex_assets train --symbol EURUSD` and friends.

`train` runs the `symbol_pipeline` job for one symbol from this process, with the
project's budgeted executor (the same pools, thread budgets and warm workers as
`dagster job execute`, so both paths give every step the same budget), against the
Dagster instance in DAGSTER_HOME (or a local one under the project home), so its runs
show up in `dagster dev` like any other. It prints one line per finished step, what a
step waits for, and why a step failed. SIGINT and SIGTERM stop it: running steps are
interrupted, the run is marked failed and its slots are returned.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import polars as pl
from dagster._core.storage.tags import PARTITION_NAME_TAG

from forex_assets import settings
from forex_assets.defs.keys import FEATURE_MATRIX
from forex_assets.market.instruments import UnknownSymbolError, instrument_for
from forex_assets.partitions import SYMBOLS_PARTITION_SET, register_symbols
from forex_assets.storage.catalog import CatalogBusyError, CatalogError, DuckDBCatalog
from forex_assets.storage.damage import StoredDataError
from forex_assets.storage.model_ledger import latest_run, registered_runs
from forex_assets.storage.model_store import orphaned_runs
from forex_assets.storage.parquet_store import read_partition, write_frame

STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.ENGINE_EVENT,
    dg.DagsterEventType.RUN_FAILURE,
}
PROGRESS_POLL_S = 0.25


def _instance() -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME, else a persistent one under the project home.

    Built under the home's storage lock, so two commands started at once on a fresh home
    do not both create its tables (see `forex_assets.instance`).
    """
    from dagster._core.instance.ref import InstanceRef

    from forex_assets.instance import ForexAssetsInstance, storage_initialization

    if os.environ.get("DAGSTER_HOME"):
        with storage_initialization(os.environ["DAGSTER_HOME"]):
            return dg.DagsterInstance.get()
    home = settings.project_home() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    print(f"DAGSTER_HOME is not set: runs are recorded in {home}", file=sys.stderr)
    project_instance = {
        "instance_class": {
            "module": ForexAssetsInstance.__module__,
            "class": ForexAssetsInstance.__name__,
        },
        "telemetry": {"enabled": False},
    }
    with storage_initialization(home):
        return dg.DagsterInstance.from_ref(
            InstanceRef.from_dir(str(home), overrides=project_instance)
        )


def _failure_reason(error) -> str:
    """The innermost error of a step failure, in one line (Dagster wraps the user's)."""
    while error.cause is not None:
        error = error.cause
    if error.cls_name == "DagsterExecutionInterruptedError":
        return "interrupted (SIGINT or SIGTERM)"
    lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
    return lines[0] if lines else error.cls_name or "unknown error"


def _report_progress(
    instance: dg.DagsterInstance, run_id: str, total: int, done: threading.Event
) -> None:
    """Print step results as the run records them, until `done` is set and drained."""
    from forex_assets.executor import waits

    cursor = None
    finished = 0
    started: dict[str, float] = {}
    while True:
        final_pass = done.is_set()
        connection = instance.get_records_for_run(run_id, cursor=cursor, of_type=STEP_EVENTS)
        cursor = connection.cursor
        for record in connection.records:
            event = record.event_log_entry
            dagster_event = event.dagster_event
            if dagster_event is None:
                continue
            step = dagster_event.step_key or "?"
            kind = dagster_event.event_type
            if kind == dg.DagsterEventType.STEP_START:
                started[step] = event.timestamp
            elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                finished += 1
                elapsed = event.timestamp - started.get(step, event.timestamp)
                status = "ok" if kind == dg.DagsterEventType.STEP_SUCCESS else "FAILED"
                print(
                    f"[{finished:>3}/{total}] {step:<24} {status:<6} {elapsed:6.2f} s", flush=True
                )
                if kind == dg.DagsterEventType.STEP_FAILURE:
                    reason = _failure_reason(dagster_event.step_failure_data.error)
                    print(f"          {step}: {reason}", flush=True)
            elif kind == dg.DagsterEventType.ENGINE_EVENT:
                if (dagster_event.message or "").startswith(waits.WAIT_PREFIX):
                    print(f"          {dagster_event.message}", flush=True)
            elif kind == dg.DagsterEventType.RUN_FAILURE:
                print(f"          run failed: {dagster_event.message}", flush=True)
            elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                evaluation = dagster_event.event_specific_data
                if not evaluation.passed:
                    print(
                        f"          check {evaluation.asset_key.to_user_string()}:"
                        f"{evaluation.check_name} did not pass ({evaluation.severity.value})",
                        flush=True,
                    )
        if final_pass:
            return
        done.wait(PROGRESS_POLL_S)


def train(symbol: str) -> int:
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import execute_run
    from dagster._utils.interrupts import capture_interrupts

    from forex_assets.defs.jobs import SYMBOL_PIPELINE

    try:
        symbol = instrument_for(symbol).symbol
    except UnknownSymbolError as exc:
        print(f"--symbol: {exc}", file=sys.stderr)
        return 2
    # Reconstructable, so the executor's worker processes load the same code location.
    # Loaded first: a bad setting stops train before it registers anything.
    recon_job = ReconstructableRepository.for_module(
        "forex_assets.definitions", "defs", working_directory=os.getcwd()
    ).get_reconstructable_job(SYMBOL_PIPELINE)
    job = recon_job.get_definition()
    instance = _instance()
    if register_symbols(instance, [symbol]):
        print(f"added {symbol} to the '{SYMBOLS_PARTITION_SET}' partitions")
    run = instance.create_run_for_job(
        job_def=job,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags={PARTITION_NAME_TAG: symbol},
        job_code_origin=recon_job.get_python_origin(),
    )
    total = len(job.graph.node_defs)
    print(f"{SYMBOL_PIPELINE} for {symbol}: {total} steps, run {run.run_id}")
    print(f"data: {settings.storage_root()}  catalog: {settings.catalog_path()}")
    done = threading.Event()
    reporter = threading.Thread(
        target=_report_progress, args=(instance, run.run_id, total, done), daemon=True
    )
    reporter.start()
    begin = time.perf_counter()
    try:
        with capture_interrupts():  # SIGINT and SIGTERM interrupt the run, not this process
            result = execute_run(recon_job, run, instance, raise_on_error=False)
    finally:
        done.set()
        reporter.join()
    seconds = time.perf_counter() - begin
    if result.success:
        print(f"{SYMBOL_PIPELINE} for {symbol} succeeded in {seconds:.1f} s")
        return 0
    failed = [e for e in result.all_events if e.is_step_failure]
    for event in failed:
        reason = _failure_reason(event.step_failure_data.error)
        print(f"failure: {event.step_key}: {reason}", file=sys.stderr)
    print(
        f"{SYMBOL_PIPELINE} for {symbol} failed after {seconds:.1f} s (run {run.run_id}); "
        f"{len(failed)} step(s) failed. Re-execute from the failure in the UI, or run train again.",
        file=sys.stderr,
    )
    return 1


def symbols(action: str, names: Sequence[str]) -> int:
    instance = _instance()
    if action == "add":
        try:
            added = register_symbols(instance, names)
        except UnknownSymbolError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"added: {', '.join(added) or 'nothing new'}")
    for name in sorted(instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET)):
        print(name)
    return 0


def plan() -> int:
    """Print the resource plan this machine gets, and why."""
    from forex_assets.compute.overrides import resolve_plan
    from forex_assets.compute.plan import PlanSettings

    resource_plan, messages = resolve_plan(PlanSettings())
    width = max(len(row[0]) for row in resource_plan.as_rows())
    for figure, value, why in resource_plan.as_rows():
        print(f"{figure:<{width}}  {value:>10}  {why}")
    for message in messages:
        print(f"warning: {message}", file=sys.stderr)
    return 0


def formats() -> int:
    """Print the bar file formats a file may be declared as, with their default clocks."""
    from forex_assets.ingest.bar_files import AUTO, registry

    known = registry()
    width = max(len(f.name) for f in known)
    clock = max(len(f.default_timezone) for f in known)
    print(f"{AUTO:<{width}}  {'':<{clock}}  detected from the content (the default)")
    for bar_format in known:
        print(
            f"{bar_format.name:<{width}}  {bar_format.default_timezone:<{clock}}  "
            f"{bar_format.title}: {bar_format.example}"
        )
    return 0


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _catalog() -> DuckDBCatalog:
    return DuckDBCatalog(Path(settings.catalog_path()), warn=_warn)


def query(sql: str) -> int:
    """SQL over the views and registries; a stored asset's missing view is registered."""
    print(_catalog().query(sql, store=settings.storage_root()))
    return 0


def catalog_rebuild() -> int:
    """Every view again from the Parquet store (after a lost catalog or a moved store)."""
    rebuilt = _catalog().rebuild(settings.storage_root())
    print(
        f"rebuilt {len(rebuilt.views)} view(s) in {settings.catalog_path()} "
        f"from {settings.storage_root()}"
    )
    for name in rebuilt.views:
        print(name)
    for failure in rebuilt.failures:
        print(f"error: no view: {failure}", file=sys.stderr)
    return 1 if rebuilt.failures else 0


def model_orphans(delete: bool) -> int:
    """List (or delete) the model folders of runs that failed before registering a model."""
    instance = _instance()

    def status(run_id: str) -> str | None:
        run = instance.get_run_by_id(run_id)
        return run.status.value if run is not None else None

    root = settings.models_root()
    orphans, unknown = orphaned_runs(root, registered_runs(_catalog()), status)
    for folder in orphans:
        if delete:
            shutil.rmtree(folder.path)
        print(
            f"{'deleted' if delete else 'orphan'}: {folder.path} (run {folder.run_id} "
            f"{status(folder.run_id)}, no model registered)"
        )
    for folder in unknown:
        print(
            f"kept: {folder.path} (run {folder.run_id} is not in this instance, "
            f"{instance.root_directory}; remove it by hand if no other instance runs it)"
        )
    if orphans and not delete:
        print("remove them with `python -m forex_assets models orphans --delete`")
    if not orphans and not unknown:
        print(f"no orphaned model folders in {root}")
    return 0


def predict(symbol: str, run_id: str | None, last: int, out: str | None) -> int:
    """Score the symbol's stored feature matrix with a run's final model (the latest
    registered run's unless one is named): print the last rows, optionally write all."""
    # Here, not at the top: the models import LightGBM, which no other command needs.
    from forex_assets.models.final_model import (
        IN_SAMPLE,
        FeatureMismatchError,
        RunIdError,
        load_final_model,
    )

    try:
        symbol = instrument_for(symbol).symbol
    except UnknownSymbolError as exc:
        print(f"--symbol: {exc}", file=sys.stderr)
        return 2
    if last < 1:
        print(f"--last {last}: print at least 1 row", file=sys.stderr)
        return 2
    if run_id is None:
        run_id = latest_run(_catalog(), symbol)
        if run_id is None:
            print(
                f"error: no trained model of {symbol} is registered in "
                f"{settings.catalog_path()}; train one with "
                f"`python -m forex_assets train --symbol {symbol}`",
                file=sys.stderr,
            )
            return 2
    try:
        model = load_final_model(settings.models_root(), symbol, run_id)
        scored = model.score(read_partition(settings.storage_root(), FEATURE_MATRIX.path, symbol))
    except (RunIdError, FeatureMismatchError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    in_sample = int(scored.get_column(IN_SAMPLE).sum())
    print(
        f"{symbol} run {run_id}: {' + '.join(model.model_names)} blended over "
        f"{len(model.features)} features; {scored.height} rows scored, {in_sample} of them "
        "in sample (the final refit trained on them)"
    )
    with pl.Config(tbl_rows=last, tbl_cols=-1, float_precision=4, tbl_hide_dataframe_shape=True):
        print(scored.tail(last))
    if out is not None:
        write_frame(scored, Path(out))
        print(f"wrote {scored.height} rows to {out}")
    return 0


def _counts(option: str, text: str) -> list[int]:
    """`16,64,252` as whole numbers of at least 1, else a message naming the option."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise ValueError(f"{option} {text!r}: give whole numbers of at least 1, e.g. 16,64,252")
    return [int(part) for part in parts]


def simulate_run(args: argparse.Namespace) -> int:
    """Record a run (or load one recorded before) and replay it at other core counts and
    backfill sizes, static plan next to the elastic policy."""
    from forex_assets.compute.recorded_run import RecordedRun
    from forex_assets.compute.simulation_report import compare, markdown_table, replay_error

    try:
        cores = _counts("--cores", args.cores)
        symbol_counts = _counts("--symbols", args.symbols)
        max_runs = (
            None
            if args.max_concurrent_runs is None
            else _counts("--max-concurrent-runs", str(args.max_concurrent_runs))[0]
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.run is not None:
        from forex_assets.instance.run_record import RunRecordError, record_run

        try:
            recorded = record_run(_instance(), args.run, cores=args.measured_cores)
        except RunRecordError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    else:
        try:
            recorded = RecordedRun.load(Path(args.from_file))
        except (OSError, ValueError, KeyError) as error:
            print(f"error: cannot replay {args.from_file}: {error!r}", file=sys.stderr)
            return 2
    if args.record:
        recorded.save(Path(args.record))
        print(f"recorded run written to {args.record}")
    simulated, error = replay_error(recorded)
    print(
        f"{recorded.job}: {len(recorded.steps)} steps, {recorded.cpu_s:.0f} CPU s; {recorded.source}"
    )
    print(
        f"replay on the recorded {recorded.measured_cores} cores (static plan): "
        f"{simulated:.1f} s simulated, {recorded.measured_makespan_s:.1f} s measured "
        f"({error:+.1%})"
    )
    print(markdown_table(compare(recorded, cores, symbol_counts, max_runs)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m forex_assets", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train_cmd = commands.add_parser("train", help="materialize the whole chain for one symbol")
    train_cmd.add_argument("--symbol", required=True, help="e.g. EURUSD")
    symbols_cmd = commands.add_parser("symbols", help="list or add symbol partitions")
    symbols_cmd.add_argument("action", choices=["list", "add"])
    symbols_cmd.add_argument("names", nargs="*")
    commands.add_parser("plan", help="show the resource plan (cores, pools, threads per step)")
    commands.add_parser("formats", help="list the bar file formats and their default clocks")
    query_cmd = commands.add_parser("query", help="run SQL against the DuckDB catalog views")
    query_cmd.add_argument("sql")
    catalog_cmd = commands.add_parser("catalog", help="rebuild the catalog's views")
    catalog_cmd.add_argument("action", choices=["rebuild"])
    models_cmd = commands.add_parser("models", help="model folders of failed runs")
    models_cmd.add_argument("action", choices=["orphans"])
    models_cmd.add_argument("--delete", action="store_true", help="remove the orphans listed")
    predict_cmd = commands.add_parser(
        "predict", help="score the stored feature matrix with a trained final model"
    )
    predict_cmd.add_argument("--symbol", required=True, help="e.g. EURUSD")
    predict_cmd.add_argument("--run-id", help="the training run (default: the latest)")
    predict_cmd.add_argument("--last", type=int, default=10, help="rows to print (default 10)")
    predict_cmd.add_argument("--out", help="write every row's probabilities to this Parquet")
    simulate_cmd = commands.add_parser(
        "simulate",
        help="replay a recorded run on other machines and backfills: static plan vs elastic",
    )
    replayed = simulate_cmd.add_mutually_exclusive_group(required=True)
    replayed.add_argument("--run", help="record this finished run of the instance and replay it")
    replayed.add_argument(
        "--from", dest="from_file", metavar="FILE", help="replay a run saved with --record"
    )
    simulate_cmd.add_argument("--record", metavar="FILE", help="save the recorded run as JSON")
    simulate_cmd.add_argument(
        "--cores", default="16,64,252,1024", help="machines to simulate (default 16,64,252,1024)"
    )
    simulate_cmd.add_argument(
        "--symbols", default="1,28", help="backfill sizes, one run per symbol (default 1,28)"
    )
    simulate_cmd.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=None,
        help="runs at once (default: each machine's plan, symbols + 1, as the run queue does)",
    )
    simulate_cmd.add_argument(
        "--measured-cores",
        type=int,
        help="the cores the run had, for a run the budgeted executor did not run",
    )
    args = parser.parse_args(argv)
    try:
        return _run_command(args)
    except (settings.SettingsError, CatalogError, CatalogBusyError, StoredDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run_command(args: argparse.Namespace) -> int:
    if args.command == "train":
        return train(args.symbol)
    if args.command == "symbols":
        return symbols(args.action, args.names)
    if args.command == "plan":
        return plan()
    if args.command == "formats":
        return formats()
    if args.command == "catalog":
        return catalog_rebuild()
    if args.command == "models":
        return model_orphans(args.delete)
    if args.command == "simulate":
        return simulate_run(args)
    if args.command == "predict":
        return predict(args.symbol, args.run_id, args.last, args.out)
    return query(args.sql)
