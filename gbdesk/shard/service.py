"""The shard steps as the CLI, the GUI and `gbdesk serve` use them: pick the database, start the
embedded server when needed, register / read / remove this node, start its heartbeat.

Each function reports what it is doing through an optional ``on_step(text)`` callback (the GUI
shows it) and returns plain frozen values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gbdesk.shard import local
from gbdesk.shard.connection import connect, database_errors, parse
from gbdesk.shard.errors import NotRegisteredError
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
) -> RegisterResult:
    """Register (or refresh) this machine as a single-node shard.

    Args:
        options: the requested shard (unset fields: registered values, else defaults).
        database_url: another PostgreSQL; None: the setting, the last one used, or embedded.
        env_file: botserver's .env to receive SHARD_ID and DATABASE_URL; None: the last one.
        hardware_profile: this machine's profile as JSON when the caller has probed already.
        on_step: told each step in plain words.

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
    settings = load_settings()
    choice = local.choose_database(database_url, settings.database_url)
    state = local.load_state()
    step("probing this machine")
    node = local.describe_node(
        state.node_id if state else local.node_id(),
        settings_host=settings.backend_host,
        settings_port=settings.backend_port,
        model=settings.model,
        hardware_profile=(lambda: hardware_profile) if hardware_profile is not None else None,
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


def beat_once(database_url: str | None = None, *, llm_model: str | None = None) -> datetime:
    """Update this node's last_seen_at now; returns it. Starts the embedded server on demand.

    Raises:
        NotRegisteredError, DatabaseUnavailableError, EmbeddedPostgresError, ShardError.
    """
    state, choice = _registered_state(database_url)
    with local.database_url(choice, keep_embedded_running=False) as url:
        beat = Heartbeat(url, state.node_id, llm_model=lambda: llm_model)
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
    llm_model: Callable[[], str | None] | None = None,
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
        llm_model=llm_model,
    )
