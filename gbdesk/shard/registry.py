"""Registering this node as a single-node shard, and reading or removing that registration.

Everything a registration writes happens in one transaction, under a transaction-scoped
advisory lock, so two nodes registering at the same moment are served one after the other: the
second sees the first's rows and gets a clear error instead of a half-merged registry.

Tenants: where gbdesk created the chapter's sharded ``tenants`` table (BIGINT ids), the tenant's
id is ``tenants.id``. Where botserver's own ``tenants`` table exists (UUID ids), that table is
only read, never written: the tenant is matched by ``slug`` and its BIGINT ``tenant_id`` for
``tenant_shard_map`` comes from gbdesk's table ``gbdesk_tenant_ids (tenant_id, slug)``. New ids
are the next free id inside the shard's tenant range.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from gbdesk.paths import AppPaths
from gbdesk.shard import crypto
from gbdesk.shard.capacity import NodeCapacity
from gbdesk.shard.connection import mask, parse
from gbdesk.shard.errors import (
    InvalidShardOptionError,
    NotRegisteredError,
    ShardConflictError,
    ShardError,
)
from gbdesk.shard.migrations import MIGRATIONS, Migration, applied_versions, migrate
from gbdesk.shard.regions import DEFAULT_REGION, validate_region
from gbdesk.shard.snowflake import MAX_SHARD_ID

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

MAX_TENANT_ID = 9223372036854775807  # BIGINT
DEFAULT_SHARD_ID = 1
DEFAULT_DATACENTER = "local"
DEFAULT_TENANT_SLUG = "default"
# pg_advisory_xact_lock key for registrations ("gbdesk" + "rg" in hex).
REGISTRY_LOCK_KEY = 0x67626465736B7267
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}\Z")

TenantsTable = Literal["sharded", "botserver"]


@dataclass(frozen=True)
class ShardOptions:
    """What the person asked for; None means "keep what is registered, else the default"."""

    shard_id: int | None = None
    region: str | None = None
    datacenter: str | None = None
    tenant_range: tuple[int, int] | None = None
    tenant_slug: str | None = None

    def validated(self) -> ShardOptions:
        """The options checked and normalised, before any database is touched.

        Raises:
            InvalidShardOptionError: a value is out of range or malformed.
        """
        if self.shard_id is not None:
            validate_shard_id(self.shard_id)
        region = validate_region(self.region) if self.region is not None else None
        datacenter = self.datacenter
        if datacenter is not None:
            datacenter = datacenter.strip()
            if not 1 <= len(datacenter) <= 32:
                raise InvalidShardOptionError(
                    f"datacenter {self.datacenter!r} must be 1 to 32 characters",
                    fix="use a short name such as local, home or us-east-1",
                )
        if self.tenant_range is not None:
            validate_tenant_range(*self.tenant_range)
        slug = self.tenant_slug
        if slug is not None and not _SLUG.match(slug):
            raise InvalidShardOptionError(
                f"tenant slug {slug!r} must be lower-case letters, digits, '-' or '_' "
                "(at most 128, starting with a letter or digit)",
                fix="for example --tenant default",
            )
        return ShardOptions(self.shard_id, region, datacenter, self.tenant_range, slug)


def validate_shard_id(shard_id: int) -> int:
    """Raises: InvalidShardOptionError: outside the 10 bits of the snowflake layout."""
    if not 0 <= shard_id <= MAX_SHARD_ID:
        raise InvalidShardOptionError(
            f"shard id {shard_id} is outside 0-{MAX_SHARD_ID}: snowflake IDs keep 10 bits for "
            "the shard",
            fix=f"pick a shard id from 0 to {MAX_SHARD_ID}",
        )
    return shard_id


def validate_tenant_range(low: int, high: int) -> tuple[int, int]:
    """Raises: InvalidShardOptionError: min > max, or outside 1..9223372036854775807."""
    if not 1 <= low <= MAX_TENANT_ID or not 1 <= high <= MAX_TENANT_ID:
        raise InvalidShardOptionError(
            f"tenant range {low}:{high} must lie within 1:{MAX_TENANT_ID}",
            fix="pass --tenant-range MIN:MAX with positive BIGINT values",
        )
    if low > high:
        raise InvalidShardOptionError(
            f"tenant range {low}:{high} has its minimum above its maximum",
            fix=f"swap them: --tenant-range {high}:{low}",
        )
    return low, high


def parse_tenant_range(text: str) -> tuple[int, int]:
    """``"MIN:MAX"`` → (min, max).

    Raises:
        InvalidShardOptionError: not two integers separated by a colon, or an invalid range.
    """
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        low, high = int(parts[0]), int(parts[1])
    except ValueError:
        raise InvalidShardOptionError(
            f"tenant range {text!r} is not MIN:MAX", fix="for example --tenant-range 1:1000000"
        ) from None
    return validate_tenant_range(low, high)


@dataclass(frozen=True)
class NodeDescription:
    """What the registry records about this machine."""

    node_id: str
    host_name: str
    gbdesk_version: str
    llm_url: str = ""
    llm_model: str = ""
    hardware_profile: dict[str, Any] = field(default_factory=dict)
    # What it offers now; its llm_url and llm_model, when set, win over the two above.
    capacity: NodeCapacity | None = None


@dataclass(frozen=True)
class Registration:
    """This node's row in the registry, joined with its shard and tenant."""

    node_id: str
    shard_id: int
    host_name: str
    region_code: str
    datacenter: str
    is_primary: bool
    is_active: bool
    min_tenant_id: int
    max_tenant_id: int
    connection: str  # the stored connection string, decrypted and with the password masked
    llm_url: str
    llm_model: str
    gbdesk_version: str
    registered_at: datetime
    last_seen_at: datetime
    tenants: tuple[dict[str, Any], ...] = ()
    tenants_table: str = ""
    schema_versions: tuple[int, ...] = ()
    llm_url_reachable: bool = False  # False: llm_url works on the node's own machine only

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["registered_at"] = self.registered_at.isoformat()
        data["last_seen_at"] = self.last_seen_at.isoformat()
        data["tenants"] = list(self.tenants)
        data["schema_versions"] = list(self.schema_versions)
        return data


