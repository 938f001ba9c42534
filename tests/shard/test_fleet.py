"""The registry knows the fleet, and routes tenants to their nodes: several nodes in one real
PostgreSQL, `gbdesk fleet` and `gbdesk botserver-config --tenant` through the real CLI."""

from __future__ import annotations

import ipaddress
import json
import uuid
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from gbdesk.botserver import read_config_csv, read_env_file
from gbdesk.cli import main
from gbdesk.errors import ExitCode
from gbdesk.hardware.address import advertised_host, is_loopback, lan_address
from gbdesk.paths import app_paths
from gbdesk.shard.capacity import NodeCapacity
from gbdesk.shard.errors import NotRegisteredError
from gbdesk.shard.fleet import list_fleet, route_tenant
from gbdesk.shard.heartbeat import STALE_AFTER_S, Heartbeat
from gbdesk.shard.migrations import MIGRATIONS, applied_versions, migrate
from gbdesk.shard.registry import ShardOptions, register, unregister
from tests.free_ports import free_port
from tests.shard.helpers import DISTINCT_PASSWORD, make_node

GIB = 2**30

# ---------------------------------------------------------------- the address others reach


def test_a_loopback_backend_is_for_this_machine_only() -> None:
    for host in ("127.0.0.1", "127.3.4.5", "localhost", "::1", "[::1]"):
        where = advertised_host(host)
        assert not where.reachable, host
        assert is_loopback(where.host), host
    assert advertised_host("::1").url(8081, "/v1") == "http://[::1]:8081/v1"


def test_a_backend_on_every_interface_is_reached_at_the_lan_address() -> None:
    lan = lan_address()
    where = advertised_host("0.0.0.0")
    if lan is None:  # a machine with loopback only: honest about it
        assert not where.reachable and where.host == "127.0.0.1"
    else:
        address = ipaddress.ip_address(lan)
        assert not address.is_loopback and not address.is_unspecified
        assert where == advertised_host("::") and where.host == lan and where.reachable
        assert where.url(8081, "/v1") == f"http://{lan}:8081/v1"


def test_a_chosen_address_wins_and_a_named_address_is_kept() -> None:
    assert advertised_host("192.0.2.7").host == "192.0.2.7"
    assert advertised_host("192.0.2.7").reachable
    chosen = advertised_host("127.0.0.1", "192.0.2.9")
    assert (chosen.host, chosen.reachable) == ("192.0.2.9", True)
    assert not advertised_host("0.0.0.0", "localhost").reachable


# ---------------------------------------------------------------- a fleet of nodes

pg = pytest.mark.postgres


def _capacity(url: str, **fields: object) -> NodeCapacity:
    from urllib.parse import urlsplit

    reachable = not is_loopback(urlsplit(url).hostname or "")
    return NodeCapacity(llm_url=url, reachable=reachable, **fields)  # type: ignore[arg-type]


# (slug, shard, tenant range, host name, capacity)
NODES = {
    "alpha": (
        1,
        (1, 1000),
        "node-alpha",
        _capacity(
            "http://192.0.2.11:8081/v1",
            llm_model="alpha-model.Q4_K_M.gguf",
            tokens_per_second=12.5,
            slots=4,
            context_tokens=4096,
            worker_endpoint="192.0.2.11:50052",
            worker_free_bytes=8 * GIB,
            worker_total_bytes=16 * GIB,
        ),
    ),
    "beta": (
        2,
        (1001, 2000),
        "node-beta",
        _capacity(
            "http://192.0.2.12:9000/v1",
            llm_model="beta-model.Q8_0.gguf",
            tokens_per_second=30.0,
            slots=8,
            context_tokens=8192,
            embedding_url="http://192.0.2.12:9001/v1/embeddings",
            embedding_model="bge-small-en-v1.5-q8_0.gguf",
            embedding_dimensions=384,
        ),
    ),
    "delta": (
        4,
        (3001, 4000),
        "node-delta",
        _capacity("http://127.0.0.1:8081/v1", llm_model="delta.gguf", slots=1),
    ),
    "epsilon": (
        5,
        (4001, 5000),
        "node-epsilon",
        _capacity("http://192.0.2.15:8081/v1", llm_model="epsilon.gguf"),
    ),
    "zeta": (
        6,
        (5001, 6000),
        "node-zeta",
        _capacity("http://192.0.2.16:8081/v1", llm_model="zeta.gguf"),
    ),
}


