"""The Dagster UI in a real browser: `dagster dev` on a fresh instance, headless Chromium.

The test starts webserver and daemon with the repository's `dagster.yaml` (queued run
coordinator: the daemon dequeues the run), opens the asset lineage, then launches a
materialization of `m1_bars` for EURUSD through the UI's own dialogs and waits for the
run to succeed. Screenshots go to tmp_path and, when FOREX_ASSETS_SCREENSHOT_DIR is set,
there too.

Needs `pip install playwright` and a Chromium binary (Debian: `apt-get install chromium`);
Playwright's own browser download (`playwright install`) is not used. Without either the
test is skipped; any other problem fails it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from forex_assets import settings
from forex_assets.partitions import SYMBOLS_PARTITION_SET, register_symbols

REPO = Path(__file__).resolve().parents[2]
SYMBOL = "EURUSD"
SERVER_START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 120
UI_TIMEOUT_MS = 30_000
SCREENSHOT_DIR_ENV = "FOREX_ASSETS_SCREENSHOT_DIR"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOG_TAIL_CHARS = 6_000
TERMINAL_STATUSES = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


try:
    from playwright import sync_api
except ModuleNotFoundError as exc:
    if exc.name != "playwright":
        raise  # playwright is there but broken (a dependency of it is missing): fail
    pytest.skip(
        "the playwright package is not installed: pip install playwright",
        allow_module_level=True,
    )
CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary (Debian: apt-get install -y chromium)",
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no server log)"
    return text[-chars:]


@dataclass
class DagsterServer:
    """A running `dagster dev` (webserver + daemon) on a temporary instance."""

    url: str
    home: Path
    log: Path
    process: subprocess.Popen
    instance: dg.DagsterInstance
    page_errors: list[str] = field(default_factory=list)

    def log_tail(self) -> str:
        return _tail(self.log)


def _stop_process_group(process: subprocess.Popen) -> None:
    """Ctrl-C to `dagster dev` (its own clean shutdown), then SIGTERM and SIGKILL to the group.

    The group holds webserver, daemon, code servers and run workers: start_new_session=True
    made the leader's pid its id.
    """
    steps = (
        (lambda: os.kill(process.pid, signal.SIGINT), 15.0),
        (lambda: os.killpg(process.pid, signal.SIGTERM), 5.0),
        (lambda: os.killpg(process.pid, signal.SIGKILL), 10.0),
    )
    for send, grace_s in steps:
        with contextlib.suppress(ProcessLookupError):
            send()
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                try:
                    os.killpg(process.pid, 0)  # is any member of the group left?
                except ProcessLookupError:
                    return
            time.sleep(0.2)
    process.wait(timeout=10)


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> float:
    """Polls /server_info; returns the deadline, for the code location to load by."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"`dagster dev` exited with code {process.returncode} before serving {url}.\n"
                f"Server output ({log}):\n{_tail(log)}"
            )
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return deadline
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = repr(exc)
        time.sleep(0.5)
    pytest.fail(
        f"`dagster dev` did not answer {url}/server_info within {SERVER_START_TIMEOUT_S} s "
        f"(last error: {last_error}).\nServer output ({log}):\n{_tail(log)}"
    )


