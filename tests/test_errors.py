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
