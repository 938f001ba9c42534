"""Registration against a real PostgreSQL: empty database, idempotence, status, unregister,
botserver's own tenants table, conflicts and invalid options."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from gbdesk.shard import crypto
from gbdesk.shard.errors import (
    InvalidShardOptionError,
    NotRegisteredError,
    ShardConflictError,
)
from gbdesk.shard.migrations import MIGRATIONS, applied_versions
from gbdesk.shard.registry import (
    MAX_TENANT_ID,
    ShardOptions,
    parse_tenant_range,
    register,
    status,
    touch,
    unregister,
)
from tests.shard.helpers import make_node, table_rows

pytestmark = pytest.mark.postgres

REGISTRY_TABLES = ("shard_config", "tenant_shard_map", "tenants", "gbdesk_nodes")


def _snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {table: table_rows(conn, table) for table in REGISTRY_TABLES}


def test_register_on_an_empty_database(db: psycopg.Connection, fresh_db: str) -> None:
    node = make_node()
    registration, created = register(db, node, ShardOptions(), connection_string=fresh_db)
    assert created
    assert applied_versions(db) == [m.version for m in MIGRATIONS]
    shard = db.execute(
        "SELECT shard_id, region_code, datacenter, connection_string, is_primary, is_active,"
        " min_tenant_id, max_tenant_id FROM shard_config"
    ).fetchall()
    assert len(shard) == 1
    shard_id, region, datacenter, stored, primary, active, low, high = shard[0]
    assert (shard_id, region, datacenter, primary, active, low, high) == (
        1,
        "USA",
        "local",
        True,
        True,
        1,
        MAX_TENANT_ID,
    )
    assert stored.startswith("enc:v1:") and crypto.decrypt(stored) == fresh_db
    # The chapter's single-node rows: tenant 1 'default' in shard 1, USA.
    assert db.execute(
        "SELECT id, shard_id, name, slug, region_code, plan_tier FROM tenants"
    ).fetchall() == [(1, 1, "Default", "default", "USA", 0)]
    assert db.execute(
        "SELECT tenant_id, shard_id, region_code FROM tenant_shard_map"
    ).fetchall() == [(1, 1, "USA")]
    assert db.execute("SELECT to_regclass('idx_tenant_shard_region')").fetchone()[0] is not None
    row = db.execute(
        "SELECT node_id::text, shard_id, host_name, hardware_profile, llm_url, llm_model,"
        " gbdesk_version FROM gbdesk_nodes"
    ).fetchone()
    assert row[:3] == (node.node_id, 1, "node-a")
    assert row[3]["cpu"]["logical_cores"] >= 1 and row[3]["schema_version"] == 1
    assert row[4:] == ("http://127.0.0.1:8081/v1", "SmolLM2-135M-Instruct-Q4_1", "0.1.0")
    database = fresh_db.rsplit("/", 1)[1]
    assert registration.connection.endswith(f"@127.0.0.1:{registration_port(fresh_db)}/{database}")
    assert "***" in registration.connection
    assert [t["slug"] for t in registration.tenants] == ["default"]


def registration_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])


def test_register_again_changes_only_last_seen(db: psycopg.Connection, fresh_db: str) -> None:
    node = make_node()
    register(db, node, ShardOptions(), connection_string=fresh_db)
    before = _snapshot(db)
    registration, created = register(db, node, ShardOptions(), connection_string=fresh_db)
    after = _snapshot(db)
    assert not created
    for table in ("shard_config", "tenant_shard_map", "tenants"):
        assert after[table] == before[table], table
    (old,), (new,) = before["gbdesk_nodes"], after["gbdesk_nodes"]
    last_seen = 8  # column position of last_seen_at
    assert old[:last_seen] == new[:last_seen]
    assert new[last_seen] > old[last_seen]
    assert registration.last_seen_at == new[last_seen]
    # Same again with every option spelled out as registered.
    explicit = ShardOptions(1, "usa", "local", (1, MAX_TENANT_ID), "default")
    register(db, node, explicit, connection_string=fresh_db)
    assert _snapshot(db)["shard_config"] == before["shard_config"]


def test_status_and_unregister(db: psycopg.Connection, fresh_db: str) -> None:
    node = make_node()
    assert status(db, node.node_id) is None  # nothing there yet
    register(db, node, ShardOptions(shard_id=3, region="BRA"), connection_string=fresh_db)
    current = status(db, node.node_id)
    assert current is not None
    assert (current.shard_id, current.region_code, current.is_active) == (3, "BRA", True)
    assert current.to_json()["tenants"][0]["slug"] == "default"
    assert unregister(db, node.node_id) == 3
    assert status(db, node.node_id) is None
    assert db.execute("SELECT is_active FROM shard_config WHERE shard_id = 3").fetchone() == (
        False,
    )
    with pytest.raises(NotRegisteredError):
        unregister(db, node.node_id)
    with pytest.raises(NotRegisteredError):
        touch(db, node.node_id)
    # Registering again with the same shard id reactivates it.
    again, created = register(db, node, ShardOptions(shard_id=3), connection_string=fresh_db)
    assert created and again.shard_id == 3 and again.is_active
    # Moving the node to another shard: its tenant follows, since shard 3 is inactive now.
    unregister(db, node.node_id)
    moved, _ = register(db, node, ShardOptions(), connection_string=fresh_db)
    assert moved.shard_id == 1 and moved.region_code == "USA"
    assert [t["tenant_id"] for t in moved.tenants] == [1]
    assert db.execute("SELECT shard_id, region_code FROM tenants").fetchall() == [(1, "USA")]


BOTSERVER_TENANTS = """
CREATE TABLE tenants (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL UNIQUE,
    slug TEXT NOT NULL UNIQUE,
    is_active BOOLEAN NOT NULL DEFAULT true,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW())
