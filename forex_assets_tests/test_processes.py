"""Process identity and the parent watchdog, on real processes."""

import subprocess
import sys
import time

from forex_assets.processes import ProcessIdentity, exit_with_parent, process_alive


def _late_watcher() -> None:
    """A child that starts watching only after its parent is already gone."""
    time.sleep(2)
    exit_with_parent()
    time.sleep(600)


_PARENT = """
import multiprocessing, os, sys
from forex_assets_tests.test_processes import _late_watcher
child = multiprocessing.get_context("spawn").Process(target=_late_watcher)
child.start()
print(child.pid, flush=True)
os._exit(0)  # killed, as far as the child can tell: nobody joins or signals it
"""


def test_a_child_whose_parent_died_before_it_watched_still_exits():
    parent = subprocess.run(
        [sys.executable, "-c", _PARENT], capture_output=True, text=True, timeout=60
    )
    child = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 30
    while process_alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process_alive(child)


def test_identity_round_trips_and_tells_this_process_alive():
    me = ProcessIdentity.current()
    assert ProcessIdentity.from_token(me.token()) == me
    assert me.alive() is True
    assert ProcessIdentity(me.host, me.pid, me.started + 1).alive() is False  # a reused pid
    assert ProcessIdentity("another-host", 1, 1).alive() is None
