"""Fixtures for the desktop app's tests: a fresh AppState, and no task outliving its test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gbdesk.settings import Settings, save_settings
from tests.support.hub_server import HubServer, hub_server

__all__ = ["hub_server"]

# A desktop-sized screen (the offscreen platform's own is 800x800): windows open at their
# preferred size, as on most machines; tests/ui/test_layouts.py checks the small screens.
if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
    screen = Path(__file__).with_name("offscreen-screen.json")
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The offscreen platform warns that it cannot pass size hints to a window manager (it has
    none); that warning says nothing about gbdesk, every other Qt warning still fails a test."""
    for item in items:
        if "tests/ui/" in item.nodeid:
            item.add_marker(pytest.mark.qt_log_ignore("does not support propagateSizeHints"))


@pytest.fixture(autouse=True)
def _drain_workers(qapp) -> Iterator[None]:
    """Every test starts with the app's theme and ends with no task still running."""
    from gbdesk.ui.theme import apply_theme
    from gbdesk.ui.workers import cancel_all_and_wait

    apply_theme(qapp, dark=False)
    yield
    assert cancel_all_and_wait(30_000), "a worker task did not stop within 30 s"
    qapp.processEvents()


@pytest.fixture
def state(qapp):
    from gbdesk.ui.state import AppState

    app_state = AppState()
    yield app_state
    app_state.shutdown()


@pytest.fixture
def configured_state(qapp):
    """State of a machine where the wizard has run once."""
    from gbdesk.ui.state import AppState

    save_settings(Settings(first_run_done=True))
    app_state = AppState()
    yield app_state
    app_state.shutdown()


@pytest.fixture
def embedded_pg_cleanup() -> Iterator[None]:
    """Stop the embedded PostgreSQL a test's registration left running for botserver."""
    yield
    from gbdesk.shard.embedded import EmbeddedPostgres

    EmbeddedPostgres().stop()


@pytest.fixture
def starter_hub(hub_server: HubServer, starter_model) -> HubServer:
    """The local Hub serving the starter model under its real repo and file name, throttled so
    that a download lasts long enough to show progress, pause and resume."""
    from gbdesk.starter import STARTER_FILE, STARTER_REPO

    hub_server.add_file(STARTER_REPO, STARTER_FILE, starter_model)
    hub_server.throttle(STARTER_REPO, STARTER_FILE, 40_000_000)
    return hub_server
