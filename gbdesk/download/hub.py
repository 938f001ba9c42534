"""Where the Hub is and how to reach it: endpoint, cache folder, offline mode, token.

huggingface_hub reads ``HF_ENDPOINT``, ``HF_HOME`` and friends once, when it is imported. gbdesk
reads them on every call instead (the settings can change while the app runs, and tests change
the environment) and passes them to huggingface_hub explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HUB_TOKEN_SECRET = "hub-token"
DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class HubConfig:
    """How to talk to the Hub. ``token`` is never printed: its repr hides it."""

    endpoint: str
    cache_dir: Path
    offline: bool = False
    token: str | None = None

    def __repr__(self) -> str:
        token = "set" if self.token else "none"
        return (
            f"HubConfig(endpoint={self.endpoint!r}, cache_dir={str(self.cache_dir)!r}, "
            f"offline={self.offline}, token={token})"
        )

    def model_page(self, repo: str) -> str:
        """The repo's web page on this endpoint (where the licence is accepted)."""
        return f"{self.endpoint}/{repo}"


def hub_cache_dir() -> Path:
    """The Hugging Face cache, resolved as huggingface_hub does: ``HF_HUB_CACHE`` (or its old
    name ``HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``. Read on every call
    without importing huggingface_hub (the wizard's first page shows it)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(cache, "huggingface")
    return Path(home).expanduser() / "hub"


def hub_endpoint(setting: str = "") -> str:
    """The endpoint: the ``hub_endpoint`` setting, else ``HF_ENDPOINT``, else huggingface.co."""
    value = setting.strip() or os.environ.get("HF_ENDPOINT", "").strip() or DEFAULT_ENDPOINT
    return value.rstrip("/")


def hub_reachable(endpoint: str, *, timeout_s: float = 2.0) -> bool:
    """Whether a TCP connection to the Hub ``endpoint`` opens within ``timeout_s`` (False in
    offline mode). A quick test before offering a download; the download itself reports why."""
    import socket
    from urllib.parse import urlsplit

    if offline_mode():
        return False
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def offline_mode() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set."""
    raw = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return raw.strip().lower() in _TRUE


def find_token() -> str | None:
    """A Hub token: ``HF_TOKEN``, else the huggingface_hub login, else gbdesk's keyring entry."""
    if token := os.environ.get("HF_TOKEN", "").strip():
        return token
    from huggingface_hub import get_token

    if hub_token := get_token():
        return hub_token
    from gbdesk.secrets import get_secret

    return get_secret(HUB_TOKEN_SECRET) or None


def load_hub_config() -> HubConfig:
    """The configuration for this call, from the settings and the environment.

    Raises:
        ConfigError: the settings file is invalid.
    """
    from gbdesk.settings import load_settings

    settings = load_settings()
    return HubConfig(
        endpoint=hub_endpoint(settings.hub_endpoint),
        cache_dir=hub_cache_dir(),
        offline=offline_mode(),
        token=find_token(),
    )
