"""The structured error and the one exit-code table."""

from __future__ import annotations

import json

from gbdesk.backend.errors import ModelLoadError, PortInUseError
from gbdesk.download.errors import DownloadError, HubNotFoundError
from gbdesk.errors import ExitCode, GbdeskError, UsageError
from gbdesk.shard.errors import DatabaseUnavailableError, ShardConflictError


def _all_error_classes() -> list[type[GbdeskError]]:
    found: list[type[GbdeskError]] = []
    pending: list[type[GbdeskError]] = [GbdeskError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_an_error_crosses_json_as_its_own_class_with_its_fields() -> None:
    error = PortInUseError(
        "port 8081 is already in use", fix="use --port 8082", details={"port": 8081}
    )
    back = GbdeskError.from_json(json.loads(json.dumps(error.to_json())))
    assert type(back) is PortInUseError
    assert (back.message, back.fix, back.details) == (error.message, error.fix, {"port": 8081})
    assert back.exit_code == ExitCode.PORT_IN_USE


def test_an_unknown_or_damaged_error_still_reads_as_an_error() -> None:
    back = GbdeskError.from_json({"kind": "SomethingNew", "message": "odd", "details": [1]})
    assert type(back) is GbdeskError and back.message == "odd" and back.details == {}
    assert GbdeskError.from_json({}).message == "unknown error"


def test_unrelated_failures_never_share_an_exit_code() -> None:
    families = {
        UsageError: ExitCode.USAGE,
        ModelLoadError: ExitCode.MODEL_LOAD,
        PortInUseError: ExitCode.PORT_IN_USE,
        DownloadError: ExitCode.DOWNLOAD,
        HubNotFoundError: ExitCode.DOWNLOAD,
        DatabaseUnavailableError: ExitCode.DATABASE_UNAVAILABLE,
        ShardConflictError: ExitCode.SHARD_CONFLICT,
    }
    for cls, code in families.items():
        assert cls.exit_code == code, cls
    # Every class's code is in the table.
    for cls in _all_error_classes():
        assert cls.exit_code in set(ExitCode), cls
    assert len({int(code) for code in ExitCode}) == len(ExitCode)


def test_every_exit_code_is_in_the_readme_list() -> None:
    """The README's "one per kind of failure" sentence names every ExitCode (9 was missing)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("one per kind of failure")
    sentence = " ".join(readme[start : readme.index("gbdesk/errors.py", start)].split())
    listed = {int(code) for code in re.findall(r"(?:^|[ :,])(\d+) [a-z]", sentence)}
    assert {int(code) for code in ExitCode if code != ExitCode.OK} <= listed


def test_no_errno_reaches_a_message_whatever_the_os_error() -> None:
    """An OSError's text put into any GbdeskError (message or fix) is told in plain words."""
    import errno
    import socket

    from gbdesk.errors import os_error_words, without_errno

    cases: list[OSError] = [
        socket.gaierror(-2, "Name or service not known"),
        socket.gaierror(-3, "Temporary failure in name resolution"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "/no/such/file"),
        PermissionError(errno.EACCES, "Permission denied", "/root/x"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(12345, "Something odd"),
    ]
    for exc in cases:
        for text in (f"cannot reach https://example.org: {exc}", f"<urlopen error {exc}>"):
            error = GbdeskError(text, fix=f"retry ({exc})")
            for shown in (error.message, error.fix or ""):
                assert "Errno" not in shown and "urlopen" not in shown, shown
        words = os_error_words(exc)
        assert "Errno" not in words and words, words
    assert "name could not be found" in without_errno("x: [Errno -2] Name or service not known")
    assert "/no/such/file" in os_error_words(cases[2])
    assert without_errno("[WinError 5] Access is denied") == "permission denied"
    assert without_errno("no errno here") == "no errno here"


def test_a_probe_finding_never_shows_an_errno() -> None:
    from gbdesk.hardware.profile import Diagnostic

    finding = Diagnostic(
        "disk-probe-failed", "warning", "the disk could not be read (OSError: [Errno 5] I/O)"
    )
    assert "Errno" not in finding.message and "could not be read or written" in finding.message
