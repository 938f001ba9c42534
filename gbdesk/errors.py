"""Typed errors that carry a sentence a person can act on, and gbdesk's one exit-code table.

Every error gbdesk raises on purpose derives from :class:`GbdeskError`. Its ``fix`` says what
to do about it; the CLI prints both and exits with the class's :class:`ExitCode`, the GUI shows
both in a dialog. Across a process boundary (the backend child and its supervisor) an error
travels as :meth:`GbdeskError.to_json` and comes back with :meth:`GbdeskError.from_json`, as the
same class with the same fields: nobody parses prose.

Exit codes (one table, no two kinds of failure share a code):

====  ====================  ===========================================================
code  name                  raised as
====  ====================  ===========================================================
0     OK                    success
1     ERROR                 any other GbdeskError
2     USAGE                 UsageError, ConfigError, LibraryError (bad input or settings)
3     MODEL_LOAD            backend.errors.ModelLoadError
4     PORT_IN_USE           backend.errors.PortInUseError
5     BACKEND_START         backend.errors.BackendStartError
6     DOWNLOAD              download.errors.DownloadError and its kinds
7     DATABASE_UNAVAILABLE  shard.errors.DatabaseUnavailableError
8     SHARD_CONFLICT        shard.errors.ShardConflictError
9     HUB_SEARCH            catalog.hub_search.HubSearchError (the Hub's listing failed or
                            cannot be reached)
10    WORKER                hardware.rpc.WorkerError (an RPC worker address is invalid, or
                            the worker is unreachable, incompatible, too small or stopped)
11    TENANT_ROUTE          shard.errors.TenantRouteError (a tenant's shard has no live node
                            another machine can reach, or the tenant is unknown)
130   INTERRUPTED           Ctrl+C, download.errors.DownloadInterruptedError
====  ====================  ===========================================================
"""

from __future__ import annotations

import enum
import errno
import re
from typing import Any, ClassVar


