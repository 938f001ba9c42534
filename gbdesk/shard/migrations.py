"""The registry's schema, applied by versioned, idempotent migrations.

Each migration runs in one transaction together with its row in ``gbdesk_schema_migrations``,
so it is applied entirely or not at all. A transaction-scoped advisory lock makes concurrent
gbdesk processes apply them one after the other. Every statement also tolerates objects that
exist already (``IF NOT EXISTS``), because botserver's own migrations once created the same
tables: an existing ``tenants`` table in particular is never altered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gbdesk.shard.errors import ShardError

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key for schema changes ("gbdesk" + "mig" in hex, fits a BIGINT).
MIGRATION_LOCK_KEY = 0x67626465736B6D69


@dataclass(frozen=True)
class Migration:
    """One schema step: a version, a name, and the statements that make it."""

    version: int
    name: str
    statements: tuple[str, ...]


_SHARD_TABLES = Migration(
    1,
    "shard_config and tenant_shard_map",
    (
        """CREATE TABLE IF NOT EXISTS shard_config (
            shard_id SMALLINT PRIMARY KEY,
            region_code CHAR(3) NOT NULL,
            datacenter VARCHAR(32) NOT NULL,
            connection_string TEXT NOT NULL,
            is_primary BOOLEAN DEFAULT false,
            is_active BOOLEAN DEFAULT true,
            min_tenant_id BIGINT NOT NULL,
            max_tenant_id BIGINT NOT NULL,
            created_at TIMESTAMPTZ DEFAULT NOW())""",
        """CREATE TABLE IF NOT EXISTS tenant_shard_map (
            tenant_id BIGINT PRIMARY KEY,
            shard_id SMALLINT NOT NULL REFERENCES shard_config(shard_id),
            region_code CHAR(3) NOT NULL,
            created_at TIMESTAMPTZ DEFAULT NOW())""",
        "CREATE INDEX IF NOT EXISTS idx_tenant_shard_region"
        " ON tenant_shard_map(region_code, shard_id)",
    ),
)

# The sharded tenants table of the chapter, only where no tenants table exists.
_TENANTS = Migration(
    2,
    "sharded tenants table (skipped when a tenants table exists)",
    (
        """CREATE TABLE IF NOT EXISTS tenants (
            id BIGSERIAL PRIMARY KEY, shard_id SMALLINT NOT NULL DEFAULT 1,
            external_id UUID DEFAULT gen_random_uuid() UNIQUE, name VARCHAR(255) NOT NULL,
            slug VARCHAR(128) NOT NULL UNIQUE, region_code CHAR(3) NOT NULL DEFAULT 'USA',
            plan_tier SMALLINT NOT NULL DEFAULT 0, settings JSONB DEFAULT '{}'::jsonb,
            limits JSONB DEFAULT '{"users": 5, "bots": 1, "storage_gb": 1}'::jsonb,
            is_active BOOLEAN DEFAULT true, created_at TIMESTAMPTZ DEFAULT NOW(),
            updated_at TIMESTAMPTZ DEFAULT NOW())""",
    ),
)

_SNOWFLAKE = Migration(
    3,
    "global_seq and generate_snowflake_id",
    (
        "CREATE SEQUENCE IF NOT EXISTS global_seq",
        """CREATE OR REPLACE FUNCTION generate_snowflake_id(p_shard_id SMALLINT)
RETURNS BIGINT AS $$
DECLARE
    epoch BIGINT := 1704067200000;  -- 2024-01-01 00:00:00 UTC
    ts BIGINT;
    seq BIGINT;
BEGIN
    -- 41 bits: timestamp (milliseconds since epoch)
    ts := (EXTRACT(EPOCH FROM NOW()) * 1000)::BIGINT - epoch;

    -- 10 bits: shard_id (0-1023)
    -- 12 bits: sequence (0-4095)
    seq := nextval('global_seq') & 4095;

    RETURN (ts << 22) | ((p_shard_id & 1023) << 12) | seq;