WORKSPACE_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message stack } }
      }
    }
    ... on PythonError { message }
  }
}
"""


def _wait_for_code_location(url: str, log: Path, deadline: float) -> None:
    """The webserver answers before the code location has loaded; a load error fails here."""
    state = "no answer yet"
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"{url}/graphql",
            data=json.dumps({"query": WORKSPACE_QUERY}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                workspace = json.load(response)["data"]["workspaceOrError"]
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
            state = repr(exc)
            time.sleep(0.5)
            continue
        if workspace["__typename"] != "Workspace":
            state = f"workspace error: {workspace.get('message')}"
        else:
            entries = {e["name"]: e for e in workspace["locationEntries"]}
            entry = entries.get("forex_assets")
            if entry is None:
                state = f"no code location forex_assets (locations: {sorted(entries)})"
            elif entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"] or {}
                if loaded.get("__typename") == "PythonError":
                    pytest.fail(
                        "code location forex_assets failed to load:\n"
                        f"{loaded['message']}\n{''.join(loaded.get('stack') or [])}\n"
                        f"Server output ({log}):\n{_tail(log)}"
                    )
                return
            else:
                state = f"code location forex_assets is {entry['loadStatus']}"
        time.sleep(0.5)
    pytest.fail(
        f"the code location did not load within {SERVER_START_TIMEOUT_S} s ({state}).\n"
        f"Server output ({log}):\n{_tail(log)}"
    )


@pytest.fixture
def dagster_server(tmp_path, isolated_homes) -> Iterator[DagsterServer]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    server_tmp = tmp_path / "server_tmp"
    server_tmp.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        settings.ENV_HOME: str(isolated_homes),
        settings.ENV_SAMPLE_YEARS: "0.1",
        settings.ENV_SYMBOLS: SYMBOL,
        "PYTHONUNBUFFERED": "1",
        # dagster dev's sockets and workspace file: in tmp_path even if it is killed.
        "TMPDIR": str(server_tmp),
    }
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # The symbol_registry sensor would add it too, but only on its first tick.
        register_symbols(instance, [SYMBOL])
        assert instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET) == [SYMBOL]

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "dagster_dev.log"
        command = [
            sys.executable, "-m", "dagster", "dev",
            "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml"),
        ]  # fmt: skip
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = _wait_until_serving(url, process, log)
            _wait_for_code_location(url, log, deadline)
            yield DagsterServer(url=url, home=home, log=log, process=process, instance=instance)
        finally:
            _stop_process_group(process)


@pytest.fixture
def page(tmp_path, dagster_server):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.on("pageerror", lambda exc: dagster_server.page_errors.append(str(exc)))
            # A fresh instance may greet with the community dialog (not while dagster.yaml
            # has `nux: enabled: false`); it can come up at any moment, so dismiss it
            # whenever it blocks an action.
            page.add_locator_handler(
                page.get_by_text("Join the Dagster community"),
                lambda: page.get_by_role("button", name="Skip", exact=True).click(),
            )
            yield page
        finally:
            browser.close()


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0, f"empty screenshot {path}"
    extra = os.environ.get(SCREENSHOT_DIR_ENV)
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


@contextlib.contextmanager
def _explained(page, tmp_path: Path, server: DagsterServer, step: str):
    """Turn any failure inside into one message: the step, a screenshot, the server's log."""
    try:
        yield
    except Exception as exc:
        try:
            shot = str(_screenshot(page, tmp_path, "failure"))
        except Exception as shot_exc:
            shot = f"(no screenshot: {shot_exc!r})"
        pytest.fail(
            f"UI step failed: {step}\n{type(exc).__name__}: {exc}\n"
            f"page URL: {page.url}\nscreenshot: {shot}\n"
            f"browser errors: {server.page_errors or 'none'}\n"
            f"server output ({server.log}):\n{server.log_tail()}"
        )


def _run_status_text(run: dg.DagsterRun, instance: dg.DagsterInstance) -> str:
    lines = [f"run {run.run_id}: {run.status.value}"]
    for record in instance.get_records_for_run(run.run_id).records:
        event = record.event_log_entry
        if event.is_dagster_event and event.dagster_event.is_step_failure:
            error = event.dagster_event.step_failure_data.error
            lines.append(f"{event.step_key}: {error.to_string() if error else 'failed'}")
        elif event.is_dagster_event and event.dagster_event.event_type_value == "RUN_FAILURE":
            lines.append(event.message or "run failure")
    return "\n".join(lines)


def _wait_for_run(server: DagsterServer, short_id: str, page) -> dg.DagsterRun:
    """The run the UI launched, once it has ended; on failure the page shows its run page."""
    instance = server.instance
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run = None
    while time.monotonic() < deadline:
        runs = [r for r in instance.get_runs() if r.run_id.startswith(short_id)]
        assert len(runs) <= 1, f"several runs start with {short_id}: {runs}"
        run = runs[0] if runs else None
        if run is not None and run.status in TERMINAL_STATUSES:
            break
        time.sleep(0.5)
    if run is not None:
        if run.status == dg.DagsterRunStatus.SUCCESS:
            return run
        page.goto(f"{server.url}/runs/{run.run_id}")
        page.wait_for_timeout(3_000)  # for the screenshot: let the run's events load
    if run is None or run.status not in TERMINAL_STATUSES:
        state = run.status.value if run else "not found in the instance"
        raise AssertionError(
            f"run {short_id} did not finish within {RUN_TIMEOUT_S} s (status: {state}; "
            "a queued run needs the daemon to dequeue it)"
        )
    raise AssertionError(_run_status_text(run, instance))


