"""A supervised child never outlives its parent: when the app (or any supervisor) exits, however
it exits, the backend and the worker it started stop too, instead of holding the port and the
memory as orphans (the next launch would find its own port taken)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from gbdesk.backend.serve import ServeOptions
from gbdesk.backend.supervisor import serve_command
from tests.backend.conftest import http_request
from tests.free_ports import free_port
from tests.support.processes import child_process, read_until

PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gbdesk.backend.serve import ServeOptions
    from gbdesk.backend.supervisor import BackendSupervisor
    from gbdesk.backend.worker import WorkerOptions
    from gbdesk.backend.worker_process import WorkerProcess

    model, serve_port, worker_port, logs = sys.argv[1:]
    backend = BackendSupervisor(
        ServeOptions(model=model, port=int(serve_port), ctx=512, parallel=1, threads=1),
        log_file=Path(logs) / "backend.log",
    )
    backend.start()
    worker = WorkerProcess(
        WorkerOptions(port=int(worker_port), memory_mib=256, threads=1), Path(logs) / "worker.log"
    )
    worker.start()
    print(backend.status().pid, worker.pid, flush=True)
    time.sleep(600)
    """
)


def _gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


def test_a_killed_parent_takes_its_backend_and_worker_with_it(
    starter_model: Path, tmp_path: Path
) -> None:
    serve_port, worker_port = free_port(), free_port()
    arguments = [str(starter_model), str(serve_port), str(worker_port), str(tmp_path)]
    children: list[int] = []
    try:
        with child_process(
            [sys.executable, "-c", PARENT, *arguments], stdout=subprocess.PIPE, text=True
        ) as parent:
            line = parent.stdout.readline()
            children = [int(pid) for pid in line.split()]
            assert len(children) == 2, line
            assert http_request(f"http://127.0.0.1:{serve_port}/health")[0] == 200
            parent.send_signal(signal.SIGKILL)  # no clean-up code of the parent runs
            parent.wait(30)
            for pid, what in zip(children, ("backend", "worker"), strict=True):
                assert _gone(pid, 30), f"the {what} outlived its parent"
    finally:
        for pid in children:
            if not _gone(pid, 0):
                os.kill(pid, signal.SIGKILL)


def _serve_argv(starter_model: Path) -> list[str]:
    options = ServeOptions(
        model=str(starter_model), port=free_port(), ctx=512, parallel=1, threads=1
    )
    return serve_command(options)


def test_the_end_of_stdin_stops_a_backend_cleanly(starter_model: Path) -> None:
    with child_process(
        _serve_argv(starter_model), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as child:
        assert b'"ready"' in read_until(child.stdout, b'"ready"')
        child.stdin.close()  # what the parent's exit does to the pipe
        assert child.wait(30) == 0  # the same orderly stop as SIGTERM


def test_without_the_flag_stdin_is_not_watched(starter_model: Path) -> None:
    """`gbdesk serve` typed by hand, or started with stdin on /dev/null, keeps serving."""
    argv = [part for part in _serve_argv(starter_model) if part != "--lifeline"]
    port = argv[argv.index("--port") + 1]
    with child_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) as child:
        assert b'"ready"' in read_until(child.stdout, b'"ready"')
        time.sleep(1.0)
        assert child.poll() is None
        assert http_request(f"http://127.0.0.1:{port}/health")[0] == 200
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
