"""Snowflake IDs: the chapter's layout, in Python and in SQL, without duplicates."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from gbdesk.shard import snowflake
from gbdesk.shard.migrations import migrate
from gbdesk.shard.snowflake import EPOCH_MS, SnowflakeGenerator, compose, decode


def test_layout_is_41_10_12_bits() -> None:
    # 2024-01-01 UTC is the epoch.
    assert datetime.fromtimestamp(EPOCH_MS / 1000, tz=timezone.utc) == datetime(
        2024, 1, 1, tzinfo=timezone.utc
    )
    value = compose(timestamp_ms=1, shard_id=1, sequence=1)
    assert value == (1 << 22) | (1 << 12) | 1
    biggest = compose(2**41 - 1, 1023, 4095)
    assert biggest == 2**63 - 1  # fits a signed BIGINT
    assert decode(biggest) == snowflake.SnowflakeParts(2**41 - 1, 1023, 4095)


@pytest.mark.parametrize(
    ("timestamp", "shard", "sequence"), [(-1, 0, 0), (2**41, 0, 0), (0, 1024, 0), (0, 0, 4096)]
)
def test_fields_that_do_not_fit_are_refused(timestamp: int, shard: int, sequence: int) -> None:
    with pytest.raises(ValueError, match=r"outside|does not fit"):
        compose(timestamp, shard, sequence)


def test_generator_refuses_shard_1024() -> None:
    with pytest.raises(ValueError, match="0-1023"):
        SnowflakeGenerator(1024)


def test_python_ids_decode_to_shard_and_time() -> None:
    before = datetime.now(timezone.utc)
    parts = decode(SnowflakeGenerator(42).next_id())
    after = datetime.now(timezone.utc)
    assert parts.shard_id == 42
    assert before - timedelta(milliseconds=1) <= parts.created_at <= after


def test_100000_ids_from_four_threads_are_unique_and_ordered_per_thread() -> None:
    generator = SnowflakeGenerator(7)
    results: list[list[int]] = [[] for _ in range(4)]

    def work(out: list[int]) -> None:
        out.extend(generator.next_id() for _ in range(25_000))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for out in results for value in out]
    assert len(every) == 100_000
    assert len(set(every)) == 100_000
    for out in results:
        assert out == sorted(out)
    assert {decode(value).shard_id for value in every} == {7}


def test_a_clock_that_steps_back_gives_no_duplicate() -> None:
    readings = iter([1000, 1000, 1001, 900, 900, 950, 1001, 1002])
    generator = SnowflakeGenerator(3, clock_ms=lambda: next(readings))
    ids = [generator.next_id() for _ in range(8)]
    assert len(set(ids)) == 8
    assert ids == sorted(ids)  # never goes backwards either
    # While the clock is behind, the last timestamp is kept and the sequence counts on.
    assert [decode(i).timestamp_ms for i in ids] == [1000, 1000, 1001, 1001, 1001, 1001, 1001, 1002]


def test_more_than_4096_in_one_millisecond_borrow_the_next() -> None:
    generator = SnowflakeGenerator(1, clock_ms=lambda: 5000)
    ids = [generator.next_id() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert decode(ids[4095]) == snowflake.SnowflakeParts(5000, 1, 4095)
    assert decode(ids[4096]) == snowflake.SnowflakeParts(5001, 1, 0)


@pytest.mark.postgres
def test_sql_function_has_the_same_layout(db: psycopg.Connection) -> None:
    migrate(db)
    python_id = SnowflakeGenerator(9).next_id()
    # One statement: NOW() is fixed within it, the sequence makes the 4096 IDs distinct.
    rows = db.execute(
        "SELECT generate_snowflake_id(9::smallint), NOW() FROM generate_series(1, 4096)"
    ).fetchall()
    sql_ids = [row[0] for row in rows]
    assert len(set(sql_ids)) == 4096
    now = rows[0][1]
    for value in sql_ids:
        parts = decode(value)
        assert parts.shard_id == 9
        assert abs(parts.created_at - now) < timedelta(milliseconds=1)
    # The same fields land in the same bits: IDs made here and there a moment apart differ
    # only in time and sequence.
    py_parts, sql_parts = decode(python_id), decode(sql_ids[0])
    assert py_parts.shard_id == sql_parts.shard_id
    assert abs(py_parts.created_at - sql_parts.created_at) < timedelta(minutes=1)
    # And the SQL function masks the shard into 10 bits like the chapter says.
    masked = db.execute("SELECT generate_snowflake_id(1025::smallint)").fetchone()[0]
    assert decode(masked).shard_id == 1


def test_decode_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        decode(-1)


def test_ids_follow_the_clock() -> None:
    generator = SnowflakeGenerator(2)
    first = generator.next_id()
    time.sleep(0.002)
    second = generator.next_id()
    assert decode(second).timestamp_ms > decode(first).timestamp_ms