def tenants_table_kind(conn: psycopg.Connection) -> TenantsTable:
    """ "sharded" (the chapter's BIGINT ids) or "botserver" (UUID ids).

    Raises:
        ShardError: a ``tenants`` table with an id column of another type.
    """
    row = conn.execute(
        """SELECT data_type FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = 'tenants'
             AND column_name = 'id'"""
    ).fetchone()
    kind = row[0] if row else None
    if kind == "bigint":
        return "sharded"
    if kind == "uuid":
        return "botserver"
    raise ShardError(
        f"the database has a tenants table whose id column is {kind or 'missing'}, neither the "
        "chapter's BIGINT nor botserver's UUID",
        fix="point --database-url at botserver's database or at an empty one",
    )


def register(
    conn: psycopg.Connection,
    node: NodeDescription,
    options: ShardOptions,
    *,
    connection_string: str,
    paths: AppPaths | None = None,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> tuple[Registration, bool]:
    """Register (or refresh) this node as a single-node shard.

    Running it again with the same values changes nothing but ``last_seen_at``.

    Args:
        conn: an autocommit connection to the registry's database.
        node: this machine.
        options: the requested shard; unset fields keep the registered values, else defaults
            (shard 1, USA, datacenter "local", tenants 1..9223372036854775807, tenant "default").
        connection_string: how botserver reaches this shard's database; stored encrypted.
        paths: where the encryption key lives.
        migrations: the schema steps (tests pass their own).

    Returns:
        The registration and whether this call created it (False: it existed).

    Raises:
        InvalidShardOptionError: an option is invalid.
        ShardConflictError: the shard belongs to another node, this node owns another shard,
            the tenant range overlaps an active shard, or the tenant belongs to another shard.
        ShardError: a migration or statement failed; nothing of the registration was written.
    """
    import psycopg

    options = options.validated()
    migrate(conn, migrations)
    _, password = parse(connection_string)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (REGISTRY_LOCK_KEY,))
            created = _register_locked(conn, node, options, connection_string, paths)
    except psycopg.errors.UniqueViolation:
        # Only reachable when something other than gbdesk wrote the rows meanwhile.
        raise ShardConflictError(
            "another node registered the same shard or tenant at the same moment",
            fix="run `gbdesk shard status`, then pick another --shard-id if needed",
        ) from None
    except psycopg.Error as exc:
        raise ShardError(
            f"the registration was rolled back: {' '.join(mask(str(exc), password).split())}",
            fix="check the database user's rights on the registry tables",
        ) from None
    registration = status(conn, node.node_id, paths=paths)
    assert registration is not None  # committed just above
    return registration, created


