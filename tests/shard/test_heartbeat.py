"""The heartbeat thread keeps last_seen_at fresh and reports failures without passwords."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime

import psycopg
import pytest

from gbdesk.errors import GbdeskError
from gbdesk.shard.errors import DatabaseUnavailableError, NotRegisteredError
from gbdesk.shard.heartbeat import Heartbeat
from gbdesk.shard.registry import ShardOptions, register
from tests.free_ports import free_port
from tests.shard.helpers import DISTINCT_PASSWORD, make_node

pytestmark = pytest.mark.postgres

WAIT_S = 60  # generous: only a hang fails it, never a slow machine


def test_beats_update_last_seen_until_stopped(db: psycopg.Connection, fresh_db: str) -> None:
    node = make_node()
    registration, _ = register(db, node, ShardOptions(), connection_string=fresh_db)
    beats: list[datetime] = []
    three = threading.Event()

    def on_beat(seen: datetime) -> None:
        beats.append(seen)
        if len(beats) >= 3:
            three.set()

    heartbeat = Heartbeat(fresh_db, node.node_id, interval_s=0.01, on_beat=on_beat)
    heartbeat.start()
    assert three.wait(WAIT_S)
    heartbeat.stop()
    assert not heartbeat.running
    count = len(beats)
    assert beats == sorted(beats) and beats[0] > registration.last_seen_at
    stored = db.execute("SELECT last_seen_at FROM gbdesk_nodes").fetchone()[0]
    assert stored == beats[-1]
    assert len(beats) == count  # nothing beats after stop()


def _first_error(heartbeat_args: dict) -> GbdeskError:
    errors: list[GbdeskError] = []
    got = threading.Event()

    def on_error(error: GbdeskError) -> None:
        errors.append(error)
        got.set()

    heartbeat = Heartbeat(**heartbeat_args, interval_s=0.01, on_error=on_error)
    heartbeat.start()
    try:
        assert got.wait(WAIT_S)
    finally:
        heartbeat.stop()
    return errors[0]


def test_an_unregistered_node_is_reported(db: psycopg.Connection, fresh_db: str) -> None:
    register(db, make_node(), ShardOptions(), connection_string=fresh_db)
    error = _first_error({"database_url": fresh_db, "node_id": str(uuid.uuid4())})
    assert isinstance(error, NotRegisteredError)


def test_a_database_that_is_down_is_reported_without_password() -> None:
    port = free_port()
    url = f"postgresql://bot:{DISTINCT_PASSWORD}@127.0.0.1:{port}/botserver"
    error = _first_error({"database_url": url, "node_id": str(uuid.uuid4())})
    assert isinstance(error, DatabaseUnavailableError)
    assert f"127.0.0.1:{port}" in error.message and DISTINCT_PASSWORD not in str(error)


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Heartbeat("postgresql://u@h/d", "x", interval_s=0)
