"""Capturing a step's stdout/stderr in a warm worker without two process starts per step.

Dagster's local compute log manager writes a step's output to files (shown in the UI)
and mirrors it to the terminal by starting a `tail -F` process and a Python watcher for
each stream, four processes per step: more than the step itself costs once the worker is
warm. The subclass here writes the same files, in the same places, and mirrors with a
thread reading a pipe, so the UI and the terminal see the same output as before.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import IO

from dagster._core.execution.compute_logs import should_disable_io_stream_redirect
from dagster._core.instance import DagsterInstance
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import (
    IO_TYPE_EXTENSION,
    LocalComputeLogManager,
)
from dagster._utils import ensure_file, touch_file

PUMP_JOIN_TIMEOUT_S = 5.0


class ThreadMirroringComputeLogManager(LocalComputeLogManager):
    @contextmanager
    def capture_logs(self, log_key) -> Generator[CapturedLogContext, None, None]:
        if should_disable_io_stream_redirect():
            with super().capture_logs(log_key) as context:
                yield context
            return
        out = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        err = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        with _mirrored(sys.stdout, out), _mirrored(sys.stderr, err):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))


def use_thread_mirroring(instance: DagsterInstance) -> None:
    """Switch a plain local compute log manager of this worker's instance to threads."""
    manager = instance.compute_log_manager
    if type(manager) is LocalComputeLogManager:
        manager.__class__ = ThreadMirroringComputeLogManager


@contextmanager
def _mirrored(stream: IO[str], path: str) -> Iterator[None]:
    """Send everything written to `stream`'s file descriptor to `path` and to the stream."""
    ensure_file(path)
    stream.flush()
    descriptor = stream.fileno()
    original = os.dup(descriptor)
    read_end, write_end = os.pipe()
    os.dup2(write_end, descriptor)
    os.close(write_end)

    def pump() -> None:
        with open(path, "ab") as log_file:
            while chunk := os.read(read_end, 65536):
                log_file.write(chunk)
                log_file.flush()
                view = memoryview(chunk)
                while view:
                    view = view[os.write(original, view) :]

    thread = threading.Thread(target=pump, name="log-mirror", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stream.flush()
        os.dup2(original, descriptor)  # drops the pipe's last writer: the pump sees EOF
        thread.join(PUMP_JOIN_TIMEOUT_S)
        if not thread.is_alive():  # else a child process still holds the pipe: leave it be
            os.close(read_end)
            os.close(original)