@dataclass(frozen=True)
class _ShardPlan:
    """The shard row to write: the requested values over the registered ones, over defaults."""

    shard_id: int
    region: str
    datacenter: str
    low: int
    high: int
    stored_connection: str | None  # the encrypted string of an existing row; None: a new shard


def _register_locked(
    conn: psycopg.Connection,
    node: NodeDescription,
    options: ShardOptions,
    connection_string: str,
    paths: AppPaths | None,
) -> bool:
    """Every statement of a registration, under the registry's advisory lock."""
    registered_shard, shard_id = _claim_shard(conn, node, options)
    plan = _plan_shard(conn, shard_id, options)
    _check_overlap(conn, plan)
    _write_shard(conn, plan, connection_string, paths)
    _map_tenant(
        conn,
        options.tenant_slug or DEFAULT_TENANT_SLUG,
        shard_id=shard_id,
        region=plan.region,
        low=plan.low,
        high=plan.high,
    )
    return _write_node(conn, node, shard_id, exists=registered_shard is not None)


def _claim_shard(
    conn: psycopg.Connection, node: NodeDescription, options: ShardOptions
) -> tuple[int | None, int]:
    """(the shard this node is registered as, the shard to register it as).

    Raises:
        ShardConflictError: this node owns another shard, or another node owns this one.
    """
    mine = conn.execute(
        "SELECT shard_id FROM gbdesk_nodes WHERE node_id = %s FOR UPDATE", (node.node_id,)
    ).fetchone()
    registered = int(mine[0]) if mine else None
    shard_id = options.shard_id
    if shard_id is None:
        shard_id = registered if registered is not None else DEFAULT_SHARD_ID
    if registered is not None and registered != shard_id:
        raise ShardConflictError(
            f"this node is already registered as shard {registered}, not shard {shard_id}",
            fix="run `gbdesk shard unregister` first to move it to another shard",
        )
    owner = conn.execute(
        "SELECT node_id::text, host_name FROM gbdesk_nodes WHERE shard_id = %s", (shard_id,)
    ).fetchone()
    if owner and owner[0] != node.node_id:
        raise ShardConflictError(
            f"shard {shard_id} is already registered by another node ({owner[1]}, node id "
            f"{owner[0]})",
            fix="pick another --shard-id, or unregister that node first",
        )
    return registered, shard_id


def _plan_shard(conn: psycopg.Connection, shard_id: int, options: ShardOptions) -> _ShardPlan:
    from psycopg.rows import dict_row

    shard = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT region_code, datacenter, connection_string, min_tenant_id, max_tenant_id
               FROM shard_config WHERE shard_id = %s FOR UPDATE""",
            (shard_id,),
        )
        .fetchone()
    )
    if shard is None:
        low, high = options.tenant_range or (1, MAX_TENANT_ID)
        region = options.region or DEFAULT_REGION
        return _ShardPlan(
            shard_id, region, options.datacenter or DEFAULT_DATACENTER, low, high, None
        )
    low, high = options.tenant_range or (int(shard["min_tenant_id"]), int(shard["max_tenant_id"]))
    return _ShardPlan(
        shard_id,
        options.region or shard["region_code"].strip(),
        options.datacenter or shard["datacenter"],
        low,
        high,
        shard["connection_string"],
    )


def _check_overlap(conn: psycopg.Connection, plan: _ShardPlan) -> None:
    """Raises:
    ShardConflictError: the tenant range overlaps another active shard's."""
    overlap = conn.execute(
        """SELECT shard_id, min_tenant_id, max_tenant_id FROM shard_config
           WHERE is_active AND shard_id <> %s AND min_tenant_id <= %s AND max_tenant_id >= %s
           ORDER BY shard_id LIMIT 1""",
        (plan.shard_id, plan.high, plan.low),
    ).fetchone()
    if overlap:
        raise ShardConflictError(
            f"tenant range {plan.low}:{plan.high} overlaps active shard {overlap[0]} "
            f"({overlap[1]}:{overlap[2]})",
            fix="pass a --tenant-range that no active shard uses",
        )


