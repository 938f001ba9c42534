"""A name that ends in a newline is not a name: every validator of a name, key, id or address
refuses one (a regex's ``$`` also matches before a final newline, so ``\\Z`` is used), and a
.env value that is a newline is quoted, not written bare."""

from __future__ import annotations

from pathlib import Path

import pytest

from gbdesk.backend.errors import RequestError
from gbdesk.backend.protocol import parse_common
from gbdesk.backend.tools import parse_tools
from gbdesk.botserver import read_env_file, update_env_file
from gbdesk.download.spec import parse_spec
from gbdesk.errors import ConfigError, UsageError
from gbdesk.hardware.rpc import WorkerError, parse_worker
from gbdesk.shard.errors import InvalidShardOptionError
from gbdesk.shard.registry import ShardOptions


def test_env_keys_and_values(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    with pytest.raises(ConfigError):
        update_env_file(env, {"KEY\n": "x"})
    for value in ("\n", "a\n", "\r\n"):
        update_env_file(env, {"KEY": value, "OTHER": "x"})
        assert read_env_file(env) == {"KEY": value, "OTHER": "x"}


def test_request_names_and_ids() -> None:
    tool = {"type": "function", "function": {"name": "f\n"}}
    with pytest.raises(RequestError) as caught:
        parse_tools({"tools": [tool]})
    assert caught.value.param == "tools[0].function.name"
    with pytest.raises(RequestError) as caught:
        parse_common({"messages": [], "logit_bias": {"1\n": 1}})
    assert caught.value.param == "logit_bias"


def test_addresses_slugs_and_repos() -> None:
    with pytest.raises(WorkerError):
        parse_worker("host\n:50052")
    with pytest.raises(InvalidShardOptionError):
        ShardOptions(tenant_slug="acme\n").validated()
    with pytest.raises(UsageError):
        parse_spec("org\n/repo/model.gguf")


def test_a_quoted_name_stays_on_one_line() -> None:
    """Client text quoted back in an error (an unknown field named "\\n", found by the hostile
    JSON fuzzing) is escaped: one line, in the message and the log."""
    from gbdesk.backend.json_body import clip
    from gbdesk.backend.protocol import reject_unknown

    with pytest.raises(RequestError) as caught:
        reject_unknown({"a\nb\u2028": 1}, set())
    assert caught.value.message == "'a\\nb\\u2028' is not supported by this server"
    assert clip("tab\there\x7f") == "tab\\there\\x7f"
