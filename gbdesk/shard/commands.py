"""`gbdesk shard ...`: register this node as a single-node shard, show it, remove it;
`gbdesk fleet`: every node of the registry.

Module level imports stay light (argparse); the handlers import the rest.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from gbdesk.errors import GbdeskError
    from gbdesk.settings import Settings
    from gbdesk.shard.fleet import FleetNode
    from gbdesk.shard.registry import Registration


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `shard` verb and its sub-commands."""
    shard = subparsers.add_parser(
        "shard",
        help="register this node as a single-node shard in PostgreSQL",
        description="Register this node as a single-node shard (the handbook's sharding "
        "chapter) in gbdesk's embedded PostgreSQL or in any PostgreSQL given by URL.",
    )
    actions = shard.add_subparsers(dest="shard_action", metavar="<action>", required=True)

    def database_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--database-url",
            metavar="URL",
            help="postgresql://USER:PASSWORD@HOST:PORT/DB (default: the database_url setting, "
            "else where this node registered, else gbdesk's embedded PostgreSQL)",
        )

    reg = actions.add_parser("register", help="register or refresh this node (idempotent)")
    database_option(reg)
    reg.add_argument("--shard-id", type=int, metavar="N", help="0-1023 (default 1)")
    reg.add_argument("--region", metavar="ISO3", help="ISO 3166-1 alpha-3 code (default USA)")
    reg.add_argument("--datacenter", metavar="NAME", help="up to 32 characters (default local)")
    reg.add_argument(
        "--tenant-range",
        metavar="MIN:MAX",
        help="tenant ids this shard owns (default 1:9223372036854775807)",
    )
    reg.add_argument("--tenant", metavar="SLUG", help="the tenant to map (default 'default')")
    reg.add_argument(
        "--env-file",
        metavar="PATH",
        help="botserver's .env to receive SHARD_ID and DATABASE_URL (remembered)",
    )
    reg.add_argument(
        "--advertise-host",
        metavar="HOST",
        help="the address other machines reach this one at (remembered; default: this "
        "machine's LAN address when the backend listens beyond 127.0.0.1; '' finds it again)",
    )
    reg.set_defaults(handler=_register)

    st = actions.add_parser("status", help="show this node's registration")
    database_option(st)
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(handler=_status)

    unreg = actions.add_parser("unregister", help="remove this node and deactivate its shard")
    database_option(unreg)
    unreg.set_defaults(handler=_unregister)

    beat = actions.add_parser(
        "heartbeat",
        help="update this node's last-seen time and capacity once (or keep doing it)",
    )
    database_option(beat)
    beat.add_argument(
        "--keep-beating",
        action="store_true",
        help="beat every 30 s until Ctrl+C (next to a `gbdesk serve` without the desktop app,"
        " so that the fleet sees the node live)",
    )
    beat.set_defaults(handler=_heartbeat)

    regions = actions.add_parser("regions", help="list the ISO 3166-1 alpha-3 region codes")
    regions.set_defaults(handler=_regions)

    db = actions.add_parser("db", help="manage gbdesk's embedded PostgreSQL")
    db_actions = db.add_subparsers(dest="db_action", metavar="<action>", required=True)
    db_actions.add_parser("start", help="create (first time) and start it").set_defaults(
        handler=_db_start
    )
    db_actions.add_parser("stop", help="stop it cleanly").set_defaults(handler=_db_stop)
    db_status = db_actions.add_parser("status", help="show whether it runs, and where")
    db_status.add_argument("--json", action="store_true", help="print JSON")
    db_status.set_defaults(handler=_db_status)
    psql = db_actions.add_parser("psql", help="open the bundled psql on it (password not shown)")
    psql.add_argument(
        "-c",
        "--command",
        action="append",
        default=[],
        metavar="SQL",
        help="run SQL and exit (repeatable), e.g. -c 'TABLE shard_config'",
    )
    psql.set_defaults(handler=_db_psql)

    fleet = subparsers.add_parser(
        "fleet",
        help="list every node of the shard registry: address, model, capacity, worker, state",
        description="Every gbdesk node registered in the registry (the same database as `gbdesk"
        " shard`): the URL other machines reach its backend at, its model, context, slots,"
        " measured tokens/s, its worker's free memory, when it was last seen and whether it"
        " is live or stale (silent for more than 90 s).",
    )
    database_option(fleet)
    fleet.add_argument("--json", action="store_true", help="print JSON")
    fleet.set_defaults(handler=_fleet)