def _write_shard(
    conn: psycopg.Connection, plan: _ShardPlan, connection_string: str, paths: AppPaths | None
) -> None:
    """Insert the shard row, or update only what changed."""
    if plan.stored_connection is None:
        conn.execute(
            """INSERT INTO shard_config (shard_id, region_code, datacenter, connection_string,
                   is_primary, is_active, min_tenant_id, max_tenant_id)
               VALUES (%s, %s, %s, %s,
                   NOT EXISTS (SELECT 1 FROM shard_config WHERE is_primary AND is_active),
                   true, %s, %s)""",
            (
                plan.shard_id,
                plan.region,
                plan.datacenter,
                crypto.encrypt(connection_string, paths=paths),
                plan.low,
                plan.high,
            ),
        )
        return
    values = (plan.region, plan.datacenter, plan.low, plan.high)
    conn.execute(
        """UPDATE shard_config SET region_code = %s, datacenter = %s, is_active = true,
               min_tenant_id = %s, max_tenant_id = %s
           WHERE shard_id = %s AND (region_code, datacenter, is_active, min_tenant_id,
               max_tenant_id) IS DISTINCT FROM (%s::char(3), %s, true, %s, %s)""",
        (*values, plan.shard_id, *values),
    )
    # A fresh encryption of the same string differs (random IV): re-encrypt only changes.
    if _decrypt_or_none(plan.stored_connection, paths) != connection_string:
        conn.execute(
            "UPDATE shard_config SET connection_string = %s WHERE shard_id = %s",
            (crypto.encrypt(connection_string, paths=paths), plan.shard_id),
        )


def _write_node(
    conn: psycopg.Connection, node: NodeDescription, shard_id: int, *, exists: bool
) -> bool:
    """Insert or refresh this node's row; True when it was inserted."""
    profile = json.dumps(node.hardware_profile, sort_keys=True)
    capacity = node.capacity
    llm_url = (capacity.llm_url if capacity else "") or node.llm_url
    llm_model = (capacity.llm_model if capacity else None) or node.llm_model
    described = (node.host_name, profile, llm_url, llm_model, node.gbdesk_version)
    if exists:
        conn.execute(
            """UPDATE gbdesk_nodes SET last_seen_at = NOW(), host_name = %s,
                   hardware_profile = %s::jsonb, llm_url = %s, llm_model = %s,
                   gbdesk_version = %s
               WHERE node_id = %s""",
            (*described, node.node_id),
        )
    else:
        conn.execute(
            """INSERT INTO gbdesk_nodes (node_id, shard_id, host_name, hardware_profile,
                   llm_url, llm_model, gbdesk_version)
               VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s)""",
            (node.node_id, shard_id, *described),
        )
    if capacity is not None:
        _write_capacity(conn, node.node_id, capacity)
    return not exists


# The capacity columns (migration 5) in NodeCapacity's order, after llm_url and llm_model.
_CAPACITY_COLUMNS = (
    "llm_url_reachable",
    "embedding_url",
    "embedding_model",
    "embedding_dimensions",
    "tokens_per_second",
    "slots",
    "context_tokens",
    "worker_endpoint",
    "worker_free_bytes",
    "worker_total_bytes",
)


def _write_capacity(conn: psycopg.Connection, node_id: str, capacity: NodeCapacity) -> None:
    """Record what the node offers now (every field: a worker that stopped becomes NULL)."""
    c = capacity
    values = (
        c.reachable,
        c.embedding_url,
        c.embedding_model,
        c.embedding_dimensions,
        c.tokens_per_second,
        c.slots,
        c.context_tokens,
        c.worker_endpoint,
        c.worker_free_bytes,
        c.worker_total_bytes,
    )
    assignments = ", ".join(f"{column} = %s" for column in _CAPACITY_COLUMNS)
    conn.execute(
        f"""UPDATE gbdesk_nodes SET {assignments},
               llm_url = COALESCE(NULLIF(%s, ''), llm_url),
               llm_model = COALESCE(NULLIF(%s, ''), llm_model)
           WHERE node_id = %s""",
        (*values, c.llm_url, c.llm_model or "", node_id),
    )


def _decrypt_or_none(stored: str, paths: AppPaths | None) -> str | None:
    try:
        return crypto.decrypt(stored, paths=paths)
    except ShardError:
        return None


