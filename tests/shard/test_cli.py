"""`gbdesk shard ...` against a real PostgreSQL given by URL: output, .env, errors, secrets."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gbdesk.botserver import read_env_file
from gbdesk.cli import main
from gbdesk.errors import ExitCode
from gbdesk.paths import app_paths
from tests.free_ports import free_port
from tests.shard.helpers import DISTINCT_PASSWORD

pytestmark = pytest.mark.postgres

ENV_BEFORE = (
    "# botserver settings\n"
    "LLM_URL=http://127.0.0.1:8081\n"
    "export SHARD_ID=0\n"
    "\n"
    "OTHER='kept as is'  # comment\n"
)


def _all_output(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    captured = capsys.readouterr()
    log_file = app_paths().log_file
    return "\n".join(
        [captured.out, captured.err, caplog.text, log_file.read_text() if log_file.exists() else ""]
    )


def test_register_status_heartbeat_unregister(
    fresh_db: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="gbdesk")
    env_file = tmp_path / "botserver.env"
    env_file.write_text(ENV_BEFORE)

    args = ["-v", "shard", "register", "--database-url", fresh_db, "--env-file", str(env_file)]
    assert main([*args, "--region", "BRA", "--datacenter", "home"]) == 0
    out = capsys.readouterr().out
    assert "registered: node" in out and "as shard 1" in out
    assert "region BRA  datacenter home" in out
    output = out

    # .env: our two keys set, every other line untouched.
    text = env_file.read_text()
    assert text.startswith(
        "# botserver settings\nLLM_URL=http://127.0.0.1:8081\nexport SHARD_ID=1\n"
    )
    assert "\nOTHER='kept as is'  # comment\n" in text
    assert read_env_file(env_file)["DATABASE_URL"] == fresh_db

    # Later commands find the database again (URL in shard.json, password in the secrets store).
    state = (app_paths().config_dir / "shard.json").read_text()
    assert DISTINCT_PASSWORD not in state and json.loads(state)["shard_id"] == 1
    assert main(["shard", "status"]) == 0
    out = capsys.readouterr().out
    assert "shard 1" in out and "postgresql://" in out and ":***@" in out
    output += out
    assert main(["shard", "status", "--json"]) == 0
    out = capsys.readouterr().out
    status = json.loads(out)
    assert status["registered"] and status["shard_id"] == 1 and status["region_code"] == "BRA"
    assert status["tenants"][0]["slug"] == "default"
    output += out

    assert main(["shard", "heartbeat"]) == 0
    assert main(["-v", "shard", "register"]) == 0  # idempotent, remembered URL and .env
    out = capsys.readouterr().out
    assert "already registered; refreshed" in out and str(env_file) in out
    output += out

    assert main(["shard", "unregister"]) == 0
    assert "shard 1 is now inactive" in capsys.readouterr().out
    assert main(["shard", "status"]) == 1
    assert "not registered" in capsys.readouterr().out

    output += _all_output(capsys, caplog)
    assert DISTINCT_PASSWORD not in output
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM gbdesk_nodes").fetchone() == (0,)


def _nothing_written(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regclass('shard_config')").fetchone() == (None,)


def test_database_down_is_a_clear_error_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="gbdesk")
    port = free_port()
    env_file = tmp_path / ".env"
    url = f"postgresql://bot:{DISTINCT_PASSWORD}@127.0.0.1:{port}/botserver"
    code = main(["-v", "shard", "register", "--database-url", url, "--env-file", str(env_file)])
    assert code == ExitCode.DATABASE_UNAVAILABLE
    err = capsys.readouterr().err
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}" in err
    assert "Connection refused" in err and "fix:" in err
    assert DISTINCT_PASSWORD not in _all_output(capsys, caplog) + err
    assert not env_file.exists()
    assert not (app_paths().config_dir / "shard.json").exists()


def test_wrong_password_is_a_clear_error_and_writes_nothing(
    fresh_db: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gbdesk")
    wrong = "Wrong-pw-7Qz"
    bad_url = fresh_db.replace(DISTINCT_PASSWORD, wrong)
    assert (
        main(["-v", "shard", "register", "--database-url", bad_url])
        == ExitCode.DATABASE_UNAVAILABLE
    )
    err = capsys.readouterr().err
    assert "password authentication failed" in err
    assert "check the user name and password" in err
    everything = _all_output(capsys, caplog) + err
    assert wrong not in everything and DISTINCT_PASSWORD not in everything
    assert _nothing_written(fresh_db)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung database)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_database_that_never_answers_times_out(
    silent_server: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://bot:{DISTINCT_PASSWORD}@127.0.0.1:{silent_server}/botserver"
    assert main(["shard", "register", "--database-url", url]) == ExitCode.DATABASE_UNAVAILABLE
    err = capsys.readouterr().err
    assert f"127.0.0.1:{silent_server}" in err and "timeout" in err
    assert DISTINCT_PASSWORD not in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--shard-id", "1024"], "shard id 1024 is outside 0-1023"),
        (["--region", "XYZ"], "not an ISO 3166-1 alpha-3"),
        (["--tenant-range", "10:1"], "minimum above its maximum"),
        (["--tenant-range", "ten"], "is not MIN:MAX"),
        (["--database-url", "postgresql://u:Pw-hidden-1@h:port/x"], "invalid port"),
        (["--database-url", "postgresql://u:Pw-hidden-1@h/x?nosuch=1"], "not a valid"),
        (["--advertise-host", "my machine!"], "is not a host name or an IP address"),
        (["--advertise-host", "0.0.0.0"], "not an address other machines can connect to"),
    ],
)
def test_invalid_options_fail_before_anything_starts(
    option: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["shard", "register", *option]) == 2
    err = capsys.readouterr().err
    assert message in err and "fix:" in err and "Pw-hidden-1" not in err
    assert not app_paths().database_dir.exists()  # the embedded server was not even created


def test_status_before_registering(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shard", "status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["registered"] is False
    assert main(["shard", "unregister"]) == 1
    assert "this node is not registered" in capsys.readouterr().err


def test_regions_lists_the_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shard", "regions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 249 and "BRA  Brazil" in lines
