"""Fixtures of the download tests: the local Hub server."""

from tests.support.hub_server import hub_server

__all__ = ["hub_server"]
