"""The steps the GUI and `gbdesk serve` call: progress reports and this node's heartbeat."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from gbdesk.shard.errors import NotRegisteredError
from gbdesk.shard.registry import ShardOptions
from gbdesk.shard.service import (
    heartbeat_for_this_node,
    register_this_node,
    this_node_status,
    unregister_this_node,
)

pytestmark = pytest.mark.postgres


def test_register_reports_steps_and_the_heartbeat_finds_the_node(fresh_db: str) -> None:
    steps: list[str] = []
    result = register_this_node(
        ShardOptions(shard_id=4, region="DEU"), database_url=fresh_db, on_step=steps.append
    )
    assert (result.registration.shard_id, result.created, result.embedded) == (4, True, False)
    assert steps[0] == "probing this machine" and steps[1].startswith("registering in r_")
    assert result.env_file == ""

    seen: list[datetime] = []
    beat = threading.Event()
    heartbeat = heartbeat_for_this_node(
        interval_s=0.01, on_beat=lambda at: (seen.append(at), beat.set())
    )
    heartbeat.start()
    try:
        assert beat.wait(60)
    finally:
        heartbeat.stop()
    registration, embedded = this_node_status()
    assert registration is not None and not embedded
    assert registration.last_seen_at >= seen[0] > result.registration.last_seen_at

    assert unregister_this_node()[1] == 4
    with pytest.raises(NotRegisteredError):
        heartbeat_for_this_node()
