from __future__ import annotations

import logging

from gbdesk.logs import redact, setup_logging
from gbdesk.paths import app_paths


def test_redact_masks_url_passwords_and_tokens() -> None:
    line = "connect postgresql://bot:s3cret@db:5432/gb with hf_abcdefghijkl and sk-abcdefghijklmnop"
    cleaned = redact(line)
    assert "s3cret" not in cleaned
    assert "hf_abcdefghijkl" not in cleaned
    assert "sk-abcdefghijklmnop" not in cleaned
    assert "postgresql://bot:***@db:5432/gb" in cleaned


def test_log_file_never_holds_a_password(capsys) -> None:
    setup_logging(verbose=True)
    logging.getLogger("gbdesk.test").info("url %s", "postgresql://u:hunter2@h/db")
    for handler in logging.getLogger("gbdesk").handlers:
        handler.flush()
    text = app_paths().log_file.read_text(encoding="utf-8")
    assert "postgresql://u:***@h/db" in text
    assert "hunter2" not in text
    assert "hunter2" not in capsys.readouterr().err