"""


def _definition(conn: psycopg.Connection, table: str) -> list[tuple]:
    columns = conn.execute(
        """SELECT column_name, data_type, is_nullable, column_default
           FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position""",
        (table,),
    ).fetchall()
    constraints = conn.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = %s::regclass ORDER BY conname""",
        (table,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", (table,)
    ).fetchall()
    return [*columns, *constraints, *indexes]


def test_botserver_uuid_tenants_table_is_left_intact(db: psycopg.Connection, fresh_db: str) -> None:
    db.execute(BOTSERVER_TENANTS)
    db.execute(
        "INSERT INTO tenants (name, slug, metadata) VALUES ('Default', 'default', '{\"a\": 1}'),"
        " ('Acme', 'acme', '{}')"
    )
    definition, rows = _definition(db, "tenants"), table_rows(db, "tenants")

    registration, _ = register(
        db,
        make_node(),
        ShardOptions(tenant_range=(1000, 1999), tenant_slug="acme"),
        connection_string=fresh_db,
    )
    register(
        db,
        make_node(),
        ShardOptions(shard_id=2, tenant_range=(2000, 2999)),
        connection_string=fresh_db,
    )

    assert _definition(db, "tenants") == definition
    assert table_rows(db, "tenants") == rows
    # The chapter's BIGINT tenants table was not created beside it, but the version is recorded.
    assert 2 in applied_versions(db)
    acme_uuid = db.execute("SELECT id::text FROM tenants WHERE slug = 'acme'").fetchone()[0]
    assert registration.tenants_table == "botserver"
    assert registration.tenants == (
        {"tenant_id": 1000, "slug": "acme", "name": "Acme", "uuid": acme_uuid},
    )
    assert table_rows(db, "gbdesk_tenant_ids")[0][:2] == (1000, "acme")
    assert db.execute("SELECT tenant_id, shard_id FROM tenant_shard_map ORDER BY 1").fetchall() == [
        (1000, 1),
        (2000, 2),
    ]


def test_a_tenants_table_of_another_shape_is_refused(db: psycopg.Connection, fresh_db: str) -> None:
    db.execute("CREATE TABLE tenants (id TEXT PRIMARY KEY, slug TEXT)")
    with pytest.raises(Exception, match="neither the chapter's BIGINT nor botserver's UUID"):
        register(db, make_node(), ShardOptions(), connection_string=fresh_db)
    assert table_rows(db, "shard_config") == []  # rolled back


