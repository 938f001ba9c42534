"""`gbdesk worker` as a child process: what the desktop app's Node page starts and stops.

The child speaks JSON-lines events on stdout (``gbdesk worker --events``): ``ready`` with the
address and devices, or ``error`` with a typed error; llama.cpp's own messages go to the log.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from pathlib import Path

from gbdesk.backend.errors import BackendStartError
from gbdesk.backend.supervisor import child_events, close_lifeline, spawn_child, terminate
from gbdesk.backend.worker import WorkerOptions
from gbdesk.bundle import gbdesk_command
from gbdesk.events import EVENTS_FLAG, LIFELINE_FLAG, ChildEvent, EventType
from gbdesk.hardware.rpc import DeviceMemory, WorkerAddress, parse_worker

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def worker_command(options: WorkerOptions) -> list[str]:
    """The child's command line for ``options``."""
    argv = [
        *gbdesk_command(),
        "worker",
        EVENTS_FLAG,
        LIFELINE_FLAG,
        "--host",
        options.host,
        "--port",
        str(options.port),
        "--memory",
        str(options.memory_mib),
    ]
    if options.threads:
        argv += ["--threads", str(options.threads)]
    if options.cache:
        argv.append("--cache")
    return argv


class WorkerProcess:
    """One `gbdesk worker` child. Not thread-safe: one owner starts and stops it."""

    def __init__(self, options: WorkerOptions, log_file: Path) -> None:
        self.options = options
        self.log_file = log_file
        self.address: WorkerAddress | None = None
        self.devices: tuple[tuple[str, DeviceMemory], ...] = ()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> WorkerAddress:
        """Start the child and wait until it listens.

        Raises:
            GbdeskError: the child's own error (a taken port, no RPC in this build...).
            BackendStartError: it exited or stayed silent without saying why.
        """
        if self.running and self.address is not None:
            return self.address
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log_handle:
            process = spawn_child(worker_command(self.options), log_handle)
        self._process = process
        first: list[ChildEvent] = []
        got_first = threading.Event()
        threading.Thread(
            target=self._read_events,
            args=(process, first, got_first),
            name="gbdesk-worker-events",
            daemon=True,
        ).start()
        if not got_first.wait(timeout_s):
            self.stop()
            raise BackendStartError(
                f"the worker did not start within {timeout_s:.0f} s",
                fix=f"see the log: {self.log_file}",
            )
        event = first[0] if first else None
        if event is None or event.type is not EventType.READY:
            error = event.error if event is not None else None
            self.stop()
            raise error or BackendStartError(
                "the worker stopped before it was ready", fix=f"see the log: {self.log_file}"
            )
        self.address = parse_worker(str(event.data.get("address", "")))
        self.devices = tuple(
            (
                str(device.get("name", "?")),
                DeviceMemory(int(device.get("free", 0)), int(device.get("total", 0))),
            )
            for device in event.data.get("devices", [])
        )
        log.info("worker started (pid %d) on %s", process.pid, self.address)
        return self.address

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the child (SIGTERM, then a kill after ``timeout_s``). Safe to call twice."""
        process, self._process = self._process, None
        self.address = None
        if process is None:
            return
        if process.poll() is not None:
            close_lifeline(process)
            return
        terminate(process, timeout_s, "the worker")

    def _read_events(
        self, process: subprocess.Popen[bytes], first: list[ChildEvent], got_first: threading.Event
    ) -> None:
        """Hand over the first event; copy stray output into the log."""
        try:
            for event in child_events(process, self.log_file):
                if not got_first.is_set():
                    first.append(event)
                    got_first.set()
        except (OSError, ValueError) as exc:  # the pipe closed under us: the child is gone
            log.debug("worker events ended: %s", exc)
        finally:
            got_first.set()
            try:  # the events end when the child exits: our end of its lifeline goes too
                process.wait(STOP_TIMEOUT_S)
                close_lifeline(process)
            except subprocess.TimeoutExpired:
                pass


__all__ = ["WorkerProcess", "worker_command"]
