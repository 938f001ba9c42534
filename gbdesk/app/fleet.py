"""The fleet, composed: what this node offers (for its registration and heartbeat), the list of
every node, and a tenant's botserver settings pointing at the node that serves its shard.

The shard package stores and reads the registry; the backend package knows the running server
and botserver's files. They share a layer and do not import each other, so this module puts
them together (no Qt, no argparse: the CLI and the Node page both call it).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbdesk.settings import Settings
from gbdesk.shard.capacity import NodeCapacity
from gbdesk.shard.fleet import FleetNode, TenantRoute
from gbdesk.shard.heartbeat import Heartbeat
from gbdesk.shard.service import FleetResult

log = logging.getLogger(__name__)

__all__ = [
    "FleetNode",
    "FleetResult",
    "TenantConfig",
    "capacity_source",
    "fleet_row",
    "list_fleet",
    "start_node_heartbeat",
    "tenant_botserver_values",
    "this_node_capacity",
    "write_tenant_config",
]

# The backend answers /v1/models from memory; a slow answer must not hold a heartbeat long.
_BACKEND_TIMEOUT_S = 2.0


@functools.lru_cache(maxsize=1)
def _this_cpu() -> tuple[str, int]:
    """(CPU brand, physical cores): what a measured speed must match to be this machine's
    (read as `gbdesk serve` and `gbdesk bench` read them when they record one)."""
    from gbdesk.hardware.probe import probe

    cpu = probe().cpu
    return cpu.brand, cpu.physical_cores


def measured_tokens_per_second(model_file: str) -> float | None:
    """One conversation's decode speed of ``model_file`` on this machine, as ``gbdesk bench``
    or a served run measured it (None when it never ran here)."""
    from gbdesk.errors import GbdeskError
    from gbdesk.fit.measured import load_measured

    try:
        record = load_measured().get(model_file)
    except GbdeskError as exc:
        log.warning("fleet: the measured speeds cannot be read: %s", exc.message)
        return None
    if record is None:
        return None
    brand, cores = _this_cpu()
    if record.cpu_brand != brand or record.physical_cores != cores:
        return None  # measured on another machine (a copied data folder)
    return record.generation_tps


def _served_models(settings: Settings, api_key: str | None) -> list[dict[str, Any]]:
    """The backend's /v1/models entries ([] when it is not running or not ready)."""
    from gbdesk.backend.botserver_link import backend_url
    from gbdesk.backend.client import BackendClient
    from gbdesk.errors import GbdeskError

    client = BackendClient(
        backend_url(settings.backend_host, settings.backend_port),
        api_key=api_key,
        timeout_s=_BACKEND_TIMEOUT_S,
    )
    try:
        response = client.get("/v1/models")
        data = response.json() if response.status == 200 else None
    except (GbdeskError, ValueError):
        return []
    entries = data.get("data") if isinstance(data, dict) else None
    return [entry for entry in entries or [] if isinstance(entry, dict)]


def _worker(advertise: str) -> tuple[str | None, int | None, int | None]:
    """(endpoint others use, free bytes, total bytes) of this machine's `gbdesk worker`."""
    from gbdesk.hardware.address import advertised_host
    from gbdesk.hardware.rpc import read_worker_record, worker_memory
    from gbdesk.paths import app_paths

    record = read_worker_record(app_paths().data_dir)
    if record is None:
        return None, None, None
    host = advertised_host(record.host, advertise).host
    memory = worker_memory(record.memory_limit_bytes)
    return f"{host}:{record.port}", memory.free, memory.total


def this_node_capacity(
    settings: Settings, *, advertise: str | None = None, api_key: str | None = None
) -> NodeCapacity:
    """What this node offers now: the backend's URL as other machines reach it, the model it
    serves with its slots and per-slot context (asked from the running backend), the model's
    measured single-conversation speed, the embedding model, and the worker with its free
    memory. Fields that cannot be known now are None (a stopped backend keeps the registered
    model).

    Args:
        advertise: the address chosen by the operator; None: the one remembered at
            registration ("" = found from the network).
        api_key: the backend's key; None: ``GBDESK_API_KEY``.
    """
    from gbdesk.hardware.address import advertised_host
    from gbdesk.shard.service import advertise_host

    if advertise is None:
        advertise = advertise_host()
    if api_key is None:
        api_key = os.environ.get("GBDESK_API_KEY") or None
    where = advertised_host(settings.backend_host, advertise)
    model: str | None = None
    slots = context = dimensions = None
    embedding_model = embedding_url = ""
    for entry in _served_models(settings, api_key):
        meta = entry.get("meta")
        if not isinstance(meta, dict):
            meta = {}
        if "n_embd" in meta:  # the embedding model
            embedding_model = str(entry.get("id", ""))
            embedding_url = where.url(settings.embedding_port, "/v1/embeddings")
            dimensions = _whole(meta.get("n_embd"))
        elif model is None:
            model = str(entry.get("id", "")) or None
            slots = _whole(meta.get("parallel"))
            context = _whole(meta.get("n_ctx_slot"))
    worker_endpoint, worker_free, worker_total = _worker(advertise)
    return NodeCapacity(
        llm_url=where.url(settings.backend_port, "/v1"),
        reachable=where.reachable,
        llm_model=model,
        embedding_url=embedding_url,
        embedding_model=embedding_model,
        embedding_dimensions=dimensions,
        tokens_per_second=measured_tokens_per_second(model) if model else None,
        slots=slots,
        context_tokens=context,
        worker_endpoint=worker_endpoint,
        worker_free_bytes=worker_free,
        worker_total_bytes=worker_total,
    )


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def capacity_source(settings: Settings, api_key: str | None = None) -> Callable[[], NodeCapacity]:
    """The heartbeat's ``capacity`` callable: measures this node at each beat."""
    return lambda: this_node_capacity(settings, api_key=api_key)


