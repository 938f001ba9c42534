"""Connecting to the registry's PostgreSQL without ever showing its password.

psycopg's error messages can quote the connection string, so every message that leaves this
module is passed through :func:`mask` with the password it must hide.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from gbdesk.logs import redact
from gbdesk.shard.errors import DatabaseUnavailableError, InvalidShardOptionError, ShardError

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 5
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask(text: str, password: str | None = None) -> str:
    """``text`` with the password (raw and URL-quoted) and any URL or key=value password hidden."""
    if password:
        for form in {password, quote(password, safe=""), quote(password)}:
            text = text.replace(form, "***")
    text = _KEYWORD_PASSWORD.sub(r"\1***", text)
    return redact(text)


@dataclass(frozen=True)
class DatabaseAddress:
    """The parts of a connection string that may be shown: never the password."""

    host: str
    port: int
    user: str
    database: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


def parse(url: str) -> tuple[DatabaseAddress, str | None]:
    """The displayable address of ``url`` and its password (None when it has none).

    Accepts ``postgresql://`` URLs and libpq ``key=value`` strings.

    Raises:
        InvalidShardOptionError: ``url`` is not a connection string (the message hides the
            password).
    """
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError; its text may echo the string
        raise InvalidShardOptionError(
            f"the database URL is not a valid PostgreSQL connection string: "
            f"{mask(str(exc), _guess_password(url))}",
            fix="use postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        ) from None
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    try:
        port = int(str(parts.get("port") or 5432).split(",")[0])
    except ValueError:
        raise InvalidShardOptionError(
            f"the database URL has an invalid port {parts.get('port')!r}",
            fix="use postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        ) from None
    user = str(parts.get("user") or "")
    database = str(parts.get("dbname") or user)
    password = parts.get("password")
    return DatabaseAddress(host, port, user, database), (str(password) if password else None)


def _guess_password(url: str) -> str | None:
    """The password of a URL that libpq could not parse, to mask it in the error."""
    match = re.match(r"^[a-z][a-z0-9+.-]*://[^:/@\s]*:([^@\s]*)@", url, re.IGNORECASE)
    return unquote(match.group(1)) if match else None


def strip_password(url: str) -> str:
    """``url`` without its password (libpq ``key=value`` strings lose their password= pair)."""
    if "://" in url:
        return re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", r"\1@", url, flags=re.I)
    return _KEYWORD_PASSWORD.sub("", url).strip()


def with_password(url: str, password: str) -> str:
    """``url`` (which has no password) with ``password`` added."""
    if "://" in url:
        return re.sub(
            r"^([a-z][a-z0-9+.-]*://)([^:/@\s]*)@",
            lambda m: f"{m.group(1)}{m.group(2)}:{quote(password, safe='')}@",
            url,
            count=1,
            flags=re.I,
        )
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    return f"{url} password='{escaped}'"


def _describe_failure(reason: str) -> str:
    lowered = reason.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return "check the user name and password in the database URL"
    if "timeout" in lowered or "timed out" in lowered:
        return "check that the host is reachable from this machine (firewall, VPN) and the port"
    if "does not exist" in lowered:
        return "create the database first, or fix the database name in the URL"
    return (
        "start the database (for gbdesk's own: `gbdesk shard db start`) or fix the host and "
        "port in the database URL"
    )


def connect(url: str, *, timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S) -> psycopg.Connection:
    """An autocommit connection (use ``conn.transaction()`` for atomic work).

    Raises:
        DatabaseUnavailableError: refused, unreachable, timed out or wrong credentials; the
            message names host and port, never the password.
        InvalidShardOptionError: ``url`` is not a connection string.
    """
    import psycopg

    address, password = parse(url)
    try:
        conn = psycopg.connect(
            url, autocommit=True, connect_timeout=max(2, timeout_s), application_name="gbdesk"
        )
    except psycopg.Error as exc:
        reason = " ".join(mask(str(exc), password).split())
        log.debug("cannot connect to %s: %s", address, reason)
        raise DatabaseUnavailableError(
            f"cannot connect to PostgreSQL at {address.host}:{address.port} "
            f"(user {address.user or '(default)'}, database {address.database}): {reason}",
            fix=_describe_failure(reason),
        ) from None
    return conn


@contextmanager
def database_errors(url: str, doing: str) -> Iterator[None]:
    """Turn a psycopg error raised inside into a :class:`ShardError` with the password masked.

    Raises:
        ShardError: a statement failed while ``doing`` (e.g. "reading the registration").
    """
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        address, password = parse(url)
        reason = " ".join(mask(str(exc), password).split())
        raise ShardError(
            f"{doing} in {address} failed: {reason}",
            fix="check that the database is running and the user may use the registry tables",
        ) from None
