"""Migrations: versioned, idempotent, one transaction each."""

from __future__ import annotations

import psycopg
import pytest

from gbdesk.shard.errors import ShardError
from gbdesk.shard.migrations import MIGRATIONS, Migration, applied_versions, migrate
from gbdesk.shard.registry import ShardOptions, register
from tests.shard.helpers import make_node

pytestmark = pytest.mark.postgres


def _exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None


def test_migrations_apply_once(db: psycopg.Connection) -> None:
    assert migrate(db) == [1, 2, 3, 4, 5]
    assert migrate(db) == []
    assert applied_versions(db) == [1, 2, 3, 4, 5]
    for name in ("shard_config", "tenant_shard_map", "tenants", "global_seq", "gbdesk_nodes"):
        assert _exists(db, name), name


def test_a_failing_migration_is_rolled_back_and_earlier_ones_stay(db: psycopg.Connection) -> None:
    broken = (
        Migration(1, "good", ("CREATE TABLE good_one (id INT)",)),
        Migration(
            2,
            "half",
            ("CREATE TABLE half_made (id INT)", "INSERT INTO half_made VALUES (1)", "SELEC oops"),
        ),
    )
    with pytest.raises(ShardError, match=r"migration 2 \(half\) failed and was rolled back"):
        migrate(db, broken)
    assert _exists(db, "good_one")
    assert not _exists(db, "half_made")
    assert applied_versions(db) == [1]


def test_registration_with_a_broken_schema_writes_nothing(
    db: psycopg.Connection, fresh_db: str
) -> None:
    failing = (
        *MIGRATIONS[:3],
        Migration(4, "nodes", ("CREATE TABLE gbdesk_nodes (x INT)", "SELECT 1/0")),
    )
    with pytest.raises(ShardError, match=r"migration 4 \(nodes\) failed"):
        register(db, make_node(), ShardOptions(), connection_string=fresh_db, migrations=failing)
    assert applied_versions(db) == [1, 2, 3]
    assert not _exists(db, "gbdesk_nodes")
    assert db.execute("SELECT count(*) FROM shard_config").fetchone() == (0,)


def test_an_existing_chapter_schema_is_adopted(db: psycopg.Connection) -> None:
    # botserver's old migration created the same tables: ours are no-ops on them.
    db.execute(
        """CREATE TABLE shard_config (shard_id SMALLINT PRIMARY KEY, region_code CHAR(3) NOT NULL,
           datacenter VARCHAR(32) NOT NULL, connection_string TEXT NOT NULL,
           is_primary BOOLEAN DEFAULT false, is_active BOOLEAN DEFAULT true,
           min_tenant_id BIGINT NOT NULL, max_tenant_id BIGINT NOT NULL,
           created_at TIMESTAMPTZ DEFAULT NOW())"""
    )
    db.execute(
        "INSERT INTO shard_config VALUES (7, 'JPN', 'ap-northeast-1', 'postgresql://s7/gb',"
        " false, true, 6000001, 7000000)"
    )
    migrate(db)
    assert db.execute("SELECT shard_id, region_code FROM shard_config").fetchall() == [(7, "JPN")]
