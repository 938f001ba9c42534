"""This machine's side of the registration: its node id, where it registered, how to reach it.

``shard.json`` in the config folder holds the node id (a UUID made once), the database the node
registered in (its URL without password; empty for the embedded PostgreSQL), the botserver
``.env`` file last written and the address other machines reach this one at when the operator
chose it (``--advertise-host``; empty: found by :mod:`gbdesk.hardware.address`). Passwords of
other databases go to :mod:`gbdesk.secrets`, keyed by ``user@host:port/database``.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from gbdesk.atomic import write_json_atomic
from gbdesk.errors import ConfigError
from gbdesk.hardware.address import advertised_host
from gbdesk.paths import AppPaths, app_paths
from gbdesk.secrets import get_secret, set_secret
from gbdesk.shard.capacity import NodeCapacity
from gbdesk.shard.connection import parse, strip_password, with_password
from gbdesk.shard.registry import NodeDescription


@dataclass(frozen=True)
class LocalState:
    node_id: str
    database_url: str = ""  # without password; "" = the embedded PostgreSQL
    env_file: str = ""
    shard_id: int | None = None
    advertise_host: str = ""  # the operator's choice; "" = found from the network


def _state_file(paths: AppPaths) -> Path:
    return paths.config_dir / "shard.json"


def load_state(paths: AppPaths | None = None) -> LocalState | None:
    """The stored state, or None before the first registration.

    Raises:
        ConfigError: the file is damaged.
    """
    path = _state_file(paths or app_paths())
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LocalState(
            node_id=str(uuid.UUID(str(data["node_id"]))),
            database_url=str(data.get("database_url", "")),
            env_file=str(data.get("env_file", "")),
            shard_id=data.get("shard_id"),
            advertise_host=str(data.get("advertise_host", "")),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc}",
            fix="fix the JSON, or delete it (the node then gets a new node id)",
        ) from None


def save_state(state: LocalState, paths: AppPaths | None = None) -> None:
    """Write ``shard.json`` atomically."""
    paths = (paths or app_paths()).ensure()
    write_json_atomic(_state_file(paths), asdict(state))


def node_id(paths: AppPaths | None = None) -> str:
    """This node's id; a new UUID when none was stored yet (not saved until registration)."""
    state = load_state(paths)
    return state.node_id if state else str(uuid.uuid4())


def updated_state(paths: AppPaths | None = None, **changes: object) -> LocalState:
    state = load_state(paths) or LocalState(node_id=str(uuid.uuid4()))
    return replace(state, **changes)  # type: ignore[arg-type]


def _password_secret(url: str) -> str:
    return f"database-password:{parse(url)[0]}"


def remember_database(url: str, paths: AppPaths | None = None) -> str:
    """Keep ``url``'s password in the secrets store; return the URL without it."""
    _, password = parse(url)
    bare = strip_password(url)
    if password:
        set_secret(_password_secret(bare), password, paths=paths)
    return bare


def with_stored_password(url: str, paths: AppPaths | None = None) -> str:
    """``url`` with the password remembered for it, when it has none of its own."""
    _, password = parse(url)
    if password:
        return url
    stored = get_secret(_password_secret(url), paths=paths)
    return with_password(url, stored) if stored else url


# Readings that change from one probe to the next; the registry keeps what the machine *is*, so
# that registering again with the same hardware changes nothing but last_seen_at.
_VOLATILE_KEYS = frozenset(
    {
        "available_bytes",
        "swap_free_bytes",
        "free_bytes",
        "free_memory_bytes",
        "used_memory_bytes",
        "diagnostics",
    }
)


def stable_profile(value: object) -> object:
    """The hardware profile JSON without its momentary readings (free memory, free disk)."""
    if isinstance(value, dict):
        return {k: stable_profile(v) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [stable_profile(v) for v in value]
    return value


@dataclass(frozen=True)
class DatabaseChoice:
    """Which PostgreSQL the registry lives in."""

    url: str  # "" for the embedded PostgreSQL
    origin: str  # "--database-url", "settings", "registration" or "embedded"

    @property
    def embedded(self) -> bool:
        return not self.url


def choose_database(
    flag: str | None, settings_url: str, paths: AppPaths | None = None
) -> DatabaseChoice:
    """--database-url, else Settings.database_url, else where the node registered, else embedded."""
    if flag:
        return DatabaseChoice(flag, "--database-url")
    if settings_url:
        return DatabaseChoice(with_stored_password(settings_url, paths), "settings")
    state = load_state(paths)
    if state and state.database_url:
        return DatabaseChoice(with_stored_password(state.database_url, paths), "registration")
    return DatabaseChoice("", "embedded")


@contextmanager
def database_url(
    choice: DatabaseChoice, *, keep_embedded_running: bool, paths: AppPaths | None = None
) -> Iterator[str]:
    """The URL to connect to; starts the embedded PostgreSQL on demand.

    Args:
        keep_embedded_running: leave the embedded server running afterwards (registration:
            botserver uses it); otherwise it is stopped again if this call started it.
    """
    if not choice.embedded:
        yield choice.url
        return
    from gbdesk.shard.embedded import EmbeddedPostgres

    with EmbeddedPostgres(paths=paths).running(keep_running=keep_embedded_running) as url:
        yield url


def describe_node(
    node: str,
    *,
    settings_host: str,
    settings_port: int,
    model: str,
    hardware_profile: Callable[[], dict] | None = None,
    advertise_host: str = "",
    capacity: NodeCapacity | None = None,
) -> NodeDescription:
    """This machine as the registry records it (probes the hardware).

    The backend's URL is the one other machines reach (see :func:`advertised_host`); with
    ``capacity`` (measured by the caller), its URL and model win and the rest is recorded too.
    """
    from gbdesk import __version__

    if hardware_profile is None:
        from gbdesk.hardware.probe import probe

        profile = probe().to_json()
    else:
        profile = hardware_profile()
    profile = stable_profile(profile)  # type: ignore[assignment]
    advertised = advertised_host(settings_host, advertise_host)
    if capacity is None:
        capacity = NodeCapacity(
            llm_url=advertised.url(settings_port, "/v1"), reachable=advertised.reachable
        )
    return NodeDescription(
        node_id=node,
        host_name=socket.gethostname(),
        gbdesk_version=__version__,
        llm_url=advertised.url(settings_port, "/v1"),
        llm_model=model,
        hardware_profile=profile,
        capacity=capacity,
    )