class ExitCode(enum.IntEnum):
    """The exit status of `gbdesk <verb>` (see the module's table)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    MODEL_LOAD = 3
    PORT_IN_USE = 4
    BACKEND_START = 5
    DOWNLOAD = 6
    DATABASE_UNAVAILABLE = 7
    SHARD_CONFLICT = 8
    HUB_SEARCH = 9
    WORKER = 10
    TENANT_ROUTE = 11
    INTERRUPTED = 130


# What an operating-system error number means, in words a person can act on. getaddrinfo's
# codes are negative ([Errno -2] is "Name or service not known" on Linux).
_ERRNO_WORDS: dict[int, str] = {
    errno.ENOENT: "the file or folder does not exist",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the disk is read-only",
    errno.EEXIST: "it already exists",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ENOTEMPTY: "the folder is not empty",
    errno.EADDRINUSE: "the port is already used by another program",
    errno.EADDRNOTAVAIL: "that address is not one of this computer's",
    errno.ECONNREFUSED: "nothing answered there (the connection was refused)",
    errno.ECONNRESET: "the connection was cut",
    errno.ETIMEDOUT: "the connection timed out",
    errno.EHOSTUNREACH: "that computer cannot be reached",
    errno.ENETUNREACH: "the network cannot be reached",
    errno.EMFILE: "too many files are open",
    errno.EIO: "the disk could not be read or written",
    -2: "the server's name could not be found (no network, or a wrong address)",
    -3: "the server's name could not be looked up just now (is the network up?)",
    -4: "the server's name could not be looked up",
    -5: "the server's name has no address",
    -9: "the server's name could not be looked up",
}
# Windows' own error numbers ([WinError N]).
_WINERROR_WORDS: dict[int, str] = {
    2: _ERRNO_WORDS[errno.ENOENT],
    3: _ERRNO_WORDS[errno.ENOENT],
    5: _ERRNO_WORDS[errno.EACCES],
    32: "another program is using the file",
    112: _ERRNO_WORDS[errno.ENOSPC],
    10048: _ERRNO_WORDS[errno.EADDRINUSE],
    10060: _ERRNO_WORDS[errno.ETIMEDOUT],
    10061: _ERRNO_WORDS[errno.ECONNREFUSED],
    11001: _ERRNO_WORDS[-2],
}
_ERRNO_TEXT = re.compile(
    r"<urlopen error (?P<inner>[^>]*)>"
    r"|\[(?P<kind>Errno|WinError) (?P<code>-?\d+)\] (?P<text>[^:\n'\"(\]>]*[^:\n'\"(\]> ])?"
)


def os_error_words(exc: BaseException) -> str:
    """What an OSError (a socket or name-lookup error too) means, in plain words: no errno.

    Anything else gives its own text, with any "[Errno N] …" in it translated the same way.
    """
    code = getattr(exc, "errno", None)
    winerror = getattr(exc, "winerror", None)
    words = _WINERROR_WORDS.get(winerror) if isinstance(winerror, int) else None
    if words is None and isinstance(code, int):
        words = _ERRNO_WORDS.get(code)
    if isinstance(exc, OSError) and words is not None:
        name = exc.filename if isinstance(exc.filename, str) else None
        return f"{words}: {name}" if name else words
    if isinstance(exc, TimeoutError):
        return "it took too long to answer"
    if isinstance(exc, OSError) and exc.strerror:
        return without_errno(exc.strerror[:1].lower() + exc.strerror[1:])
    return without_errno(str(exc)) or type(exc).__name__


def without_errno(text: str) -> str:
    """``text`` with every "[Errno N] strerror" (and urllib's "<urlopen error …>") told in
    words (:func:`os_error_words`' table): a message shown to a person never carries an errno."""

    def plain(match: re.Match[str]) -> str:
        if match.group("inner") is not None:
            return without_errno(match.group("inner"))
        table = _WINERROR_WORDS if match.group("kind") == "WinError" else _ERRNO_WORDS
        fallback = (match.group("text") or "a system error").strip()
        return table.get(int(match.group("code")), fallback[:1].lower() + fallback[1:])

    if "Errno" in text or "WinError" in text or "urlopen error" in text:
        return _ERRNO_TEXT.sub(plain, text)
    return text


class GbdeskError(Exception):
    """Base class of gbdesk's own errors.

    Args:
        message: what went wrong, in one plain sentence.
        fix: what the person can do about it (optional).
        details: structured facts a program may use (a port, a path), JSON values only.
    """

    exit_code: ClassVar[int] = ExitCode.ERROR
    _kinds: ClassVar[dict[str, type[GbdeskError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        GbdeskError._kinds[cls.__name__] = cls

    def __init__(
        self, message: str, *, fix: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        # An OSError's text put into a message must not show its errno (see without_errno).
        message = without_errno(message)
        super().__init__(message)
        self.message = message
        self.fix = without_errno(fix) if fix else fix
        self.details = dict(details or {})

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\n  fix: {self.fix}"
        return self.message

    @property
    def kind(self) -> str:
        """The class name, which :meth:`from_json` turns back into the class."""
        return type(self).__name__

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "message", "fix", "exit_code", "details"}``."""
        return {
            "kind": self.kind,
            "message": self.message,
            "fix": self.fix,
            "exit_code": int(self.exit_code),
            "details": self.details,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> GbdeskError:
        """The error :meth:`to_json` wrote, as its own class when this process knows it.

        Unknown kinds (or a malformed object) come back as a plain :class:`GbdeskError` with
        whatever message there is.
        """
        kind = GbdeskError._kinds.get(str(data.get("kind")), GbdeskError)
        message = str(data.get("message") or "unknown error")
        fix = data.get("fix")
        details = data.get("details")
        error = kind.__new__(kind)
        GbdeskError.__init__(
            error,
            message,
            fix=str(fix) if fix else None,
            details=details if isinstance(details, dict) else None,
        )
        return error


class UnexpectedError(GbdeskError):
    """A failure gbdesk did not foresee (a bug, an odd system error), told in plain words.

    The message names what was being done, never the exception's text (which may carry an errno
    or a path); the exception's type and text go into ``details`` and its traceback into the
    log, where whoever reports it finds them.
    """

    @classmethod
    def during(
        cls, what: str, exc: BaseException, *, log_file: str | None = None
    ) -> UnexpectedError:
        """The error for ``exc``, raised while trying to ``what`` ("start the backend")."""
        where = f"the log file {log_file}" if log_file else "the log file"
        return cls(
            f"Could not {what}: something unexpected went wrong.",
            fix=f"try again; if it happens again, report it with {where}",
            details={"task": what, "exception": type(exc).__name__, "detail": str(exc)},
        )


class ConfigError(GbdeskError):
    """A setting or configuration file is invalid."""

    exit_code = ExitCode.USAGE


class UsageError(GbdeskError):
    """The command line or an argument is invalid."""

    exit_code = ExitCode.USAGE
