"""Errors of downloads and of the model library, each with a sentence a person can act on."""

from __future__ import annotations

from gbdesk.errors import ExitCode, GbdeskError


class DownloadError(GbdeskError):
    """A download could not finish."""

    exit_code = ExitCode.DOWNLOAD


class HubAccessDeniedError(DownloadError):
    """The repo is gated or private and no (valid) token was sent."""


class HubNotFoundError(DownloadError):
    """The repo, revision or file does not exist on the endpoint."""


class HubUnreachableError(DownloadError):
    """The network or the endpoint failed; the partial file is kept for a resume."""


class NotInCacheError(DownloadError):
    """Offline mode is on and the file is not in the local cache."""


class NotEnoughSpaceError(DownloadError):
    """The files do not fit on the disk (checked before the first byte is written)."""


class DiskFullError(DownloadError):
    """The disk filled up while writing; the partial file is kept for a resume."""


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes do not match the Hub's SHA-256; the file was removed."""


class DownloadInterruptedError(DownloadError):
    """The job was cancelled or paused (not a failure: the partial file is kept)."""

    exit_code = ExitCode.INTERRUPTED


class LibraryError(GbdeskError):
    """A model cannot be imported, found or removed."""

    exit_code = ExitCode.USAGE
