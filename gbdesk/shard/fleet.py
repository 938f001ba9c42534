"""The fleet: every node of the registry with what it offers, and routing a tenant to its node.

Routing follows the chapter's own mapping, without a proxy: the tenant's slug gives its id,
``tenant_shard_map`` its shard, ``gbdesk_nodes`` the node that serves that shard. Whether a node
is stale is decided by the database's clock (``NOW() - last_seen_at``), so machines whose clocks
disagree still agree on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gbdesk.shard.errors import (
    InvalidShardOptionError,
    NodeNotReachableError,
    NoLiveNodeError,
    UnknownTenantError,
)
from gbdesk.shard.heartbeat import STALE_AFTER_S
from gbdesk.shard.registry import _SLUG, _registry_exists, ensure_current, tenants_table_kind

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class FleetNode:
    """One node of the registry as the fleet sees it."""

    node_id: str
    host_name: str
    shard_id: int
    region_code: str
    datacenter: str
    shard_active: bool
    llm_url: str
    llm_url_reachable: bool  # False: the URL works on the node's own machine only
    llm_model: str
    embedding_url: str
    embedding_model: str
    embedding_dimensions: int | None
    tokens_per_second: float | None
    slots: int | None
    context_tokens: int | None
    worker_endpoint: str | None
    worker_free_bytes: int | None
    worker_total_bytes: int | None
    gbdesk_version: str
    registered_at: datetime
    last_seen_at: datetime
    seen_ago_s: float  # by the database's clock
    stale: bool
    tenants: tuple[str, ...] = ()  # slugs mapped to its shard

    @property
    def state(self) -> str:
        """``live`` or ``stale`` (silent for longer than the limit)."""
        return "stale" if self.stale else "live"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["registered_at"] = self.registered_at.isoformat()
        data["last_seen_at"] = self.last_seen_at.isoformat()
        data["tenants"] = list(self.tenants)
        data["state"] = self.state
        return data


@dataclass(frozen=True)
class TenantRoute:
    """Where a tenant's bots should send their LLM requests."""

    slug: str
    tenant_id: int
    shard_id: int
    node: FleetNode


_NODE_SELECT = """
    SELECT n.node_id::text AS node_id, n.host_name, n.shard_id, s.region_code, s.datacenter,
           COALESCE(s.is_active, true) AS shard_active, n.llm_url, n.llm_url_reachable,
           n.llm_model, n.embedding_url, n.embedding_model, n.embedding_dimensions,
           n.tokens_per_second, n.slots, n.context_tokens, n.worker_endpoint,
           n.worker_free_bytes, n.worker_total_bytes, n.gbdesk_version, n.registered_at,
           n.last_seen_at,
           GREATEST(EXTRACT(EPOCH FROM NOW() - n.last_seen_at), 0)::float8 AS seen_ago_s,
           NOW() - n.last_seen_at > make_interval(secs => %s) AS stale
    FROM gbdesk_nodes n JOIN shard_config s USING (shard_id)
"""


def _tenant_slugs_sql(kind: str) -> str:
    """(shard_id, slug) of every mapped tenant, for either kind of tenants table."""
    if kind == "sharded":
        return """SELECT m.shard_id, t.slug FROM tenant_shard_map m
                  JOIN tenants t ON t.id = m.tenant_id"""
    return """SELECT m.shard_id, g.slug FROM tenant_shard_map m
              JOIN gbdesk_tenant_ids g ON g.tenant_id = m.tenant_id"""


def _node(row: dict[str, Any], tenants: tuple[str, ...] = ()) -> FleetNode:
    def optional_int(name: str) -> int | None:
        return int(row[name]) if row[name] is not None else None

    speed = row["tokens_per_second"]
    return FleetNode(
        node_id=row["node_id"],
        host_name=row["host_name"],
        shard_id=int(row["shard_id"]),
        region_code=row["region_code"].strip(),
        datacenter=row["datacenter"],
        shard_active=bool(row["shard_active"]),
        llm_url=row["llm_url"],
        llm_url_reachable=bool(row["llm_url_reachable"]),
        llm_model=row["llm_model"],
        embedding_url=row["embedding_url"],
        embedding_model=row["embedding_model"],
        embedding_dimensions=optional_int("embedding_dimensions"),
        tokens_per_second=float(speed) if speed is not None else None,
        slots=optional_int("slots"),
        context_tokens=optional_int("context_tokens"),
        worker_endpoint=row["worker_endpoint"],
        worker_free_bytes=optional_int("worker_free_bytes"),
        worker_total_bytes=optional_int("worker_total_bytes"),
        gbdesk_version=row["gbdesk_version"],
        registered_at=row["registered_at"],
        last_seen_at=row["last_seen_at"],
        seen_ago_s=float(row["seen_ago_s"]),
        stale=bool(row["stale"]),
        tenants=tenants,
    )