def test_shard_id_owned_by_another_node(db: psycopg.Connection, fresh_db: str) -> None:
    first = make_node(host="first")
    register(db, first, ShardOptions(shard_id=5, tenant_range=(1, 100)), connection_string=fresh_db)
    with pytest.raises(
        ShardConflictError, match=r"shard 5 is already registered by another node \(first"
    ) as info:
        register(
            db,
            make_node(),
            ShardOptions(shard_id=5, tenant_range=(101, 200)),
            connection_string=fresh_db,
        )
    assert "--shard-id" in (info.value.fix or "")
    with pytest.raises(ShardConflictError, match="already registered as shard 5"):
        register(db, first, ShardOptions(shard_id=6), connection_string=fresh_db)


def test_two_nodes_registering_the_same_shard_at_once(fresh_db: str) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def attempt(node_id: str) -> None:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            barrier.wait()
            try:
                outcomes.append(
                    register(
                        conn,
                        make_node(node_id),
                        ShardOptions(shard_id=9),
                        connection_string=fresh_db,
                    )[0]
                )
            except ShardConflictError as exc:
                outcomes.append(exc)

    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    threads = [threading.Thread(target=attempt, args=(node_id,)) for node_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [o for o in outcomes if isinstance(o, ShardConflictError)]
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(winners) == 1 and len(errors) == 1
    assert "shard 9 is already registered by another node" in errors[0].message
    with psycopg.connect(fresh_db) as conn:
        nodes = conn.execute("SELECT node_id::text FROM gbdesk_nodes").fetchall()
    assert nodes == [(winners[0].node_id,)]


def test_overlapping_tenant_ranges_are_refused_and_nothing_is_written(
    db: psycopg.Connection, fresh_db: str
) -> None:
    register(
        db,
        make_node(),
        ShardOptions(shard_id=1, tenant_range=(1, 1000)),
        connection_string=fresh_db,
    )
    before = _snapshot(db)
    second = make_node()
    with pytest.raises(ShardConflictError, match=r"overlaps active shard 1 \(1:1000\)"):
        register(
            db,
            second,
            ShardOptions(shard_id=2, tenant_range=(500, 2000), tenant_slug="b"),
            connection_string=fresh_db,
        )
    with pytest.raises(ShardConflictError, match="overlaps"):
        register(db, second, ShardOptions(shard_id=2), connection_string=fresh_db)  # default range
    # A failure midway: shard_config and the tenant row are written, then the tenant turns
    # out to belong to shard 1, and the whole registration rolls back.
    with pytest.raises(ShardConflictError, match=r"'default' .* belongs to active shard 1"):
        register(
            db,
            second,
            ShardOptions(shard_id=2, tenant_range=(1001, 2000)),
            connection_string=fresh_db,
        )
    assert _snapshot(db) == before
    ok, _ = register(
        db,
        second,
        ShardOptions(shard_id=2, tenant_range=(1001, 2000), tenant_slug="b"),
        connection_string=fresh_db,
    )
    assert ok.tenants[0]["tenant_id"] == 1001  # the first id of its own range
    assert not ok.is_primary  # shard 1 is the primary


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ShardOptions(shard_id=1024), "outside 0-1023"),
        (ShardOptions(shard_id=-1), "outside 0-1023"),
        (ShardOptions(region="XXX"), "not an ISO 3166-1 alpha-3"),
        (ShardOptions(region="US"), "alpha-2"),
        (ShardOptions(datacenter="x" * 33), "1 to 32"),
        (ShardOptions(tenant_range=(10, 1)), "minimum above its maximum"),
        (ShardOptions(tenant_range=(0, 10)), "within 1:"),
        (ShardOptions(tenant_slug="Bad Slug"), "lower-case"),
    ],
)
def test_invalid_options_are_refused_before_touching_the_database(
    db: psycopg.Connection, fresh_db: str, options: ShardOptions, message: str
) -> None:
    with pytest.raises(InvalidShardOptionError, match=message) as info:
        register(db, make_node(), options, connection_string=fresh_db)
    assert info.value.fix
    assert db.execute("SELECT to_regclass('shard_config')").fetchone()[0] is None


@pytest.mark.parametrize("text", ["abc", "1:2:3", "5", "1:x"])
def test_tenant_range_text_must_be_min_colon_max(text: str) -> None:
    with pytest.raises(InvalidShardOptionError, match="MIN:MAX"):
        parse_tenant_range(text)
    assert parse_tenant_range("1:1000000") == (1, 1_000_000)