def _next_tenant_id(conn: psycopg.Connection, low: int, high: int, kind: TenantsTable) -> int:
    """The smallest id above every id already used inside [low, high]."""
    used_by_tenants = (
        "SELECT id FROM tenants" if kind == "sharded" else "SELECT tenant_id FROM gbdesk_tenant_ids"
    )
    row = conn.execute(
        f"""SELECT MAX(id) FROM (
                SELECT tenant_id AS id FROM tenant_shard_map
                UNION ALL {used_by_tenants}) AS used
            WHERE id BETWEEN %s AND %s""",
        (low, high),
    ).fetchone()
    last = row[0] if row and row[0] is not None else low - 1
    if last >= high:
        raise ShardConflictError(
            f"the tenant range {low}:{high} has no free tenant id left",
            fix="widen --tenant-range",
        )
    return int(last) + 1


def _map_tenant(
    conn: psycopg.Connection, slug: str, *, shard_id: int, region: str, low: int, high: int
) -> None:
    kind = tenants_table_kind(conn)
    if kind == "sharded":
        row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()
        if row:
            tenant_id = int(row[0])
        else:
            tenant_id = _next_tenant_id(conn, low, high, kind)
            conn.execute(
                """INSERT INTO tenants (id, shard_id, name, slug, region_code, plan_tier)
                   VALUES (%s, %s, %s, %s, %s, 0)""",
                (
                    tenant_id,
                    shard_id,
                    slug.replace("-", " ").replace("_", " ").title(),
                    slug,
                    region,
                ),
            )
    else:
        row = conn.execute(
            "SELECT tenant_id FROM gbdesk_tenant_ids WHERE slug = %s", (slug,)
        ).fetchone()
        if row:
            tenant_id = int(row[0])
        else:
            tenant_id = _next_tenant_id(conn, low, high, kind)
            conn.execute(
                "INSERT INTO gbdesk_tenant_ids (tenant_id, slug) VALUES (%s, %s)",
                (tenant_id, slug),
            )

    mapped = conn.execute(
        """SELECT m.shard_id, m.region_code, s.is_active FROM tenant_shard_map m
           JOIN shard_config s USING (shard_id) WHERE m.tenant_id = %s FOR UPDATE""",
        (tenant_id,),
    ).fetchone()
    moving = mapped is not None and mapped[0] != shard_id
    if mapped is not None and moving and mapped[2]:
        raise ShardConflictError(
            f"tenant {slug!r} (id {tenant_id}) belongs to active shard {mapped[0]}",
            fix="pass --tenant with a slug of this node's own tenant",
        )
    if not low <= tenant_id <= high:
        raise ShardConflictError(
            f"tenant {slug!r} has id {tenant_id}, outside shard {shard_id}'s tenant range "
            f"{low}:{high}",
            fix="widen --tenant-range to include it, or pass another --tenant",
        )
    if mapped is None:
        conn.execute(
            "INSERT INTO tenant_shard_map (tenant_id, shard_id, region_code) VALUES (%s, %s, %s)",
            (tenant_id, shard_id, region),
        )
    elif moving or mapped[1].strip() != region:
        # The tenant's old shard was unregistered (inactive): route it here now, as the
        # chapter's tenant migration does.
        conn.execute(
            "UPDATE tenant_shard_map SET shard_id = %s, region_code = %s WHERE tenant_id = %s",
            (shard_id, region, tenant_id),
        )
        if kind == "sharded":
            conn.execute(
                "UPDATE tenants SET shard_id = %s, region_code = %s WHERE id = %s",
                (shard_id, region, tenant_id),
            )


def ensure_current(conn: psycopg.Connection) -> None:
    """Apply the migrations a registry made by an older gbdesk lacks (one query when current).

    Raises:
        ShardError: a migration failed.
    """
    if set(applied_versions(conn)) < {migration.version for migration in MIGRATIONS}:
        migrate(conn)


def _registry_exists(conn: psycopg.Connection) -> bool:
    """Whether gbdesk's own tables are in this database (the first registration makes them)."""
    row = conn.execute("SELECT to_regclass('gbdesk_nodes')").fetchone()
    return row is not None and row[0] is not None


