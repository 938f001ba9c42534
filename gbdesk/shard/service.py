"""The shard steps as the CLI, the GUI and `gbdesk serve` use them: pick the database, start the
embedded server when needed, register / read / remove this node, start its heartbeat.

Each function reports what it is doing through an optional ``on_step(text)`` callback (the GUI
shows it) and returns plain frozen values.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gbdesk.shard import local
from gbdesk.shard.capacity import NodeCapacity
from gbdesk.shard.connection import connect, database_errors, parse
from gbdesk.shard.errors import InvalidShardOptionError, NotRegisteredError
from gbdesk.shard.fleet import FleetNode, TenantRoute
from gbdesk.shard.heartbeat import DEFAULT_INTERVAL_S, Heartbeat
from gbdesk.shard.registry import Registration, ShardOptions

Step = Callable[[str], None]


def _noop(_: str) -> None:
    return None


@dataclass(frozen=True)
class RegisterResult:
    registration: Registration
    created: bool  # False: the node was registered already and was refreshed
    embedded: bool  # the registry is gbdesk's embedded PostgreSQL
    env_file: str  # the botserver .env written, "" when none


def register_this_node(
    options: ShardOptions,
    *,
    database_url: str | None = None,
    env_file: str | None = None,
    hardware_profile: dict | None = None,
    on_step: Step | None = None,
    capacity: Callable[[str], NodeCapacity] | None = None,
    advertise_host: str | None = None,
) -> RegisterResult:
    """Register (or refresh) this machine as a single-node shard.

    Args:
        options: the requested shard (unset fields: registered values, else defaults).
        database_url: another PostgreSQL; None: the setting, the last one used, or embedded.
        env_file: botserver's .env to receive SHARD_ID and DATABASE_URL; None: the last one.
        hardware_profile: this machine's profile as JSON when the caller has probed already.
        on_step: told each step in plain words.
        capacity: measures what the node offers now, given the advertise host to use (the
            app layer's :func:`gbdesk.app.fleet.this_node_capacity`); None records the
            reachable URL only.
        advertise_host: the address other machines reach this one at (remembered; "" forgets
            it and finds it from the network again); None: the remembered one.

    Raises:
        InvalidShardOptionError: an option or the URL is invalid (nothing was started).
        DatabaseUnavailableError: the database cannot be reached (nothing was written).
        ShardConflictError: shard, tenant range or tenant taken (nothing was written).
        EmbeddedPostgresError: the embedded server could not be created or started.
        ShardError: the registration failed and was rolled back.
        ConfigError: the .env file could not be written (the registration stands).
    """
    from gbdesk.botserver import update_env_file
    from gbdesk.settings import load_settings
    from gbdesk.shard.registry import register

    step = on_step or _noop
    options = options.validated()
    if database_url:
        parse(database_url)  # a malformed URL fails here, before anything starts
    advertise = validate_advertise_host(advertise_host) if advertise_host is not None else None
    settings = load_settings()
    choice = local.choose_database(database_url, settings.database_url)
    state = local.load_state()
    if advertise is None:
        advertise = state.advertise_host if state else ""
    step("probing this machine")
    node = local.describe_node(
        state.node_id if state else local.node_id(),
        settings_host=settings.backend_host,
        settings_port=settings.backend_port,
        model=settings.model,
        hardware_profile=(lambda: hardware_profile) if hardware_profile is not None else None,
        advertise_host=advertise,
        capacity=capacity(advertise) if capacity is not None else None,
    )
    target_env = env_file or (state.env_file if state else "")
    if choice.embedded:
        step("starting the embedded PostgreSQL")
    with local.database_url(choice, keep_embedded_running=True) as url:
        step(f"registering in {parse(url)[0]}")
        with database_errors(url, "registering"), connect(url) as conn:
            registration, created = register(conn, node, options, connection_string=url)
        # Remember the node id at once: a failure below must not make the next run a stranger.
        local.save_state(
            local.updated_state(
                node_id=node.node_id,
                database_url="" if choice.embedded else local.remember_database(url),
                env_file=str(target_env),
                shard_id=registration.shard_id,
                advertise_host=advertise,
            )
        )
        if target_env:
            step(f"writing SHARD_ID and DATABASE_URL to {target_env}")
            update_env_file(
                target_env, {"SHARD_ID": str(registration.shard_id), "DATABASE_URL": url}
            )
    return RegisterResult(registration, created, choice.embedded, str(target_env))


def _registered_state(database_url: str | None) -> tuple[local.LocalState, local.DatabaseChoice]:
    from gbdesk.settings import load_settings

    state = local.load_state()
    if state is None or state.shard_id is None:
        raise NotRegisteredError("this node is not registered", fix="run `gbdesk shard register`")
    return state, local.choose_database(database_url, load_settings().database_url)


def this_node_status(database_url: str | None = None) -> tuple[Registration | None, bool]:
    """(this node's registration or None when the database no longer has it, embedded?).

    The embedded server is started if needed and stopped again if this call started it.

    Raises:
        NotRegisteredError: this machine never registered (or unregistered).
        DatabaseUnavailableError, EmbeddedPostgresError, ShardError: as for registration.
    """
    from gbdesk.shard.registry import status

    state, choice = _registered_state(database_url)
    with (
        local.database_url(choice, keep_embedded_running=False) as url,
        database_errors(url, "reading the registration"),
        connect(url) as conn,
    ):
        return status(conn, state.node_id), choice.embedded


def unregister_this_node(database_url: str | None = None) -> tuple[str, int]:
    """Remove this node from the registry; returns (node id, the shard it had).

    Raises:
        NotRegisteredError: not registered here.
        DatabaseUnavailableError, EmbeddedPostgresError, ShardError: as for registration.
    """
    from gbdesk.shard.registry import unregister

    state, choice = _registered_state(database_url)
    with (
        local.database_url(choice, keep_embedded_running=False) as url,
        database_errors(url, "unregistering"),
        connect(url) as conn,
    ):
        shard_id = unregister(conn, state.node_id)
    local.save_state(local.updated_state(shard_id=None))
    return state.node_id, shard_id


def beat_once(database_url: str | None = None, *, capacity: NodeCapacity | None = None) -> datetime:
    """Update this node's last_seen_at (and, with ``capacity``, what it offers) now; returns
    it. Starts the embedded server on demand.

    Raises:
        NotRegisteredError, DatabaseUnavailableError, EmbeddedPostgresError, ShardError.
    """
    state, choice = _registered_state(database_url)
    with local.database_url(choice, keep_embedded_running=False) as url:
        beat = Heartbeat(url, state.node_id, capacity=lambda: capacity)
        try:
            return beat.beat_once()
        finally:
            beat.stop()


def heartbeat_for_this_node(
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    on_beat: Callable | None = None,
    on_error: Callable | None = None,
    database_url: str | None = None,
    capacity: Callable[[], NodeCapacity | None] | None = None,
) -> Heartbeat:
    """A (not yet started) heartbeat for this node. For the embedded registry, the server must
    be running (`gbdesk shard register` leaves it running; `EmbeddedPostgres().start()`).

    Raises:
        NotRegisteredError: this machine is not registered.
        EmbeddedPostgresError: the embedded registry was never created.
    """
    state, choice = _registered_state(database_url)
    if choice.embedded:
        from gbdesk.shard.embedded import EmbeddedPostgres

        url = EmbeddedPostgres().url()
    else:
        url = choice.url
    return Heartbeat(
        url,
        state.node_id,
        interval_s=interval_s,
        on_beat=on_beat,
        on_error=on_error,
        capacity=capacity,
    )


def keep_beating(
    stop: threading.Event,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    database_url: str | None = None,
    capacity: Callable[[], NodeCapacity | None] | None = None,
    on_beat: Callable | None = None,
    on_error: Callable | None = None,
) -> None:
    """Beat until ``stop`` is set (`gbdesk shard heartbeat --keep-beating`). The embedded
    server is started if needed and stopped again at the end if this call started it.

    Raises:
        NotRegisteredError: this machine is not registered.
        EmbeddedPostgresError: the embedded registry cannot be started.
    """
    state, choice = _registered_state(database_url)
    with local.database_url(choice, keep_embedded_running=False) as url:
        heartbeat = Heartbeat(
            url,
            state.node_id,
            interval_s=interval_s,
            on_beat=on_beat,
            on_error=on_error,
            capacity=capacity,
        )
        heartbeat.start()
        try:
            stop.wait()
        finally:
            heartbeat.stop()


def advertise_host() -> str:
    """The address other machines reach this node at, as the operator chose it ("" = found
    from the network)."""
    state = local.load_state()
    return state.advertise_host if state else ""


def validate_advertise_host(host: str) -> str:
    """``host`` stripped; "" stays "" (find the address from the network).

    Raises:
        InvalidShardOptionError: not a host name or an IP address.
    """
    import ipaddress
    import re

    text = host.strip().strip("[]")
    if not text:
        return ""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        if address.is_unspecified or address.is_multicast:
            raise InvalidShardOptionError(
                f"{text} is not an address other machines can connect to",
                fix="pass this machine's own address, e.g. --advertise-host 192.168.1.20",
            )
        return text
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", text):
        raise InvalidShardOptionError(
            f"{host!r} is not a host name or an IP address",
            fix="pass the address other machines reach this one at, e.g. --advertise-host "
            "192.168.1.20",
        )
    return text


@dataclass(frozen=True)
class FleetResult:
    nodes: tuple[FleetNode, ...]
    this_node_id: str | None  # None: this machine never registered
    embedded: bool


def fleet(database_url: str | None = None) -> FleetResult:
    """Every node of the registry. The embedded server is started if needed and stopped again
    if this call started it; one that was never created is not created for this (no nodes).

    Raises:
        DatabaseUnavailableError, EmbeddedPostgresError, ShardError.
    """
    from gbdesk.settings import load_settings
    from gbdesk.shard.fleet import list_fleet

    state = local.load_state()
    choice = local.choose_database(database_url, load_settings().database_url)
    if choice.embedded:
        from gbdesk.shard.embedded import EmbeddedPostgres

        if not EmbeddedPostgres().is_initialised():  # never created: no node, nothing to make
            return FleetResult((), state.node_id if state else None, True)
    with (
        local.database_url(choice, keep_embedded_running=False) as url,
        database_errors(url, "reading the fleet"),
        connect(url) as conn,
    ):
        nodes = list_fleet(conn)
    return FleetResult(nodes, state.node_id if state else None, choice.embedded)


def route_tenant(slug: str, database_url: str | None = None) -> TenantRoute:
    """The live node that serves tenant ``slug``, reachable from this machine.

    Raises:
        InvalidShardOptionError: not a valid slug.
        UnknownTenantError, NoLiveNodeError, NodeNotReachableError: see
            :func:`gbdesk.shard.fleet.route_tenant`.
        DatabaseUnavailableError, EmbeddedPostgresError, ShardError.
    """
    from gbdesk.settings import load_settings
    from gbdesk.shard import fleet as fleet_queries

    state = local.load_state()
    choice = local.choose_database(database_url, load_settings().database_url)
    if choice.embedded:
        from gbdesk.shard.embedded import EmbeddedPostgres
        from gbdesk.shard.errors import UnknownTenantError

        if not EmbeddedPostgres().is_initialised():
            raise UnknownTenantError(
                f"tenant {slug!r} is unknown: no node ever registered on this machine, and no "
                "registry database is configured",
                fix="pass --database-url with the registry's PostgreSQL (or set database_url)",
            )
    with (
        local.database_url(choice, keep_embedded_running=False) as url,
        database_errors(url, "routing the tenant"),
        connect(url) as conn,
    ):
        return fleet_queries.route_tenant(
            conn, slug, caller_node_id=state.node_id if state else None
        )