def _print_json(data: object) -> None:
    import json

    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _register(args: argparse.Namespace) -> int:
    from gbdesk.app.fleet import register_capacity
    from gbdesk.settings import load_settings
    from gbdesk.shard.registry import ShardOptions, parse_tenant_range
    from gbdesk.shard.service import register_this_node

    options = ShardOptions(
        shard_id=args.shard_id,
        region=args.region,
        datacenter=args.datacenter,
        tenant_range=parse_tenant_range(args.tenant_range) if args.tenant_range else None,
        tenant_slug=args.tenant,
    )
    result = register_this_node(
        options,
        database_url=args.database_url,
        env_file=args.env_file,
        capacity=register_capacity(load_settings()),
        advertise_host=args.advertise_host,
    )
    registration = result.registration
    verb = "registered" if result.created else "already registered; refreshed"
    print(f"{verb}: node {registration.node_id} as shard {registration.shard_id}")
    _print_registration(registration, result.embedded)
    if result.env_file:
        shard = registration.shard_id
        print(f"botserver: wrote SHARD_ID={shard} and DATABASE_URL to {result.env_file}")
    else:
        print("botserver: pass --env-file PATH to write SHARD_ID and DATABASE_URL to its .env")
    if result.embedded:
        print(
            "the embedded PostgreSQL keeps running for botserver: `gbdesk shard db stop` stops it"
        )
    return 0


def _print_registration(registration: Registration, embedded: bool) -> None:
    r = registration
    yes_no = {True: "yes", False: "no"}
    tenants = ", ".join(
        f"{t['slug'] or '?'} (id {t['tenant_id']}" + (f", uuid {t['uuid']})" if t["uuid"] else ")")
        for t in r.tenants
    )
    where = "embedded PostgreSQL" if embedded else "PostgreSQL"
    print(f"  shard       {r.shard_id}  region {r.region_code}  datacenter {r.datacenter}")
    print(f"  flags       primary {yes_no[r.is_primary]}  active {yes_no[r.is_active]}")
    print(f"  tenant ids  {r.min_tenant_id}:{r.max_tenant_id}")
    print(f"  tenants     {tenants or '(none)'}  [{r.tenants_table} tenants table]")
    print(f"  database    {r.connection}  ({where}; stored encrypted)")
    print(f"  node        {r.host_name}, gbdesk {r.gbdesk_version}")
    where = "" if r.llm_url_reachable else "  (this machine only)"
    print(f"  backend     {r.llm_url}{where}  model {r.llm_model or '(not chosen yet)'}")
    print(f"  registered  {r.registered_at.isoformat(timespec='seconds')}")
    print(f"  last seen   {r.last_seen_at.isoformat(timespec='seconds')}")
    print(f"  schema      migrations {', '.join(str(v) for v in r.schema_versions)}")


def _status(args: argparse.Namespace) -> int:
    from gbdesk.shard import local
    from gbdesk.shard.service import this_node_status

    state = local.load_state()
    if state is None or state.shard_id is None:
        if args.json:
            _print_json({"registered": False, "node_id": state.node_id if state else None})
        else:
            print("this node is not registered: run `gbdesk shard register`")
        return 1
    registration, embedded = this_node_status(args.database_url)
    if registration is None:
        if args.json:
            _print_json({"registered": False, "node_id": state.node_id})
        else:
            print(f"node {state.node_id} is not registered in this database")
        return 1
    if args.json:
        data = registration.to_json()
        data["registered"] = True
        data["database"] = "embedded" if embedded else "url"
        _print_json(data)
    else:
        print(f"node {registration.node_id}: shard {registration.shard_id}")
        _print_registration(registration, embedded)
    return 0


def _unregister(args: argparse.Namespace) -> int:
    from gbdesk.shard.service import unregister_this_node

    node_id, shard_id = unregister_this_node(args.database_url)
    print(f"unregistered node {node_id}; shard {shard_id} is now inactive")
    return 0


