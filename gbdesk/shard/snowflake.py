"""Snowflake IDs with the layout of the handbook's sharding chapter.

64-bit IDs, time-sortable and unique across shards::

    | 41 bits: ms since 2024-01-01 UTC | 10 bits: shard (0-1023) | 12 bits: sequence (0-4095) |

The same layout as the SQL function ``generate_snowflake_id(p_shard_id SMALLINT)`` that the
migrations install, so IDs made here and IDs made by PostgreSQL decode the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

EPOCH_MS = 1704067200000  # 2024-01-01 00:00:00 UTC
TIMESTAMP_BITS = 41
SHARD_BITS = 10
SEQUENCE_BITS = 12
MAX_SHARD_ID = (1 << SHARD_BITS) - 1  # 1023
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1  # 4095
MAX_TIMESTAMP = (1 << TIMESTAMP_BITS) - 1
_SHARD_SHIFT = SEQUENCE_BITS
_TIMESTAMP_SHIFT = SEQUENCE_BITS + SHARD_BITS


@dataclass(frozen=True)
class SnowflakeParts:
    """A decoded ID: milliseconds since the epoch, shard and sequence."""

    timestamp_ms: int
    shard_id: int
    sequence: int

    @property
    def unix_ms(self) -> int:
        return self.timestamp_ms + EPOCH_MS

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.unix_ms / 1000, tz=timezone.utc)


def compose(timestamp_ms: int, shard_id: int, sequence: int) -> int:
    """Pack the three fields into an ID.

    Raises:
        ValueError: a field does not fit its bits.
    """
    if not 0 <= timestamp_ms <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp {timestamp_ms} ms does not fit in {TIMESTAMP_BITS} bits")
    if not 0 <= shard_id <= MAX_SHARD_ID:
        raise ValueError(f"shard id {shard_id} is outside 0-{MAX_SHARD_ID}")
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence {sequence} is outside 0-{MAX_SEQUENCE}")
    return (timestamp_ms << _TIMESTAMP_SHIFT) | (shard_id << _SHARD_SHIFT) | sequence


def decode(snowflake_id: int) -> SnowflakeParts:
    """Split an ID (from Python or from SQL) into its fields.

    Raises:
        ValueError: a negative number, which no snowflake ID is.
    """
    if snowflake_id < 0:
        raise ValueError(f"{snowflake_id} is not a snowflake ID (negative)")
    return SnowflakeParts(
        timestamp_ms=snowflake_id >> _TIMESTAMP_SHIFT,
        shard_id=(snowflake_id >> _SHARD_SHIFT) & MAX_SHARD_ID,
        sequence=snowflake_id & MAX_SEQUENCE,
    )


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000 - EPOCH_MS


class SnowflakeGenerator:
    """Thread-safe generator of IDs for one shard.

    Never repeats an ID within the process: when the clock steps back, or more than 4096 IDs
    are asked for in one millisecond, it keeps counting from the last timestamp it used
    (running slightly ahead of the wall clock) instead of reusing one.

    Args:
        shard_id: 0-1023.
        clock_ms: milliseconds since the epoch; replaceable to test clock steps.

    Raises:
        ValueError: ``shard_id`` is outside 0-1023.
    """

    def __init__(self, shard_id: int, *, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        if not 0 <= shard_id <= MAX_SHARD_ID:
            raise ValueError(f"shard id {shard_id} is outside 0-{MAX_SHARD_ID}")
        self.shard_id = shard_id
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        """A new, never-before-returned ID."""
        with self._lock:
            now = self._clock_ms()
            if now > self._last_ms:
                self._last_ms, self._sequence = now, 0
            elif self._sequence < MAX_SEQUENCE:
                # Same millisecond, or the clock stepped back: keep the last timestamp.
                self._sequence += 1
            else:
                # This millisecond's 4096 IDs are spent: borrow the next millisecond.
                self._last_ms, self._sequence = self._last_ms + 1, 0
            return compose(self._last_ms, self.shard_id, self._sequence)
