"""The Node page's and the wizard's shard steps, as plain functions run in workers.

They compose gbdesk.shard's public pieces the same way ``gbdesk shard register`` does: choose the
database (a URL, else the embedded PostgreSQL), describe this node, register, remember where.
The embedded PostgreSQL is left running after registration because botserver uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gbdesk.settings import Settings


@dataclass(frozen=True)
class ShardResult:
    """A registration as the GUI shows it."""

    registration: Any  # gbdesk.shard.registry.Registration
    created: bool
    embedded: bool
    env_file: str = ""


def register_this_node(
    settings: Settings,
    *,
    database_url: str = "",
    shard_id: int | None = None,
    region: str | None = None,
    datacenter: str | None = None,
    env_file: str = "",
    hardware_profile: dict | None = None,
) -> ShardResult:
    """Register (or refresh) this node; ``database_url`` empty means the embedded PostgreSQL.

    Raises:
        InvalidShardOptionError: an option is out of range.
        DatabaseUnavailableError: the database cannot be reached.
        ShardError, EmbeddedPostgresError: registration or the embedded server failed.
    """
    from gbdesk.botserver import update_env_file
    from gbdesk.shard import local
    from gbdesk.shard.connection import connect, parse
    from gbdesk.shard.registry import ShardOptions, register

    options = ShardOptions(shard_id=shard_id, region=region, datacenter=datacenter).validated()
    if database_url:
        parse(database_url)  # a malformed URL fails before anything starts
    choice = local.choose_database(database_url or None, settings.database_url)
    state = local.load_state()
    node = local.describe_node(
        state.node_id if state else local.node_id(),
        settings_host=settings.backend_host,
        settings_port=settings.backend_port,
        model=settings.model,
        hardware_profile=(lambda: hardware_profile) if hardware_profile is not None else None,
    )
    with local.database_url(choice, keep_embedded_running=True) as url:
        with connect(url) as conn:
            registration, created = register(conn, node, options, connection_string=url)
        if env_file:
            update_env_file(env_file, {"SHARD_ID": str(registration.shard_id), "DATABASE_URL": url})
        remembered = "" if choice.embedded else local.remember_database(url)
    local.save_state(
        local.updated_state(
            node_id=node.node_id,
            database_url=remembered,
            env_file=env_file or (state.env_file if state else ""),
            shard_id=registration.shard_id,
        )
    )
    return ShardResult(registration, created, choice.embedded, env_file)


def registration_status(settings: Settings) -> ShardResult | None:
    """This node's registration as the database has it, or None when it never registered.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
        ShardError: reading the registry failed.
    """
    from gbdesk.shard import local
    from gbdesk.shard.connection import connect
    from gbdesk.shard.registry import status

    state = local.load_state()
    if state is None or state.shard_id is None:
        return None
    choice = local.choose_database(None, settings.database_url)
    with local.database_url(choice, keep_embedded_running=True) as url, connect(url) as conn:
        registration = status(conn, state.node_id)
    if registration is None:
        return None
    return ShardResult(registration, False, choice.embedded, state.env_file)


def heartbeat(settings: Settings) -> datetime:
    """Update this node's last-seen time once.

    Raises:
        NotRegisteredError: the node never registered.
        DatabaseUnavailableError, ShardError: the database cannot be reached or updated.
    """
    from gbdesk.shard import local
    from gbdesk.shard.errors import NotRegisteredError
    from gbdesk.shard.heartbeat import Heartbeat

    state = local.load_state()
    if state is None or state.shard_id is None:
        raise NotRegisteredError("this node is not registered", fix="register it on this page")
    choice = local.choose_database(None, settings.database_url)
    with local.database_url(choice, keep_embedded_running=True) as url:
        beat = Heartbeat(url, state.node_id)
        try:
            return beat.beat_once()
        finally:
            beat.stop()


def unregister_this_node(settings: Settings) -> int:
    """Remove this node from the registry; returns the shard id it had.

    Raises:
        NotRegisteredError: the node never registered.
        DatabaseUnavailableError, ShardError: the database cannot be reached or updated.
    """
    from gbdesk.shard import local
    from gbdesk.shard.connection import connect
    from gbdesk.shard.errors import NotRegisteredError
    from gbdesk.shard.registry import unregister

    state = local.load_state()
    if state is None or state.shard_id is None:
        raise NotRegisteredError("this node is not registered")
    choice = local.choose_database(None, settings.database_url)
    with local.database_url(choice, keep_embedded_running=True) as url, connect(url) as conn:
        shard_id = unregister(conn, state.node_id)
    local.save_state(local.updated_state(shard_id=None))
    return shard_id