def _heartbeat(args: argparse.Namespace) -> int:
    from gbdesk.app.fleet import this_node_capacity
    from gbdesk.settings import load_settings
    from gbdesk.shard.service import beat_once

    settings = load_settings()
    if args.keep_beating:
        return _keep_beating(args, settings)
    seen = beat_once(args.database_url, capacity=this_node_capacity(settings))
    print(f"last seen {seen.isoformat(timespec='seconds')}")
    return 0


def _keep_beating(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import sys
    import threading

    from gbdesk.app.fleet import capacity_source
    from gbdesk.shard.service import keep_beating

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())

    def beat(seen: datetime) -> None:
        print(f"last seen {seen.isoformat(timespec='seconds')}", flush=True)

    def failed(error: GbdeskError) -> None:
        print(f"heartbeat failed: {error}", file=sys.stderr, flush=True)

    keep_beating(
        stop,
        database_url=args.database_url,
        capacity=capacity_source(settings),
        on_beat=beat,
        on_error=failed,
    )
    return 0


def _regions(args: argparse.Namespace) -> int:
    from gbdesk.shard.regions import countries

    for code, name in countries().items():
        print(f"{code}  {name}")
    return 0


def _db_start(args: argparse.Namespace) -> int:
    from gbdesk.shard.embedded import EmbeddedPostgres

    server = EmbeddedPostgres()
    started = server.start()
    st = server.status()
    print(
        f"{'started' if started else 'already running'}: embedded PostgreSQL on "
        f"{st.host}:{st.port}, database {st.database}, user {st.user} ({st.data_dir})"
    )
    return 0


def _db_stop(args: argparse.Namespace) -> int:
    from gbdesk.shard.embedded import EmbeddedPostgres

    stopped = EmbeddedPostgres().stop()
    print("stopped" if stopped else "the embedded PostgreSQL was not running")
    return 0


def _db_status(args: argparse.Namespace) -> int:
    from gbdesk.shard.embedded import EmbeddedPostgres

    st = EmbeddedPostgres().status()
    if args.json:
        _print_json(st.to_json())
    elif not st.initialised:
        print(f"not created yet ({st.data_dir}): `gbdesk shard db start` creates it")
    else:
        state = f"running (pid {st.pid})" if st.running else "stopped"
        print(f"{state}: {st.host}:{st.port}, database {st.database}, user {st.user}")
        print(f"data: {st.data_dir}")
    return 0 if st.running else 1


def _db_psql(args: argparse.Namespace) -> int:
    import subprocess

    from gbdesk.shard.embedded import EmbeddedPostgres

    server = EmbeddedPostgres()
    with server.running(keep_running=False):
        extra = [arg for sql in args.command for arg in ("-c", sql)]
        argv, env = server.psql_command(*extra)
        return subprocess.run(argv, env=env, check=False).returncode


def _fleet(args: argparse.Namespace) -> int:
    from gbdesk.shard.heartbeat import STALE_AFTER_S
    from gbdesk.shard.service import fleet

    result = fleet(args.database_url)
    if args.json:
        _print_json(
            {
                "stale_after_s": STALE_AFTER_S,
                "this_node_id": result.this_node_id,
                "nodes": [node.to_json() for node in result.nodes],
            }
        )
        return 0
    if not result.nodes:
        print("no node is registered in this registry: `gbdesk shard register` adds this one")
        return 0
    print(fleet_table(result.nodes, result.this_node_id))
    print(f"(* this machine; a node is stale after {STALE_AFTER_S:.0f} s without a heartbeat)")
    return 0


def fleet_table(nodes: tuple[FleetNode, ...], this_node_id: str | None) -> str:
    """The fleet as aligned text columns, this machine marked with ``*``."""
    from gbdesk.app.fleet import fleet_row

    rows = []
    for node in nodes:
        row = fleet_row(node)
        row["id"] = ("*" if node.node_id == this_node_id else " ") + row["id"]
        rows.append(row)
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(row[h]) for row in rows)) for h in headers}
    lines = ["  ".join(h.upper().ljust(widths[h]) for h in headers).rstrip()]
    lines += ["  ".join(row[h].ljust(widths[h]) for h in headers).rstrip() for row in rows]
    return "\n".join(lines)
