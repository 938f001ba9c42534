"""A task's failure reaches the GUI thread as the typed error it raised; anything unforeseen
becomes a plain sentence there, with its traceback only in the log."""

from __future__ import annotations

import logging
from pathlib import Path

from gbdesk.download.errors import LibraryError
from gbdesk.errors import GbdeskError, UnexpectedError


def test_an_import_failure_reaches_the_models_page_as_the_typed_error_with_its_fix(
    qtbot, state, tmp_path: Path, monkeypatch
) -> None:
    from gbdesk.ui.pages.models import ModelsPage
    from gbdesk.ui.widgets import Banner

    shown: list[GbdeskError] = []
    original = Banner.show_error

    def record(banner: Banner, error: GbdeskError, **kwargs) -> None:
        shown.append(error)
        original(banner, error, **kwargs)

    monkeypatch.setattr(Banner, "show_error", record)
    page = ModelsPage(state)
    qtbot.addWidget(page)
    not_a_model = tmp_path / "notes.gguf"
    not_a_model.write_text("these are notes, not weights\n")

    page.import_file(str(not_a_model))
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)

    (error,) = shown
    assert type(error) is LibraryError  # the class the core raised, not a copy of its words
    assert "notes.gguf is not a GGUF model" in error.message
    assert error.fix and "import a .gguf file" in error.fix
    assert not page.banner.isHidden() and page.banner.level == "error"
    assert f"Fix: {error.fix}" in page.banner.text()


def test_an_unexpected_exception_becomes_a_plain_message_and_its_traceback_goes_to_the_log(
    qtbot, qapp, caplog
) -> None:
    from gbdesk.ui.widgets import Banner
    from gbdesk.ui.workers import run_task

    banner = Banner()
    qtbot.addWidget(banner)
    failures: list[GbdeskError] = []

    def broken(_ctx) -> None:
        raise PermissionError(13, "Permission denied", "/var/lib/gbdesk/secret-file")

    with caplog.at_level(logging.ERROR, logger="gbdesk.ui.workers"):
        run_task("read the model list", broken, on_failed=failures.append)
        run_task("read the model list", broken, on_failed=banner.show_error)
        qtbot.waitUntil(lambda: bool(failures) and not banner.isHidden(), timeout=30_000)

    (error,) = failures
    assert isinstance(error, UnexpectedError)
    assert error.message == "Could not read the model list: something unexpected went wrong."
    assert error.fix and "log file" in error.fix
    assert error.details["exception"] == "PermissionError"
    shown = banner.text()
    for leak in ("Traceback", "Errno", "PermissionError", "secret-file", 'File "'):
        assert leak not in shown, shown
    # The traceback is in the log, for whoever reads it.
    records = [r for r in caplog.records if r.exc_info]
    assert records and "read the model list failed unexpectedly" in records[0].getMessage()
    assert records[0].exc_info[0] is PermissionError
    # It crosses JSON like any other typed error (the backend child's events carry the same).
    back = GbdeskError.from_json(error.to_json())
    assert type(back) is UnexpectedError and back.message == error.message
