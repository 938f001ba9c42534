"""Errors of the bot backend: those a person acts on, and those an HTTP client gets back."""

from __future__ import annotations

from dataclasses import dataclass

from gbdesk.errors import ExitCode, GbdeskError


class ModelLoadError(GbdeskError):
    """The model file is missing, not a GGUF file, damaged, or llama.cpp cannot load it."""

    exit_code = ExitCode.MODEL_LOAD


class PortInUseError(GbdeskError):
    """The backend's port is taken by another program."""

    exit_code = ExitCode.PORT_IN_USE


class BackendStartError(GbdeskError):
    """The backend process exited or did not become healthy in time."""

    exit_code = ExitCode.BACKEND_START


@dataclass(frozen=True)
class RequestError(Exception):
    """A request the server answers with an OpenAI-shaped error body.

    ``kind`` is OpenAI's ``type`` (``invalid_request_error``, ``authentication_error``, ...).
    """

    status: int
    message: str
    kind: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.message}"

    def body(self) -> dict[str, object]:
        """The JSON body OpenAI's clients parse: ``{"error": {...}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code if self.code is not None else self.status,
            }
        }
