"""gbdesk's own PostgreSQL: `gbdesk shard register` with no options, data kept across restarts."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gbdesk.botserver import read_env_file
from gbdesk.cli import main
from gbdesk.hardware.ports import ephemeral_range
from gbdesk.paths import app_paths
from gbdesk.shard.embedded import PASSWORD_SECRET, EmbeddedPostgres
from gbdesk.shard.registry import MAX_TENANT_ID

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedPostgres]:
    """The embedded server of a GBDESK_HOME of its own, stopped whatever happens.

    The home is made with tempfile, outside pytest's base folder: another pytest run starting
    on this machine resets that folder to 0700, which would lock out the server's user.
    """
    home = Path(tempfile.mkdtemp(prefix="gbdesk-test-home-"))
    monkeypatch.setenv("GBDESK_HOME", str(home))
    server = EmbeddedPostgres()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_register_with_no_options_gives_a_single_node_shard(
    embedded: EmbeddedPostgres, tmp_path, capfd: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    assert main(["shard", "register", "--env-file", str(env_file)]) == 0
    out = capfd.readouterr().out
    assert "as shard 1" in out and "embedded PostgreSQL keeps running" in out
    password = embedded.password()
    assert password not in out
    assert embedded.is_running()
    assert embedded.data_dir == app_paths().database_dir.absolute()

    # The chapter's single-node rows, read with the bundled psql.
    query = (
        "SELECT concat_ws('|', shard_id, region_code, datacenter, is_primary, is_active,"
        " min_tenant_id, max_tenant_id) FROM shard_config"
    )
    assert main(["shard", "db", "psql", "-c", query, "-c", "TABLE tenant_shard_map"]) == 0
    psql_out = capfd.readouterr().out
    assert f"1|USA|local|t|t|1|{MAX_TENANT_ID}" in psql_out
    assert password not in psql_out

    url = embedded.url()
    assert read_env_file(env_file) == {"SHARD_ID": "1", "DATABASE_URL": url}
    with psycopg.connect(url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == ("",)
        assert conn.execute("SELECT slug, shard_id FROM tenants").fetchall() == [("default", 1)]
        conn.execute("CREATE TABLE kept (v TEXT)")
        conn.execute("INSERT INTO kept VALUES ('survives a restart')")
        conn.commit()
    # A password is required, even on the loopback address.
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(url.replace(f":{embedded.password()}@", "@"), connect_timeout=5)

    port = embedded.port()
    # Chosen to last: outside the range the system hands to outgoing connections.
    low, high = ephemeral_range()
    assert port is not None and not low <= port <= high
    assert main(["shard", "db", "stop"]) == 0
    assert not embedded.is_running()
    assert main(["shard", "db", "status", "--json"]) == 1
    assert json.loads(capfd.readouterr().out.split("stopped\n", 1)[1])["running"] is False

    # status starts the server on demand and stops it again.
    assert main(["shard", "status"]) == 0
    assert "shard 1" in capfd.readouterr().out
    assert not embedded.is_running()

    # A second start reuses the cluster: same port, same password, same data.
    assert main(["shard", "db", "start"]) == 0
    assert embedded.port() == port and embedded.password() == password
    with psycopg.connect(embedded.url()) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("survives a restart",)]
    assert main(["shard", "register"]) == 0
    assert "already registered" in capfd.readouterr().out


def test_the_password_is_generated_and_kept_out_of_settings(embedded: EmbeddedPostgres) -> None:
    embedded.start()
    from gbdesk.secrets import get_secret

    password = get_secret(PASSWORD_SECRET)
    assert password and len(password) >= 24
    for path in app_paths().config_dir.iterdir():
        if path.name != "secrets.json":
            assert password not in path.read_text()
    assert password not in (embedded.data_dir / "postgresql.conf").read_text()
    assert embedded.start() is False  # already running
    # The fallback when pg_ctl cannot reach the data folder: the same fast shutdown, by signal.
    assert embedded._signal_fast_shutdown() is True
    assert not embedded.is_running()
    assert embedded.start() is True
    assert embedded.stop() is True
    assert embedded.stop() is False
