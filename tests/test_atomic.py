from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gbdesk.atomic import write_bytes_atomic, write_json_atomic


def test_writes_replace_the_file_and_leave_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2}, mode=0o600)
    assert json.loads(target.read_text()) == {"a": 2}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_bytes_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_json_atomic(target, {"not json": object()})
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
