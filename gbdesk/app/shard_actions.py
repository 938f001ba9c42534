"""The Node page's and the wizard's shard steps: gbdesk.shard.service, shaped for the pages.

Each function runs in a worker. They take the GUI's settings so that the pages do not need to
know how the service chooses its database (a URL, the setting, or the embedded PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime

from gbdesk.settings import Settings
from gbdesk.shard.service import RegisterResult as ShardResult

__all__ = [
    "ShardResult",
    "heartbeat",
    "register_this_node",
    "registration_status",
    "unregister_this_node",
]


def register_this_node(
    settings: Settings,
    *,
    database_url: str = "",
    shard_id: int | None = None,
    region: str | None = None,
    datacenter: str | None = None,
    env_file: str = "",
    hardware_profile: dict | None = None,
    api_key: str | None = None,
) -> ShardResult:
    """Register (or refresh) this node with what it offers now (:mod:`gbdesk.app.fleet`);
    ``database_url`` empty means the configured database; ``api_key``: the backend's key.

    Raises:
        InvalidShardOptionError: an option is out of range.
        DatabaseUnavailableError: the database cannot be reached.
        ShardError, EmbeddedPostgresError: registration or the embedded server failed.
    """
    from gbdesk.app.fleet import register_capacity
    from gbdesk.shard import service
    from gbdesk.shard.registry import ShardOptions

    return service.register_this_node(
        ShardOptions(shard_id=shard_id, region=region, datacenter=datacenter),
        database_url=database_url or settings.database_url or None,
        env_file=env_file or None,
        hardware_profile=hardware_profile,
        capacity=register_capacity(settings, api_key),
    )


def registration_status(settings: Settings) -> ShardResult | None:
    """This node's registration as the database has it, or None when it is not registered.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
        ShardError: reading the registry failed.
    """
    from gbdesk.shard import local, service
    from gbdesk.shard.errors import NotRegisteredError

    try:
        registration, embedded = service.this_node_status(settings.database_url or None)
    except NotRegisteredError:
        return None
    if registration is None:
        return None
    state = local.load_state()
    return ShardResult(registration, False, embedded, state.env_file if state else "")


def heartbeat(settings: Settings, api_key: str | None = None) -> datetime:
    """Update this node's last-seen time and what it offers (model, slots, speed, worker) once;
    ``api_key``: the backend's key, to ask it what it serves.

    Raises:
        NotRegisteredError: the node never registered.
        DatabaseUnavailableError, ShardError: the database cannot be reached or updated.
    """
    from gbdesk.app.fleet import this_node_capacity
    from gbdesk.shard import service

    return service.beat_once(
        settings.database_url or None, capacity=this_node_capacity(settings, api_key=api_key)
    )


def unregister_this_node(settings: Settings) -> int:
    """Remove this node from the registry; returns the shard id it had.

    Raises:
        NotRegisteredError: the node never registered.
        DatabaseUnavailableError, ShardError: the database cannot be reached or updated.
    """
    from gbdesk.shard import service

    return service.unregister_this_node(settings.database_url or None)[1]