def status(
    conn: psycopg.Connection, node_id: str, *, paths: AppPaths | None = None
) -> Registration | None:
    """This node's registration, or None when it is not registered here."""
    if not _registry_exists(conn):
        return None
    ensure_current(conn)
    from psycopg.rows import dict_row

    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT n.node_id::text AS node_id, n.shard_id, n.host_name, s.region_code,
                      s.datacenter, s.is_primary, s.is_active, s.min_tenant_id,
                      s.max_tenant_id, s.connection_string, n.llm_url, n.llm_model,
                      n.gbdesk_version, n.registered_at, n.last_seen_at, n.llm_url_reachable
               FROM gbdesk_nodes n JOIN shard_config s USING (shard_id)
               WHERE n.node_id = %s""",
            (node_id,),
        )
        .fetchone()
    )
    if row is None:
        return None
    try:
        plain = crypto.decrypt(row["connection_string"], paths=paths)
        _, password = parse(plain)
        connection = mask(plain, password)
    except (ShardError, InvalidShardOptionError):
        connection = "(encrypted with a key this machine does not have)"
    kind = tenants_table_kind(conn)
    if kind == "sharded":
        tenant_rows = conn.execute(
            """SELECT m.tenant_id, t.slug, t.name, t.external_id::text
               FROM tenant_shard_map m LEFT JOIN tenants t ON t.id = m.tenant_id
               WHERE m.shard_id = %s ORDER BY m.tenant_id""",
            (row["shard_id"],),
        ).fetchall()
    else:
        tenant_rows = conn.execute(
            """SELECT m.tenant_id, g.slug, t.name, t.id::text
               FROM tenant_shard_map m LEFT JOIN gbdesk_tenant_ids g ON g.tenant_id = m.tenant_id
               LEFT JOIN tenants t ON t.slug = g.slug
               WHERE m.shard_id = %s ORDER BY m.tenant_id""",
            (row["shard_id"],),
        ).fetchall()
    tenants = tuple(
        {"tenant_id": int(t[0]), "slug": t[1], "name": t[2], "uuid": t[3]} for t in tenant_rows
    )
    return Registration(
        node_id=row["node_id"],
        shard_id=int(row["shard_id"]),
        host_name=row["host_name"],
        region_code=row["region_code"].strip(),
        datacenter=row["datacenter"],
        is_primary=bool(row["is_primary"]),
        is_active=bool(row["is_active"]),
        min_tenant_id=int(row["min_tenant_id"]),
        max_tenant_id=int(row["max_tenant_id"]),
        connection=connection,
        llm_url=row["llm_url"],
        llm_model=row["llm_model"],
        gbdesk_version=row["gbdesk_version"],
        registered_at=row["registered_at"],
        last_seen_at=row["last_seen_at"],
        tenants=tenants,
        tenants_table=kind,
        schema_versions=tuple(applied_versions(conn)),
        llm_url_reachable=bool(row["llm_url_reachable"]),
    )


def unregister(conn: psycopg.Connection, node_id: str) -> int:
    """Remove this node and deactivate its shard; returns the shard id it had.

    The ``shard_config`` row and its ``tenant_shard_map`` rows stay (tenant data may still
    live there), marked inactive, so the tenant range is free for another shard and
    registering again reactivates it.

    Raises:
        NotRegisteredError: this node has no registration in this database.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (REGISTRY_LOCK_KEY,))
        row = None
        if _registry_exists(conn):
            row = conn.execute(
                "DELETE FROM gbdesk_nodes WHERE node_id = %s RETURNING shard_id", (node_id,)
            ).fetchone()
        if row is None:
            raise NotRegisteredError(
                f"node {node_id} is not registered in this database",
                fix="check --database-url; `gbdesk shard status` shows where it is registered",
            )
        conn.execute("UPDATE shard_config SET is_active = false WHERE shard_id = %s", (row[0],))
    return int(row[0])


def touch(conn: psycopg.Connection, node_id: str, capacity: NodeCapacity | None = None) -> datetime:
    """Set this node's ``last_seen_at`` to now and return it (the heartbeat); with
    ``capacity``, what the node offers now is recorded in the same transaction.

    Raises:
        NotRegisteredError: the node's row is gone (unregistered elsewhere).
    """
    row = None
    if _registry_exists(conn):
        ensure_current(conn)  # a node beating into a registry made by an older gbdesk
        with conn.transaction():
            row = conn.execute(
                "UPDATE gbdesk_nodes SET last_seen_at = NOW() WHERE node_id = %s"
                " RETURNING last_seen_at",
                (node_id,),
            ).fetchone()
            if row is not None and capacity is not None:
                _write_capacity(conn, node_id, capacity)
    if row is None:
        raise NotRegisteredError(
            f"node {node_id} is not registered in this database",
            fix="run `gbdesk shard register`",
        )
    return row[0]