END;
$$ LANGUAGE plpgsql""",
    ),
)

_NODES = Migration(
    4,
    "gbdesk_nodes and gbdesk_tenant_ids",
    (
        """CREATE TABLE IF NOT EXISTS gbdesk_nodes (
            node_id UUID PRIMARY KEY,
            shard_id SMALLINT NOT NULL UNIQUE REFERENCES shard_config(shard_id),
            host_name TEXT NOT NULL,
            hardware_profile JSONB NOT NULL DEFAULT '{}'::jsonb,
            llm_url TEXT NOT NULL DEFAULT '',
            llm_model TEXT NOT NULL DEFAULT '',
            gbdesk_version TEXT NOT NULL,
            registered_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            last_seen_at TIMESTAMPTZ NOT NULL DEFAULT NOW())""",
        # BIGINT tenant ids for tenants of botserver's UUID tenants table, matched by slug.
        """CREATE TABLE IF NOT EXISTS gbdesk_tenant_ids (
            tenant_id BIGINT PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW())""",
    ),
)

# What the fleet needs to know of each node (gbdesk.shard.capacity.NodeCapacity), kept current
# by the heartbeat. Rows of older versions read as "this machine only" until their next beat.
_FLEET = Migration(
    5,
    "gbdesk_nodes fleet columns (reachable URL, capacity, worker)",
    (
        """ALTER TABLE gbdesk_nodes
            ADD COLUMN IF NOT EXISTS llm_url_reachable BOOLEAN NOT NULL DEFAULT false,
            ADD COLUMN IF NOT EXISTS embedding_url TEXT NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS embedding_model TEXT NOT NULL DEFAULT '',
            ADD COLUMN IF NOT EXISTS embedding_dimensions INTEGER,
            ADD COLUMN IF NOT EXISTS tokens_per_second DOUBLE PRECISION,
            ADD COLUMN IF NOT EXISTS slots INTEGER,
            ADD COLUMN IF NOT EXISTS context_tokens INTEGER,
            ADD COLUMN IF NOT EXISTS worker_endpoint TEXT,
            ADD COLUMN IF NOT EXISTS worker_free_bytes BIGINT,
            ADD COLUMN IF NOT EXISTS worker_total_bytes BIGINT""",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (_SHARD_TABLES, _TENANTS, _SNOWFLAKE, _NODES, _FLEET)

_CREATE_LEDGER = """CREATE TABLE IF NOT EXISTS gbdesk_schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"""


def applied_versions(conn: psycopg.Connection) -> list[int]:
    """Versions recorded in ``gbdesk_schema_migrations`` ([] before the first migration)."""
    exists = conn.execute("SELECT to_regclass('gbdesk_schema_migrations')").fetchone()
    if not exists or exists[0] is None:
        return []
    rows = conn.execute("SELECT version FROM gbdesk_schema_migrations ORDER BY version")
    return [int(row[0]) for row in rows.fetchall()]


def migrate(conn: psycopg.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations not applied yet, each in its own transaction.

    Args:
        conn: an autocommit connection.
        migrations: in ascending version order (tests pass their own list).

    Returns:
        The versions applied by this call ([] when the schema was current).

    Raises:
        ShardError: a statement failed; that migration was rolled back, earlier ones stay.
    """
    import psycopg

    applied: list[int] = []
    for migration in migrations:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                conn.execute(_CREATE_LEDGER)
                done = conn.execute(
                    "SELECT 1 FROM gbdesk_schema_migrations WHERE version = %s",
                    (migration.version,),
                ).fetchone()
                if done:
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO gbdesk_schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
        except psycopg.Error as exc:
            raise ShardError(
                f"schema migration {migration.version} ({migration.name}) failed and was rolled "
                f"back: {' '.join(str(exc).split())}",
                fix="check that the database user may create tables, sequences and functions",
            ) from None
        log.info("applied schema migration %s: %s", migration.version, migration.name)
        applied.append(migration.version)
    return applied