@pytest.fixture
def fleet_db(fresh_db: str, db: psycopg.Connection) -> dict[str, str]:
    """Other machines' nodes in one registry: alpha and beta live and reachable, delta live but
    on its own machine only, epsilon silent for ten minutes, zeta unregistered (its shard kept,
    no node). Returns each slug's node id."""
    ids: dict[str, str] = {}
    for slug, (shard, tenants, host, capacity) in NODES.items():
        node = replace(make_node(host=host), capacity=capacity)
        register(
            db,
            node,
            ShardOptions(shard_id=shard, tenant_range=tenants, tenant_slug=slug),
            connection_string=fresh_db,
        )
        ids[slug] = node.node_id
    db.execute(
        "UPDATE gbdesk_nodes SET last_seen_at = NOW() - interval '10 minutes' WHERE node_id = %s",
        (ids["epsilon"],),
    )
    unregister(db, ids["zeta"])
    return ids


@pg
def test_the_fleet_lists_every_node_with_its_url_capacity_and_state(
    fresh_db: str, fleet_db: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fleet", "--json", "--database-url", fresh_db]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["stale_after_s"] == STALE_AFTER_S == 90
    nodes = {node["host_name"]: node for node in listed["nodes"]}
    assert set(nodes) == {"node-alpha", "node-beta", "node-delta", "node-epsilon"}

    alpha = nodes["node-alpha"]
    assert alpha["node_id"] == fleet_db["alpha"] and alpha["shard_id"] == 1
    assert alpha["llm_url"] == "http://192.0.2.11:8081/v1" and alpha["llm_url_reachable"]
    assert alpha["llm_model"] == "alpha-model.Q4_K_M.gguf"
    assert (alpha["tokens_per_second"], alpha["slots"], alpha["context_tokens"]) == (
        12.5,
        4,
        4096,
    )
    assert alpha["worker_endpoint"] == "192.0.2.11:50052"
    assert (alpha["worker_free_bytes"], alpha["worker_total_bytes"]) == (8 * GIB, 16 * GIB)
    assert alpha["tenants"] == ["alpha"] and alpha["state"] == "live"

    beta = nodes["node-beta"]
    assert beta["embedding_model"] == "bge-small-en-v1.5-q8_0.gguf"
    assert beta["embedding_dimensions"] == 384 and beta["worker_endpoint"] is None
    assert not nodes["node-delta"]["llm_url_reachable"]
    assert nodes["node-epsilon"]["state"] == "stale"
    assert nodes["node-epsilon"]["seen_ago_s"] >= 590
    assert [n["state"] for n in listed["nodes"]].count("live") == 3
    assert listed["this_node_id"] is None  # this machine never registered

    # The table says the same in words.
    assert main(["fleet", "--database-url", fresh_db]) == 0
    table = capsys.readouterr().out
    lines = {line.split()[1]: line for line in table.splitlines()[1:] if "node-" in line}
    assert "http://192.0.2.11:8081/v1" in lines["node-alpha"]
    assert "8.0 GiB free" in lines["node-alpha"] and lines["node-alpha"].endswith("live")
    assert "this machine only (http://127.0.0.1:8081/v1)" in lines["node-delta"]
    assert lines["node-epsilon"].endswith("stale") and "10 min ago" in lines["node-epsilon"]


@pg
def test_the_heartbeat_keeps_the_capacity_current(db: psycopg.Connection, fresh_db: str) -> None:
    node = make_node()
    register(db, node, ShardOptions(), connection_string=fresh_db)
    measured = [
        _capacity(
            "http://192.0.2.20:8081/v1",
            llm_model="now-served.gguf",
            tokens_per_second=7.25,
            slots=2,
            context_tokens=2048,
            worker_endpoint="192.0.2.20:50052",
            worker_free_bytes=3 * GIB,
            worker_total_bytes=4 * GIB,
        )
    ]
    heartbeat = Heartbeat(fresh_db, node.node_id, capacity=lambda: measured[0])
    try:
        heartbeat.beat_once()
        (first,) = list_fleet(db)
        assert (first.llm_url, first.llm_url_reachable, first.llm_model) == (
            "http://192.0.2.20:8081/v1",
            True,
            "now-served.gguf",
        )
        assert (first.tokens_per_second, first.slots, first.context_tokens) == (7.25, 2, 2048)
        assert first.worker_free_bytes == 3 * GIB

        # The worker stopped and the backend went back to loopback: the next beat says so,
        # and a backend that does not answer (model None) keeps the model registered.
        measured[0] = _capacity("http://127.0.0.1:8081/v1")
        heartbeat.beat_once()
        (second,) = list_fleet(db)
        assert not second.llm_url_reachable and second.llm_url == "http://127.0.0.1:8081/v1"
        assert second.llm_model == "now-served.gguf"
        assert (second.worker_endpoint, second.worker_free_bytes, second.slots) == (
            None,
            None,
            None,
        )
        assert second.last_seen_at > first.last_seen_at

        # Measuring failed: the beat still counts, the capacity stays as it was.
        def broken() -> NodeCapacity:
            raise OSError("the backend's answer was cut")

        failing = Heartbeat(fresh_db, node.node_id, capacity=broken)
        try:
            failing.beat_once()
        finally:
            failing.stop()
        (third,) = list_fleet(db)
        assert third.last_seen_at > second.last_seen_at
        assert third.llm_url == second.llm_url and third.llm_model == "now-served.gguf"
    finally:
        heartbeat.stop()


@pg
def test_a_registry_made_before_the_fleet_columns_is_brought_up_to_date(
    db: psycopg.Connection, fresh_db: str
) -> None:
    # What an older gbdesk left: schema version 4 and its node row.
    node = make_node()
    migrate(db, MIGRATIONS[:4])
    db.execute(
        "INSERT INTO shard_config (shard_id, region_code, datacenter, connection_string,"
        " min_tenant_id, max_tenant_id) VALUES (1, 'USA', 'local', 'x', 1, 10)"
    )
    db.execute(
        "INSERT INTO gbdesk_nodes (node_id, shard_id, host_name, llm_url, gbdesk_version)"
        " VALUES (%s, 1, 'old-node', 'http://0.0.0.0:8081/v1', '0.1.0')",
        (node.node_id,),
    )
    assert applied_versions(db) == [1, 2, 3, 4]
    (old,) = list_fleet(db)  # reading migrates: the old row is "this machine only"
    assert applied_versions(db) == [1, 2, 3, 4, 5]
    assert not old.llm_url_reachable and old.slots is None

    db.execute("DELETE FROM gbdesk_schema_migrations WHERE version = 5")
    db.execute("ALTER TABLE gbdesk_nodes DROP COLUMN slots")
    heartbeat = Heartbeat(fresh_db, node.node_id, capacity=lambda: NodeCapacity(slots=3))
    try:
        heartbeat.beat_once()
    finally:
        heartbeat.stop()
    assert list_fleet(db)[0].slots == 3


@pg
def test_routing_follows_the_chapters_mapping(db: psycopg.Connection, fleet_db: dict) -> None:
    route = route_tenant(db, "beta")
    assert (route.shard_id, route.node.node_id) == (2, fleet_db["beta"])
    assert route.tenant_id == 1001  # the first id of shard 2's range
    # The chapter's tenant migration (UPDATE tenant_shard_map) moves the tenant's bots too.
    db.execute("UPDATE tenant_shard_map SET shard_id = 1 WHERE tenant_id = %s", (route.tenant_id,))
    assert route_tenant(db, "beta").node.node_id == fleet_db["alpha"]
    # A node serving on its own machine is fine for that machine itself.
    delta = route_tenant(db, "delta", caller_node_id=fleet_db["delta"])
    assert delta.node.llm_url == "http://127.0.0.1:8081/v1"


# ---------------------------------------------------------------- botserver-config --tenant


def _bot(tmp_path: Path, name: str) -> tuple[Path, Path]:
    bot = tmp_path / name / f"{name}.gbai"
    (bot / f"{name}.gbot").mkdir(parents=True)
    return bot, tmp_path / name / ".env"


@pg
def test_each_tenants_bot_points_at_its_shards_node(
    fresh_db: str,
    fleet_db: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gbdesk.settings import load_settings, save_settings

    # An earlier `gbdesk botserver-config` pointed alpha's files at this machine (remembered,
    # so that serving another model here rewrites their model).
    alpha_bot, alpha_env = _bot(tmp_path, "alpha")
    alpha_csv = (alpha_bot / "alpha.gbot" / "config.csv").resolve()
    save_settings(
        load_settings().replace(
            botserver_config_csv=str(alpha_csv), botserver_env_file=str(alpha_env.resolve())
        )
    )
    for slug, url, model in (
        ("alpha", "http://192.0.2.11:8081", "alpha-model.Q4_K_M.gguf"),
        ("beta", "http://192.0.2.12:9000", "beta-model.Q8_0.gguf"),
    ):
        bot, env = tmp_path / slug / f"{slug}.gbai", tmp_path / slug / ".env"
        (bot / f"{slug}.gbot").mkdir(parents=True, exist_ok=True)
        args = ["botserver-config", "--tenant", slug, "--database-url", fresh_db]
        assert main([*args, "--bot-dir", str(bot), "--env-file", str(env), "--api-key", "k1"]) == 0
        out = capsys.readouterr().out
        assert f"tenant {slug} (id " in out and f"node node-{slug} ({fleet_db[slug]})" in out
        config = read_config_csv(bot / f"{slug}.gbot" / "config.csv")
        assert (config["llm-url"], config["llm-model"], config["llm-key"]) == (url, model, "k1")
        assert config["llm-server"] == "false"
        assert read_env_file(env)["LLM_URL"] == url and read_env_file(env)["LLM_MODEL"] == model
    beta = read_config_csv(tmp_path / "beta" / "beta.gbai" / "beta.gbot" / "config.csv")
    assert beta["embedding-url"] == "http://192.0.2.12:9001/v1/embeddings"
    assert beta["embedding-model"] == "bge-small-en-v1.5-q8_0.gguf"
    assert beta["embedding-dimensions"] == "384"
    alpha = read_config_csv(tmp_path / "alpha" / "alpha.gbai" / "alpha.gbot" / "config.csv")
    assert "embedding-url" not in alpha
    # Files pointed at another machine are no longer kept in line with this machine's model.
    settings = load_settings()
    assert settings.botserver_config_csv == "" and settings.botserver_env_file == ""


@pg
@pytest.mark.parametrize(
    ("slug", "code", "words"),
    [
        ("nobody", ExitCode.TENANT_ROUTE, "tenant 'nobody' is not mapped to any shard"),
        ("delta", ExitCode.TENANT_ROUTE, "whose backend listens on that machine only"),
        ("epsilon", ExitCode.TENANT_ROUTE, "which has been silent for 10 min"),
        ("zeta", ExitCode.TENANT_ROUTE, "mapped to shard 6, which has no node"),
        ("Not A Slug", ExitCode.USAGE, "must be lower-case letters"),
    ],
)
def test_a_tenant_that_cannot_be_routed_is_a_clear_error_and_writes_nothing(
    *,
    slug: str,
    code: ExitCode,
    words: str,
    fresh_db: str,
    fleet_db: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bot, env = _bot(tmp_path, "bot")
    args = ["botserver-config", "--tenant", slug, "--database-url", fresh_db, "--api-key", "k"]
    assert main([*args, "--bot-dir", str(bot), "--env-file", str(env)]) == code
    err = capsys.readouterr().err
    assert words in err and "fix:" in err and DISTINCT_PASSWORD not in err
    assert "Traceback" not in err
    assert not env.exists() and not (bot / "bot.gbot" / "config.csv").exists()


@pg
def test_the_unknown_tenant_error_names_the_tenants_there(
    fresh_db: str, fleet_db: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["botserver-config", "--tenant", "gama", "--database-url", fresh_db, "--print"]
    assert main(args) == ExitCode.TENANT_ROUTE
    err = capsys.readouterr().err
    assert "tenants here: alpha, beta, delta, epsilon, zeta" in err


@pg
def test_another_machines_node_needs_its_key(
    fresh_db: str, fleet_db: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot, _ = _bot(tmp_path, "bot")
    args = ["botserver-config", "--tenant", "alpha", "--database-url", fresh_db]
    assert main([*args, "--bot-dir", str(bot)]) == ExitCode.USAGE
    assert "pass --api-key KEY" in capsys.readouterr().err
    assert not (bot / "bot.gbot" / "config.csv").exists()
    # --print shows the route without a key.
    assert main([*args, "--print"]) == 0
    assert "config.csv  llm-url,http://192.0.2.11:8081" in capsys.readouterr().out


def test_tenant_and_an_explicit_backend_do_not_mix(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["botserver-config", "--tenant", "acme", "--url", "http://x:1", "--print"])
    assert code == ExitCode.USAGE
    assert "--url cannot be combined with it" in capsys.readouterr().err


def test_a_registry_that_is_down_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://bot:{DISTINCT_PASSWORD}@127.0.0.1:{free_port()}/botserver"
    assert main(["fleet", "--database-url", url]) == ExitCode.DATABASE_UNAVAILABLE
    err = capsys.readouterr().err
    assert "cannot connect to PostgreSQL" in err and DISTINCT_PASSWORD not in err
    args = ["botserver-config", "--tenant", "acme", "--database-url", url, "--print"]
    assert main(args) == ExitCode.DATABASE_UNAVAILABLE
    err = capsys.readouterr().err
    assert "cannot connect to PostgreSQL" in err and DISTINCT_PASSWORD not in err


def test_no_registry_on_this_machine_creates_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet"]) == 0
    assert "no node is registered" in capsys.readouterr().out
    assert main(["botserver-config", "--tenant", "acme", "--print"]) == ExitCode.TENANT_ROUTE
    assert "no node ever registered on this machine" in capsys.readouterr().err
    assert not app_paths().database_dir.exists()  # the embedded server was not created


@pg
def test_an_unregistered_node_cannot_beat(db: psycopg.Connection, fresh_db: str) -> None:
    heartbeat = Heartbeat(fresh_db, str(uuid.uuid4()), capacity=NodeCapacity)
    register(db, make_node(), ShardOptions(), connection_string=fresh_db)
    try:
        with pytest.raises(NotRegisteredError):
            heartbeat.beat_once()
    finally:
        heartbeat.stop()


def test_a_capacity_out_of_range_is_refused() -> None:
    from gbdesk.errors import UsageError

    for bad in ({"slots": -1}, {"tokens_per_second": float("nan")}, {"worker_free_bytes": -5}):
        with pytest.raises(UsageError):
            NodeCapacity(**bad)  # type: ignore[arg-type]


@pg
def test_routing_beside_botservers_own_tenants_table(
    db: psycopg.Connection, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.shard.test_registry import BOTSERVER_TENANTS

    db.execute(BOTSERVER_TENANTS)
    db.execute("INSERT INTO tenants (name, slug) VALUES ('Acme', 'acme')")
    for shard, tenants, slug, url in (
        (1, (1, 99), "default", "http://192.0.2.51:8081/v1"),
        (2, (100, 199), "acme", "http://192.0.2.52:8081/v1"),
    ):
        node = replace(make_node(host=f"node-{shard}"), capacity=_capacity(url, llm_model="m"))
        register(
            db,
            node,
            ShardOptions(shard_id=shard, tenant_range=tenants, tenant_slug=slug),
            connection_string=fresh_db,
        )
    route = route_tenant(db, "acme")
    assert (route.tenant_id, route.shard_id, route.node.host_name) == (100, 2, "node-2")
    assert main(["fleet", "--json", "--database-url", fresh_db]) == 0
    listed = json.loads(capsys.readouterr().out)["nodes"]
    assert [node["tenants"] for node in listed] == [["default"], ["acme"]]


@pg
def test_keep_beating_keeps_a_headless_node_live(fresh_db: str) -> None:
    import threading

    from gbdesk.shard.service import keep_beating, register_this_node

    register_this_node(ShardOptions(), database_url=fresh_db)
    beats: list[object] = []
    stop = threading.Event()

    def on_beat(seen: object) -> None:
        beats.append(seen)
        if len(beats) >= 2:
            stop.set()

    measured = NodeCapacity(llm_url="http://192.0.2.60:8081/v1", reachable=True, slots=3)
    keep_beating(stop, interval_s=0.01, capacity=lambda: measured, on_beat=on_beat)
    assert len(beats) >= 2
    with psycopg.connect(fresh_db) as conn:
        (node,) = list_fleet(conn)
    assert node.llm_url == "http://192.0.2.60:8081/v1" and node.slots == 3 and not node.stale


@pg
def test_the_keep_beating_command_stops_cleanly_on_sigterm(fresh_db: str) -> None:
    import os
    import signal
    import subprocess
    import sys

    from gbdesk.shard.service import register_this_node

    register_this_node(ShardOptions(), database_url=fresh_db)
    command = [sys.executable, "-m", "gbdesk", "shard", "heartbeat", "--keep-beating"]
    with subprocess.Popen(
        [*command, "--database-url", fresh_db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    ) as child:
        try:
            assert child.stdout is not None
            first = child.stdout.readline()  # the first beat
            child.send_signal(signal.SIGTERM)
            rest, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert first.startswith("last seen "), err
    assert child.returncode == 0, err
    assert DISTINCT_PASSWORD not in first + rest + err