def register_capacity(
    settings: Settings, api_key: str | None = None
) -> Callable[[str], NodeCapacity]:
    """The registration's ``capacity`` callable (given the advertise host it will record)."""
    return lambda advertise: this_node_capacity(settings, advertise=advertise, api_key=api_key)


def list_fleet(settings: Settings, database_url: str | None = None) -> FleetResult:
    """Every node of the registry (``database_url`` None: the configured registry).

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
        EmbeddedPostgresError, ShardError: the embedded server or the query failed.
    """
    from gbdesk.shard import service

    return service.fleet(database_url or settings.database_url or None)


@dataclass(frozen=True)
class TenantConfig:
    """A tenant's route and the botserver values that follow it."""

    route: TenantRoute
    values: Any  # gbdesk.backend.botserver_link.BotserverValues
    this_machine: bool  # the tenant's node is this machine


def tenant_botserver_values(
    slug: str,
    *,
    database_url: str | None = None,
    api_key: str | None = None,
) -> TenantConfig:
    """botserver's settings for tenant ``slug``: the llm-url and model of the live node that
    serves its shard (tenant_shard_map → shard_config → gbdesk_nodes), and its embedding
    model when it serves one.

    Raises:
        InvalidShardOptionError: not a valid slug.
        UnknownTenantError: no such tenant is mapped to a shard.
        NoLiveNodeError: its shard has no node, or the node is stale.
        NodeNotReachableError: the node serves on its own machine only.
        DatabaseUnavailableError, EmbeddedPostgresError, ShardError: the registry failed.
    """
    from gbdesk.backend.botserver_link import backend_values
    from gbdesk.shard import local, service
    from gbdesk.shard.errors import NoLiveNodeError

    route = service.route_tenant(slug, database_url)
    node = route.node
    if not node.llm_model:
        raise NoLiveNodeError(
            f"tenant {slug!r} is served by node {node.host_name} (shard {route.shard_id}), "
            "which has not said which model it serves yet",
            fix=f"start the backend on {node.host_name}; its next heartbeat records the model",
        )
    state = local.load_state()
    this_machine = state is not None and state.node_id == node.node_id
    url = node.llm_url.rstrip("/")
    url = url[: -len("/v1")] if url.endswith("/v1") else url  # botserver's llm-url has no /v1
    values = backend_values(
        url=url,
        model=node.llm_model,
        api_key=api_key,
        embedding_model=node.embedding_model,
        embedding_url=node.embedding_url or None,
        dimensions=node.embedding_dimensions,
    )
    return TenantConfig(route=route, values=values, this_machine=this_machine)


def write_tenant_config(
    config: TenantConfig, *, config_csv: Path | None = None, env_file: str | Path | None = None
) -> list[Path]:
    """Write a tenant's values into botserver's files; returns the files written.

    Files pointed at this machine are remembered (serving another model here rewrites their
    model); files pointed at another machine are forgotten, so that this machine's model never
    replaces the other node's in them.

    Raises:
        ConfigError: a file cannot be read or written, or the settings cannot be saved.
    """
    from gbdesk.backend.botserver_link import forget_botserver_files, write_botserver_config

    written = write_botserver_config(
        config.values, config_csv=config_csv, env_file=env_file, remember=config.this_machine
    )
    if not config.this_machine:
        forget_botserver_files(config_csv, env_file)
    return written


def fleet_row(node: FleetNode) -> dict[str, str]:
    """One node's cells, as `gbdesk fleet` and the Node page show them (same headers)."""
    from gbdesk.shard.fleet import duration_words

    url = node.llm_url if node.llm_url_reachable else f"this machine only ({node.llm_url})"
    worker = "-"
    if node.worker_endpoint:
        worker = node.worker_endpoint
        if node.worker_free_bytes is not None:
            worker += f" ({node.worker_free_bytes / 2**30:.1f} GiB free)"
    return {
        "id": node.node_id[:8],
        "name": node.host_name,
        "shard": str(node.shard_id),
        "url": url,
        "model": node.llm_model or "-",
        "ctx": str(node.context_tokens) if node.context_tokens is not None else "-",
        "slots": str(node.slots) if node.slots is not None else "-",
        "tok/s": f"{node.tokens_per_second:.1f}" if node.tokens_per_second is not None else "-",
        "worker": worker,
        "last seen": f"{duration_words(node.seen_ago_s)} ago",
        "state": node.state,
    }


def start_node_heartbeat(
    database_url: str,
    *,
    capacity: Callable[[], NodeCapacity | None] | None = None,
    on_beat: Callable[[Any], None] | None = None,
    on_error: Callable[[Any], None] | None = None,
    on_embedded_started: Callable[[], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Heartbeat | None:
    """This node's heartbeat, started, or None when the node is not registered.

    The embedded registry is started first when registration chose it (registration leaves it
    running; after a reboot it starts here). ``cancelled`` is asked before and after starting:
    a caller that gave up meanwhile gets None and no beating thread is left behind.

    Raises:
        EmbeddedPostgresError, GbdeskError: the registry cannot be reached or started.
    """
    from gbdesk.shard import local, service

    state = local.load_state()
    if state is None or state.shard_id is None:
        return None
    choice = local.choose_database(None, database_url)
    if choice.embedded:
        from gbdesk.shard.embedded import EmbeddedPostgres

        if EmbeddedPostgres().start() and on_embedded_started is not None:
            on_embedded_started()
    if cancelled():
        return None
    heartbeat = service.heartbeat_for_this_node(
        on_beat=on_beat, on_error=on_error, capacity=capacity
    )
    heartbeat.start()
    if cancelled():
        heartbeat.stop()
        return None
    return heartbeat
