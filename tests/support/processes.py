"""Child processes started by a test, which never outlive it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def child_process(argv: list[str], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """``subprocess.Popen(argv, **popen)``; on leaving, killed if still running and its pipes
    closed (a child left running fails a later test with a ResourceWarning)."""
    process: subprocess.Popen[Any] = subprocess.Popen(argv, **popen)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def read_until(stream: Any, marker: Any) -> Any:
    """The first line of ``stream`` that holds ``marker`` (str or bytes, as the stream), or
    the empty line at its end."""
    line = stream.readline()
    while line and marker not in line:
        line = stream.readline()
    return line
