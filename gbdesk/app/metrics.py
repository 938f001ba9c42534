"""The backend's figures for the Dashboard, read from its ``GET /metrics`` (Prometheus text).

No Qt: :func:`fetch_metrics` runs in a worker while the Dashboard is visible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gbdesk.backend.client import BackendClient, BackendUnreachableError
from gbdesk.errors import GbdeskError

# The generation routes: what a person calls "requests" (not /health or /metrics polls).
_GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class MetricsError(GbdeskError):
    """The backend's /metrics could not be read."""


@dataclass(frozen=True)
class BackendMetrics:
    """What the Dashboard shows about the running backend."""

    tokens_per_second: float
    requests: int  # chat and completion requests answered
    queued: int  # requests waiting for a slot
    processing: int  # requests holding a slot
    slots: int
    completion_tokens: int


def parse_metrics(text: str) -> BackendMetrics:
    """The Dashboard's figures from gbdesk's Prometheus text (missing samples count as 0)."""
    values: dict[str, float] = {}
    requests = 0.0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        name = match["name"]
        if name == "gbdesk_requests_total":
            labels = dict(_LABEL.findall(match["labels"] or ""))
            if labels.get("path") in _GENERATION_PATHS:
                requests += value
        else:
            values[name] = value
    return BackendMetrics(
        tokens_per_second=values.get("gbdesk_tokens_per_second", 0.0),
        requests=int(requests),
        queued=int(values.get("gbdesk_requests_queued", 0)),
        processing=int(values.get("gbdesk_requests_processing", 0)),
        slots=int(values.get("gbdesk_slots", 0)),
        completion_tokens=int(values.get("gbdesk_completion_tokens_total", 0)),
    )


def fetch_metrics(
    base_url: str, api_key: str | None = None, timeout_s: float = 2.0
) -> BackendMetrics:
    """GET ``base_url``/metrics and parse it.

    Raises:
        MetricsError: the backend cannot be reached or answers with an error.
    """
    try:
        response = BackendClient(base_url, api_key=api_key, timeout_s=timeout_s).get("/metrics")
    except BackendUnreachableError as exc:
        raise MetricsError(
            exc.message.replace("cannot reach the server", "cannot read the backend's figures"),
            fix="start the backend",
        ) from exc
    if response.status != 200:
        raise MetricsError(
            f"the backend's /metrics answered HTTP {response.status}",
            fix="check the backend's log",
        )
    return parse_metrics(response.text)