def test_materialize_m1_bars_from_the_ui(dagster_server, page, tmp_path, isolated_homes):
    server = dagster_server
    expect = sync_api.expect

    with _explained(page, tmp_path, server, "global asset lineage shows the asset groups"):
        page.goto(f"{server.url}/asset-groups")
        expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=UI_TIMEOUT_MS)
        for group in ("data", "features", "validation", "models", "strategies"):
            expect(page.get_by_text(group, exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        # Group nodes say "N assets (fetching statuses)" until the asset statuses arrive.
        expect(page.get_by_text("fetching statuses")).to_have_count(0, timeout=UI_TIMEOUT_MS)
    _screenshot(page, tmp_path, "asset_lineage")

    with _explained(page, tmp_path, server, "the data group's graph shows m1_bars"):
        page.goto(f"{server.url}/locations/forex_assets/asset-groups/data")
        for asset in ("m1_bars", "m1_quarantine"):
            expect(page.get_by_text(asset, exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        # Node rows say "Loading…" until the asset statuses arrive.
        loading = page.get_by_text(re.compile(r"^Loading(…|\.\.\.)$"))
        expect(loading).to_have_count(0, timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("0% filled").first).to_be_visible()
    _screenshot(page, tmp_path, "asset_group_data")

    with _explained(page, tmp_path, server, "launch m1_bars for EURUSD from the asset page"):
        page.goto(f"{server.url}/assets/m1_bars")
        expect(page.get_by_text("Never materialized")).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.get_by_role("button", name=re.compile(r"\bMaterialize(…|\.\.\.)$")).click()

        # m1_bars is a multi-asset with m1_quarantine that cannot be subset: the UI says so
        # and asks for confirmation before its launch dialog.
        dialogs = page.get_by_role("dialog")
        also = dialogs.filter(has_text="Additional assets will be materialized")
        launch = dialogs.filter(has_text="Partition selection")
        expect(also.or_(launch).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        if also.is_visible():
            expect(also.get_by_text("m1_quarantine")).to_be_visible()
            also.get_by_role("button", name="Confirm").click()
        expect(launch).to_be_visible(timeout=UI_TIMEOUT_MS)

        launch.get_by_text("Select a partition").click()
        page.get_by_role("menuitem", name=SYMBOL).click()
        expect(page.get_by_role("checkbox", name=SYMBOL)).to_be_checked()
        expect(launch.get_by_text("1 partition", exact=True)).to_be_visible()
        # One partition is one run, not a backfill.
        launch.get_by_role("button", name="Launch 1 run", exact=True).click()

        toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
        expect(toast).to_be_visible(timeout=UI_TIMEOUT_MS)
        short_id = re.search(r"Launched run ([0-9a-f]{8})", toast.inner_text()).group(1)

    with _explained(page, tmp_path, server, f"run {short_id} launched from the UI succeeds"):
        run = _wait_for_run(server, short_id, page)
    assert run.tags.get("dagster/partition") == SYMBOL
    assert run.asset_selection is not None
    assert dg.AssetKey("m1_bars") in run.asset_selection
    instance = server.instance
    assert instance.get_materialized_partitions(dg.AssetKey("m1_bars")) == {SYMBOL}
    stored = isolated_homes / "store" / "m1_bars" / f"symbol={SYMBOL}" / "data.parquet"
    rows = pl.read_parquet(stored).height
    assert rows > 10_000  # 0.1 years of M1 bars

    with _explained(page, tmp_path, server, "the run page shows the run succeeded"):
        page.goto(f"{server.url}/runs/{run.run_id}")
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text(f"partition: {SYMBOL}")).to_be_visible()
        expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("Succeeded (1)")).to_be_visible()
        page.wait_for_timeout(1_000)  # cosmetic: lets the step timeline paint its bar
    _screenshot(page, tmp_path, "run_success")

    with _explained(page, tmp_path, server, "the asset page shows the materialization"):
        page.goto(f"{server.url}/assets/m1_bars")
        # Latest materialization: a link to our run, the partition, and the row count.
        expect(page.locator(f'a[href^="/runs/{run.run_id}"]').first).to_be_visible(
            timeout=UI_TIMEOUT_MS
        )
        expect(page.get_by_role("link", name=SYMBOL, exact=True).first).to_be_visible()
        expect(page.get_by_text(f"{rows:,}", exact=True).first).to_be_visible()
        expect(page.get_by_text("rows_kept", exact=True)).to_be_visible()
        expect(page.get_by_text("Never materialized")).to_have_count(0)
    _screenshot(page, tmp_path, "asset_materialized")
