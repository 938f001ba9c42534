"""Typed errors that carry a sentence a person can act on.

Every error gbdesk raises on purpose derives from :class:`GbdeskError`. Its ``fix`` says what
to do about it; the CLI prints both and exits non-zero, the GUI shows both in a dialog.
"""

from __future__ import annotations


class GbdeskError(Exception):
    """Base class of gbdesk's own errors.

    Args:
        message: what went wrong, in one plain sentence.
        fix: what the person can do about it (optional).
    """

    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\n  fix: {self.fix}"
        return self.message


class ConfigError(GbdeskError):
    """A setting or configuration file is invalid."""

    exit_code = 2


class UsageError(GbdeskError):
    """The command line or an argument is invalid."""

    exit_code = 2
