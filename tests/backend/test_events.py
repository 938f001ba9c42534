"""`gbdesk serve --events`: a real child process speaks JSON lines, never prose, on stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gbdesk.errors import ExitCode, GbdeskError
from gbdesk.events import EventChannel, EventType, decode, encode
from tests.free_ports import free_port


def _serve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "gbdesk", "serve", "--events", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def test_a_bad_model_ends_with_a_typed_error_event_and_its_exit_code(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 300)
    done = _serve("--model", str(broken), "--port", str(free_port()), "--gpu-layers", "0")
    assert done.returncode == ExitCode.MODEL_LOAD
    lines = done.stdout.splitlines()
    events = [decode(line) for line in lines]
    assert lines and None not in events, done.stdout  # nothing but events on stdout
    kinds = [event.type for event in events if event is not None]
    assert kinds[0] is EventType.LISTENING and kinds[-1] is EventType.ERROR
    error = events[-1].error if events[-1] is not None else None
    assert error is not None and type(error).__name__ == "ModelLoadError"
    assert "broken.gguf" in error.message and error.fix
    assert b"error: " in done.stderr  # the person reading the log still gets the sentence


def test_bad_options_are_a_typed_error_before_anything_listens() -> None:
    done = _serve("--model", "x.gguf", "--parallel", "65")
    assert done.returncode == ExitCode.USAGE
    (event,) = [decode(line) for line in done.stdout.splitlines()]
    assert event is not None and event.error is not None
    assert type(event.error).__name__ == "UsageError" and "--parallel" in event.error.message


def test_lines_that_are_not_events_are_told_apart() -> None:
    assert decode(b"llama_model_load: loading\n") is None
    assert decode(b'{"no": "type"}') is None
    assert decode(b'{"type": "unknown"}') is None
    assert decode(b"[1, 2]") is None
    event = decode(encode(EventType.READY, url="http://127.0.0.1:1"))
    assert event is not None and event.type is EventType.READY
    assert event.data == {"url": "http://127.0.0.1:1"} and event.error is None


def test_a_channel_without_a_reader_stays_quiet(tmp_path: Path) -> None:
    EventChannel().emit(EventType.LOADING, model="m.gguf")  # no stream: nothing, no error
    target = tmp_path / "events"
    with open(target, "wb") as stream:
        channel = EventChannel(stream)
        channel.error(GbdeskError("it broke", fix="mend it"))
    with open(target, "ab") as gone:
        pass
    EventChannel(gone).emit(EventType.READY)  # a closed pipe (the parent left) is not an error
    (event,) = [decode(line) for line in target.read_bytes().splitlines()]
    assert event is not None and event.error is not None and event.error.fix == "mend it"
