"""The Node page's fleet table: every node of a real PostgreSQL registry, read in a worker."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from gbdesk.shard.capacity import NodeCapacity
from gbdesk.shard.registry import ShardOptions, register
from tests.shard.conftest import fresh_db, pg_server
from tests.shard.helpers import make_node

__all__ = ["fresh_db", "pg_server"]

pytestmark = pytest.mark.postgres


def _two_nodes(url: str) -> tuple[str, str]:
    """A live node other machines reach, and one silent for three hours (this machine only)."""
    live = replace(
        make_node(host="node-live"),
        capacity=NodeCapacity(
            llm_url="http://192.0.2.31:8081/v1",
            reachable=True,
            llm_model="live-model.gguf",
            tokens_per_second=18.0,
            slots=4,
            context_tokens=4096,
            worker_endpoint="192.0.2.31:50052",
            worker_free_bytes=6 * 2**30,
        ),
    )
    silent = replace(
        make_node(host="node-silent"),
        capacity=NodeCapacity(llm_url="http://127.0.0.1:8081/v1", llm_model="old.gguf"),
    )
    with psycopg.connect(url, autocommit=True) as conn:
        register(conn, live, ShardOptions(shard_id=1, tenant_range=(1, 10)), connection_string=url)
        register(
            conn,
            silent,
            ShardOptions(shard_id=2, tenant_range=(11, 20), tenant_slug="other"),
            connection_string=url,
        )
        conn.execute(
            "UPDATE gbdesk_nodes SET last_seen_at = NOW() - interval '3 hours' WHERE node_id = %s",
            (silent.node_id,),
        )
    return live.node_id, silent.node_id


def test_the_node_page_lists_the_fleet(qtbot, state, fresh_db: str) -> None:
    from gbdesk.ui.fleet_table import COLUMNS
    from gbdesk.ui.pages.node import NodePage

    live_id, silent_id = _two_nodes(fresh_db)
    state.update_settings(database_url=fresh_db)
    page = NodePage(state)
    qtbot.addWidget(page)
    page.show()
    # Opening the page reads the fleet in a worker; the GUI thread never waits on it.
    qtbot.waitUntil(lambda: page.fleet.result is not None, timeout=60_000)
    qtbot.waitUntil(lambda: not page.fleet.is_busy(), timeout=60_000)
    table = page.fleet.table
    assert table.rowCount() == 2
    keys = [key for key, _ in COLUMNS]

    def cells(row: int) -> dict[str, str]:
        return {key: table.item(row, column).text() for column, key in enumerate(keys)}

    rows = {cells(row)["name"]: cells(row) for row in range(2)}
    live, silent = rows["node-live"], rows["node-silent"]
    assert live["url"] == "http://192.0.2.31:8081/v1" and live["model"] == "live-model.gguf"
    assert (live["ctx"], live["slots"], live["tok/s"]) == ("4096", "4", "18.0")
    assert live["worker"] == "192.0.2.31:50052 (6.0 GiB free)" and live["state"] == "Live"
    assert silent["url"].startswith("this machine only") and silent["state"] == "Silent"
    assert "3 h ago" in silent["last seen"]
    assert table.item(0, 0).toolTip() in {live_id, silent_id}
    assert page.fleet.summary.text() == "2 computers, 1 live."
    assert not page.fleet.banner.isVisible()

    # Refresh reads it again: a node that unregistered meanwhile is gone.
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("DELETE FROM gbdesk_nodes WHERE node_id = %s", (silent_id,))
    page.fleet.refresh_button.click()
    assert page.fleet.is_busy() and not page.fleet.refresh_button.isEnabled()
    qtbot.waitUntil(lambda: not page.fleet.is_busy(), timeout=60_000)
    assert table.rowCount() == 1 and page.fleet.summary.text() == "1 computer, 1 live."


def test_an_unreachable_registry_is_said_in_plain_words(qtbot, state) -> None:
    from gbdesk.ui.fleet_table import FleetTable
    from tests.free_ports import free_port

    state.update_settings(database_url=f"postgresql://bot:secret@127.0.0.1:{free_port()}/bots")
    fleet = FleetTable(state)
    qtbot.addWidget(fleet)
    fleet.show()
    fleet.refresh()
    qtbot.waitUntil(lambda: not fleet.is_busy(), timeout=60_000)
    text = fleet.banner.text()
    assert fleet.banner.isVisible() and text.startswith("The fleet could not be read")
    assert "secret" not in text and "`" not in text and "--" not in text
    assert fleet.refresh_button.isEnabled()
