"""The heartbeat: keeps ``gbdesk_nodes.last_seen_at`` and the node's capacity fresh while the
backend runs.

A daemon thread touches the node's row every ``interval_s`` seconds over one connection, which
it reopens after a failure, and records what ``capacity()`` says the node offers now (its
reachable URL, model, speed, slots, context, worker). Failures go to ``on_error`` (already
masked: no password) and the beat goes on; the GUI starts it next to the backend and stops it
with it. A node silent for :data:`STALE_AFTER_S` shows as stale in the fleet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from gbdesk.errors import GbdeskError
from gbdesk.shard.capacity import NodeCapacity
from gbdesk.shard.connection import connect, mask, parse
from gbdesk.shard.registry import touch

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 30.0
# A node whose last beat is older than this (three missed beats) is stale: the fleet says so and
# tenant routing refuses it. One constant for the CLI, the GUI and the routing.
STALE_AFTER_S = 3 * DEFAULT_INTERVAL_S


class Heartbeat:
    """Periodic ``last_seen_at`` updates for one node.

    Args:
        database_url: the registry's database (password included; never shown).
        node_id: this node's id.
        interval_s: seconds between beats.
        on_beat: called with the new ``last_seen_at`` after each successful beat.
        on_error: called with a :class:`GbdeskError` after each failed beat.
        capacity: returns what the node offers now (recorded with each beat); None or a
            failure records nothing but the beat.
    """

    def __init__(
        self,
        database_url: str,
        node_id: str,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        on_beat: Callable[[datetime], None] | None = None,
        on_error: Callable[[GbdeskError], None] | None = None,
        capacity: Callable[[], NodeCapacity | None] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._url = database_url
        self._password = parse(database_url)[1]
        self.node_id = node_id
        self.interval_s = interval_s
        self._on_beat = on_beat
        self._on_error = on_error
        self._capacity = capacity  # asked at each beat: what the node offers now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    def beat_once(self) -> datetime:
        """Touch the row now.

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
            NotRegisteredError: the node is no longer registered.
            ShardError: the update failed.
        """
        import psycopg

        from gbdesk.shard.errors import ShardError

        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self._url)
            return touch(self._conn, self.node_id, self._measure())
        except psycopg.Error as exc:
            self._close()
            raise ShardError(
                f"the heartbeat failed: {' '.join(mask(str(exc), self._password).split())}",
                fix="check that the registry's database is running",
            ) from None
        except GbdeskError:
            self._close()
            raise

    def _measure(self) -> NodeCapacity | None:
        """The capacity now; a failure to measure must not stop the beat itself."""
        if self._capacity is None:
            return None
        try:
            return self._capacity()
        except Exception as exc:  # measuring reads files and HTTP: the beat matters more
            log.warning("heartbeat: could not measure this node's capacity: %s", exc)
            return None

    def start(self) -> None:
        """Beat now and then every ``interval_s`` seconds, in a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gbdesk-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop beating and close the connection (waits for a beat in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                seen = self.beat_once()
            except GbdeskError as exc:
                log.warning("heartbeat: %s", exc.message)
                if self._on_error is not None:
                    self._on_error(exc)
            else:
                if self._on_beat is not None:
                    self._on_beat(seen)
            self._stop.wait(self.interval_s)
        self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection must not kill the heartbeat
                log.debug("closing the heartbeat connection failed", exc_info=True)