def list_fleet(
    conn: psycopg.Connection, *, stale_after_s: float = STALE_AFTER_S
) -> tuple[FleetNode, ...]:
    """Every node of the registry, by shard id (empty when nothing was ever registered here).

    Raises:
        ShardError: the registry's schema could not be brought up to date.
    """
    if not _registry_exists(conn):
        return ()
    from psycopg.rows import dict_row

    ensure_current(conn)
    slugs: dict[int, list[str]] = {}
    for shard_id, slug in conn.execute(
        _tenant_slugs_sql(tenants_table_kind(conn)) + " ORDER BY m.tenant_id"
    ).fetchall():
        slugs.setdefault(int(shard_id), []).append(slug)
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(_NODE_SELECT + " ORDER BY n.shard_id", (stale_after_s,))
        .fetchall()
    )
    return tuple(_node(row, tuple(slugs.get(int(row["shard_id"]), ()))) for row in rows)


def route_tenant(
    conn: psycopg.Connection,
    slug: str,
    *,
    caller_node_id: str | None = None,
    stale_after_s: float = STALE_AFTER_S,
) -> TenantRoute:
    """The node serving tenant ``slug``: tenant_shard_map → shard_config → gbdesk_nodes.

    Args:
        caller_node_id: this machine's node id; a node whose URL works on its own machine only
            is refused unless it is this machine.

    Raises:
        InvalidShardOptionError: ``slug`` is not a valid tenant slug.
        UnknownTenantError: no tenant with that slug is mapped to a shard.
        NoLiveNodeError: its shard is inactive or has no node, or the node is stale.
        NodeNotReachableError: the node serves on its own machine only and that is not this one.
    """
    if not _SLUG.match(slug):
        raise InvalidShardOptionError(
            f"tenant slug {slug!r} must be lower-case letters, digits, '-' or '_'",
            fix="for example --tenant default (`gbdesk fleet` lists each node's tenants)",
        )
    if not _registry_exists(conn):
        raise UnknownTenantError(
            f"tenant {slug!r} is unknown: no gbdesk node was ever registered in this database",
            fix="register the tenant's node with `gbdesk shard register --tenant "
            f"{slug}`, or pass the registry's --database-url",
        )
    from psycopg.rows import dict_row

    ensure_current(conn)
    kind = tenants_table_kind(conn)
    ids = (
        "SELECT id FROM tenants" if kind == "sharded" else "SELECT tenant_id FROM gbdesk_tenant_ids"
    )
    mapped = conn.execute(
        f"""SELECT m.tenant_id, m.shard_id, COALESCE(s.is_active, true)
            FROM tenant_shard_map m JOIN shard_config s USING (shard_id)
            WHERE m.tenant_id IN ({ids} WHERE slug = %s)""",
        (slug,),
    ).fetchone()
    if mapped is None:
        known = sorted({row[1] for row in conn.execute(_tenant_slugs_sql(kind)).fetchall()})
        listed = ", ".join(known[:10]) + (" …" if len(known) > 10 else "")
        raise UnknownTenantError(
            f"tenant {slug!r} is not mapped to any shard"
            + (f" (tenants here: {listed})" if known else " (no tenant is mapped here)"),
            fix="check the slug, or map it with `gbdesk shard register --tenant SLUG` on the node "
            "that should serve it",
        )
    tenant_id, shard_id, active = int(mapped[0]), int(mapped[1]), bool(mapped[2])
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(_NODE_SELECT + " WHERE n.shard_id = %s", (stale_after_s, shard_id))
        .fetchone()
    )
    if row is None or not active:
        raise NoLiveNodeError(
            f"tenant {slug!r} is mapped to shard {shard_id}, which has no node"
            + ("" if active else " (the shard is inactive: its node unregistered)"),
            fix=f"register a node as shard {shard_id} (`gbdesk shard register --shard-id "
            f"{shard_id}` on it), or move the tenant to a shard that has one",
        )
    node = _node(row)
    if node.stale:
        raise NoLiveNodeError(
            f"tenant {slug!r} is served by node {node.host_name} (shard {shard_id}), which has "
            f"been silent for {duration_words(node.seen_ago_s)} (a node is stale after "
            f"{duration_words(stale_after_s)} without a heartbeat)",
            fix=f"start gbdesk's backend on {node.host_name} (its heartbeat runs while it serves),"
            " then try again",
        )
    if not node.llm_url_reachable and node.node_id != caller_node_id:
        raise NodeNotReachableError(
            f"tenant {slug!r} is served by node {node.host_name} (shard {shard_id}), whose "
            f"backend listens on that machine only ({node.llm_url})",
            fix=f"on {node.host_name}, let other machines in: set the backend's address to "
            "0.0.0.0 (with an API key) and restart it, or run this command on that machine",
        )
    return TenantRoute(slug=slug, tenant_id=tenant_id, shard_id=shard_id, node=node)


def duration_words(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h``, ``2 days``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
