"""Fixtures of the use-case tests: the local Hub with the search repos."""

from tests.support.hub_repos import search_hub, starter_split_parts
from tests.support.hub_server import hub_server

__all__ = ["hub_server", "search_hub", "starter_split_parts"]
