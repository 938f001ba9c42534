"""Helpers shared by the shard tests."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from gbdesk.shard.registry import NodeDescription

# A password that appears nowhere else, so tests can look for it in every output.
DISTINCT_PASSWORD = "Pw-9f3K-unmistakable"


def make_node(node_id: str | None = None, *, host: str = "node-a") -> NodeDescription:
    """A node with a fixed hardware profile (the real probe's JSON shape)."""
    from gbdesk.hardware.probe import probe
    from gbdesk.shard.local import stable_profile

    return NodeDescription(
        node_id=node_id or str(uuid.uuid4()),
        host_name=host,
        gbdesk_version="0.1.0",
        llm_url="http://127.0.0.1:8081/v1",
        llm_model="SmolLM2-135M-Instruct-Q4_1",
        hardware_profile=stable_profile(probe().to_json()),  # type: ignore[arg-type]
    )


def table_rows(conn: psycopg.Connection, table: str) -> list[tuple]:
    return conn.execute(
        sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table))
    ).fetchall()
