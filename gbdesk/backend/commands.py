"""`gbdesk serve` (the bot backend) and `gbdesk botserver-config` (point botserver at it)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from gbdesk.events import EVENTS_FLAG, LIFELINE_FLAG
from gbdesk.options import add_serve_arguments, serve_options_schema

if TYPE_CHECKING:
    from gbdesk.events import EventChannel
    from gbdesk.shard.heartbeat import Heartbeat


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the model as an OpenAI-compatible backend for botserver",
        description="Serve a GGUF model over HTTP (OpenAI API, like llama-server). Without"
        " options, context, parallel slots and GPU layers are chosen for this machine.",
    )
    add_serve_arguments(serve)
    serve.add_argument(
        "--api-key", default=None, help="require 'Authorization: Bearer KEY' (or GBDESK_API_KEY)"
    )
    serve.add_argument(
        EVENTS_FLAG,
        action="store_true",
        help="write JSON-lines events (listening, loading, ready, error) on stdout, for a"
        " supervising process; other output goes to stderr",
    )
    serve.add_argument(
        LIFELINE_FLAG,
        action="store_true",
        help="stop when stdin ends (a supervising process holds its other end and exits)",
    )
    serve.set_defaults(handler=run_serve_command)

    config = subparsers.add_parser(
        "botserver-config",
        help="point botserver at this backend (config.csv and .env)",
        description="Write llm-url, llm-model, llm-server and llm-key into a bot's config.csv"
        " (and, with an embedding model, embedding-url, embedding-model, embedding-dimensions"
        " and embedding-key) and LLM_URL, LLM_MODEL, LLM_KEY, LLM_PROVIDER, LLM_API_URL into"
        " botserver's .env. Other lines are kept as they are.",
    )
    config.add_argument("--bot-dir", help="the bot's <bot>.gbai or <bot>.gbot folder")
    config.add_argument("--env-file", help="botserver's .env file")
    config.add_argument("--print", action="store_true", help="only show the values (key masked)")
    config.add_argument("--url", help="the backend's base URL (default from the settings)")
    config.add_argument("--model", default="", help="the served model (default from settings)")
    config.add_argument("--api-key", default=None, help="the backend's key (or GBDESK_API_KEY)")
    config.add_argument(
        "--embedding-model",
        default=None,
        help="the served embedding model (default: the embedding_model setting; '' for none)",
    )
    config.add_argument(
        "--embedding-url",
        default=None,
        help="the full embeddings URL (default: http://127.0.0.1:<embedding port>/v1/embeddings)",
    )
    config.add_argument(
        "--tenant",
        metavar="SLUG",
        help="point the bot at the node that serves this tenant's shard (tenant_shard_map ->"
        " shard_config -> gbdesk_nodes in the shard registry) instead of this machine",
    )
    config.add_argument(
        "--database-url",
        metavar="URL",
        help="the shard registry for --tenant (default: as for `gbdesk shard`)",
    )
    config.set_defaults(handler=run_botserver_config)

    worker = subparsers.add_parser(
        "worker",
        help="lend this machine's memory and cores to another machine's backend (llama.cpp RPC)",
        description="Run llama.cpp's RPC server, so that `gbdesk serve --rpc HOST:PORT` on"
        " another machine can put part of a model here. It listens on 127.0.0.1 unless --host"
        " says otherwise. The RPC protocol has no password: listen on a network address only"
        " on a network you trust.",
    )
    worker.add_argument(
        "--host",
        default=None,
        help="the address to listen on (default 127.0.0.1: this computer only; e.g. 0.0.0.0 or"
        " this computer's LAN address to let other machines in; settings: worker_host)",
    )
    worker.add_argument(
        "--port", type=int, default=None, help="the port (default 50052; settings: worker_port)"
    )
    worker.add_argument(
        "--memory",
        type=int,
        default=None,
        metavar="MiB",
        help="the memory to offer, in MiB (default: what is available; settings:"
        " worker_memory_mib)",
    )
    worker.add_argument(
        "--cache",
        action="store_true",
        help="keep the tensors a backend sends on disk, so a reload sends only their hashes",
    )
    worker.add_argument(
        "--threads", type=int, default=0, help="CPU threads (default: the physical cores)"
    )
    worker.add_argument(
        EVENTS_FLAG,
        action="store_true",
        help="write JSON-lines events (ready, error) on stdout, for a supervising process",
    )
    worker.add_argument(
        LIFELINE_FLAG,
        action="store_true",
        help="stop when stdin ends (a supervising process holds its other end and exits)",
    )
    worker.set_defaults(handler=run_worker_command)


def run_serve_command(args: argparse.Namespace) -> int:
    """`gbdesk serve`. With ``--events`` every outcome is also a JSON-lines event.

    Raises:
        GbdeskError: the options, the model or the port (printed by the CLI).
    """
    import sys
    import threading

    from gbdesk.backend.serve import ServeOptions, Serving, run_serve, with_key_from_env
    from gbdesk.errors import GbdeskError
    from gbdesk.events import stdout_channel, stop_when_parent_exits
    from gbdesk.settings import load_settings

    events = stdout_channel() if args.events else None
    try:
        given = {
            item.serve_field or "": getattr(args, item.serve_field or "")
            for item in serve_options_schema()
        }
        options = with_key_from_env(
            ServeOptions.from_settings(load_settings(), api_key=args.api_key, **given)
        )

        beating: list[Heartbeat] = []

        def serving(info: Serving) -> None:
            # With --events, stdout carries the events: the summary goes to stderr then.
            out = sys.stderr if args.events else sys.stdout
            for line in info.lines():
                print(line, file=out, flush=True)
            # The heartbeat asks this very backend for its model and slots: where it listens.
            port = int(info.url.rsplit(":", 1)[1].split("/")[0])
            beating.extend(
                _start_node_heartbeat(
                    options.api_key,
                    backend_host=options.host,
                    backend_port=port,
                    embedding_port=options.embedding_port,
                )
            )

        stop = threading.Event()
        if args.lifeline:
            stop_when_parent_exits(stop.set)
        try:
            return run_serve(options, events=events, on_serving=serving, stop=stop)
        finally:
            for heartbeat in beating:
                heartbeat.stop()
    except GbdeskError as exc:
        if events is not None:
            events.error(exc)
        raise
    except Exception as exc:
        if events is not None:  # the log has the traceback; the parent gets a sentence
            events.error(GbdeskError(f"the backend failed: {exc}", fix="see the backend log"))
        raise


def run_botserver_config(args: argparse.Namespace) -> int:
    import os

    from gbdesk.backend.botserver_link import (
        backend_values,
        bot_config_path,
        masked,
        write_botserver_config,
    )
    from gbdesk.errors import UsageError

    api_key = args.api_key or os.environ.get("GBDESK_API_KEY") or None
    if args.tenant is not None:
        return _tenant_botserver_config(args, api_key)
    if args.database_url:
        raise UsageError("--database-url is for --tenant", fix="pass --tenant SLUG too")
    values = backend_values(
        url=args.url,
        model=args.model,
        api_key=api_key,
        embedding_model=args.embedding_model,
        embedding_url=args.embedding_url,
    )
    if args.print:
        for key, value in masked(values.config_csv).items():
            print(f"config.csv  {key},{value}")
        for key, value in masked(values.env).items():
            print(f".env        {key}={value}")
        return 0
    if not args.bot_dir and not args.env_file:
        raise UsageError(
            "nothing to write",
            fix="pass --bot-dir <bot>.gbai and/or --env-file PATH, or --print to see the values",
        )
    config_csv = bot_config_path(args.bot_dir) if args.bot_dir else None
    written = write_botserver_config(values, config_csv=config_csv, env_file=args.env_file)
    for path in written:
        print(f"wrote {path}")
    return 0


def _tenant_botserver_config(args: argparse.Namespace, api_key: str | None) -> int:
    """`gbdesk botserver-config --tenant SLUG`: the tenant's node from the registry.

    Raises:
        UsageError: options that name the backend themselves, or no key for another machine.
        TenantRouteError, DatabaseUnavailableError, ShardError: see app.fleet.
    """
    from gbdesk.app.fleet import tenant_botserver_values, write_tenant_config
    from gbdesk.backend.botserver_link import bot_config_path, masked
    from gbdesk.errors import UsageError

    given = [
        flag
        for flag, value in (
            ("--url", args.url),
            ("--model", args.model),
            ("--embedding-model", args.embedding_model),
            ("--embedding-url", args.embedding_url),
        )
        if value
    ]
    if given:
        raise UsageError(
            f"--tenant takes the backend from the registry; {', '.join(given)} cannot be"
            " combined with it",
            fix="leave out " + ", ".join(given) + ", or leave out --tenant",
        )
    if not args.print and not args.bot_dir and not args.env_file:
        raise UsageError(
            "nothing to write",
            fix="pass --bot-dir <bot>.gbai and/or --env-file PATH, or --print to see the values",
        )
    config = tenant_botserver_values(args.tenant, database_url=args.database_url, api_key=api_key)
    node, route = config.route.node, config.route
    print(
        f"tenant {route.slug} (id {route.tenant_id}) -> shard {route.shard_id} -> node"
        f" {node.host_name} ({node.node_id}), last seen {node.seen_ago_s:.0f} s ago"
    )
    if args.print:
        for key, value in masked(config.values.config_csv).items():
            print(f"config.csv  {key},{value}")
        for key, value in masked(config.values.env).items():
            print(f".env        {key}={value}")
        return 0
    if not config.this_machine and api_key is None:
        # A backend that other machines reach always requires a key (gbdesk serve refuses
        # to listen beyond 127.0.0.1 without one): without it the bot would get HTTP 401.
        raise UsageError(
            f"node {node.host_name} serves other machines only with its API key",
            fix="pass --api-key KEY (the key that node's backend uses) or set GBDESK_API_KEY",
        )
    config_csv = bot_config_path(args.bot_dir) if args.bot_dir else None
    written = write_tenant_config(config, config_csv=config_csv, env_file=args.env_file)
    for path in written:
        print(f"wrote {path}")
    return 0


def run_worker_command(args: argparse.Namespace) -> int:
    """`gbdesk worker`: llama.cpp's RPC server until Ctrl+C or SIGTERM.

    Raises:
        GbdeskError: the options, the port or the RPC build (printed by the CLI).
    """

    from gbdesk.errors import GbdeskError
    from gbdesk.events import stdout_channel

    events = stdout_channel() if args.events else None
    try:
        return _run_worker(args, events)
    except GbdeskError as exc:
        if events is not None:
            events.error(exc)
        raise


def _run_worker(args: argparse.Namespace, events: EventChannel | None) -> int:
    import signal
    import sys
    import threading

    from gbdesk.backend.worker import EXPOSED_WARNING, WorkerOptions, WorkerReady, run_worker
    from gbdesk.events import EventType, stop_when_parent_exits
    from gbdesk.hardware.address import advertised_host
    from gbdesk.paths import app_paths
    from gbdesk.settings import load_settings

    settings = load_settings()
    options = WorkerOptions(
        host=args.host if args.host is not None else settings.worker_host,
        port=args.port if args.port is not None else settings.worker_port,
        memory_mib=args.memory if args.memory is not None else settings.worker_memory_mib,
        cache=args.cache,
        threads=args.threads,
    )
    if options.exposed:
        print(EXPOSED_WARNING.format(host=options.host, port=options.port), file=sys.stderr)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    if args.lifeline:
        stop_when_parent_exits(stop.set)

    def ready(worker: WorkerReady) -> None:
        offered = ", ".join(
            f"{name} {memory.free / 2**30:.1f} GiB free of {memory.total / 2**30:.1f} GiB"
            for name, memory in worker.devices
        )
        out = sys.stderr if events is not None else sys.stdout
        print(f"gbdesk worker ready on {worker.address}: {offered}", file=out, flush=True)
        reach = advertised_host(worker.address.host)
        hint = (
            f"  use it from another machine: gbdesk serve --rpc {reach.host}:{worker.address.port}"
            if reach.reachable
            else "  only this computer can use it: start it with --host 0.0.0.0 to lend it to"
            " other machines"
        )
        print(hint, file=out, flush=True)
        if events is not None:
            events.emit(
                EventType.READY,
                address=str(worker.address),
                devices=[
                    {"name": name, "free": memory.free, "total": memory.total}
                    for name, memory in worker.devices
                ],
            )

    beating: list[Heartbeat] = []

    def ready_and_beat(worker: WorkerReady) -> None:
        ready(worker)
        # A registered node's row then says it lends a worker, and how much memory.
        beating.extend(_start_node_heartbeat(None))

    try:
        return run_worker(options, app_paths().data_dir, stop=stop, on_ready=ready_and_beat)
    finally:
        for heartbeat in beating:
            heartbeat.stop()


def _start_node_heartbeat(api_key: str | None, **serving: Any) -> list[Heartbeat]:
    """This node's shard heartbeat while it serves or lends a worker ([] when the node is not
    registered, or the registry cannot be reached: serving goes on, with a warning).

    ``serving`` names where this process's backend listens (settings fields), when it serves.
    """
    import sys

    from gbdesk.app.fleet import capacity_source, start_node_heartbeat
    from gbdesk.errors import GbdeskError
    from gbdesk.settings import load_settings

    settings = load_settings().replace(**serving)
    try:
        heartbeat = start_node_heartbeat(
            settings.database_url, capacity=capacity_source(settings, api_key)
        )
    except GbdeskError as exc:
        print(f"warning: the shard heartbeat did not start: {exc.message}", file=sys.stderr)
        return []
    return [heartbeat] if heartbeat is not None else []
