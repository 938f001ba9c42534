"""Logging: a rotating file in the logs folder, and stderr for the command line."""

from __future__ import annotations

import logging
import logging.handlers
import re

from gbdesk.paths import AppPaths, app_paths

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# user:password@ in URLs, and common token shapes, never reach a log file.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+):[^@\s]+@")
_TOKENS = re.compile(r"\b(hf_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_-]{8,})\b")


def redact(text: str) -> str:
    """Mask passwords in URLs and Hub/OpenAI-style tokens."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}:***@", text)
    return _TOKENS.sub("***", text)


class RedactingFilter(logging.Filter):
    """Masks secrets in every record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(
    *, verbose: bool = False, to_stderr: bool = True, paths: AppPaths | None = None
) -> None:
    """Send gbdesk's log records to the rotating log file (and stderr for the CLI).

    Safe to call more than once: handlers are replaced, not added twice.
    """
    paths = (paths or app_paths()).ensure()
    root = logging.getLogger("gbdesk")
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    redactor = RedactingFilter()
    file_handler = logging.handlers.RotatingFileHandler(
        paths.log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    file_handler.addFilter(redactor)
    root.addHandler(file_handler)
    # llama.cpp reports every tensor it loads: its debug lines only when asked for (-v).
    logging.getLogger("gbdesk.llama_cpp").setLevel(logging.DEBUG if verbose else logging.INFO)
    if to_stderr:
        console = logging.StreamHandler()
        console.setLevel(logging.DEBUG if verbose else logging.WARNING)
        console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        console.addFilter(redactor)
        root.addHandler(console)
