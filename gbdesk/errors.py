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
130   INTERRUPTED           Ctrl+C, download.errors.DownloadInterruptedError
====  ====================  ===========================================================
"""

from __future__ import annotations

import enum
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
    INTERRUPTED = 130


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
        super().__init__(message)
        self.message = message
        self.fix = fix
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
