"""What a node offers the fleet now: the value the registration and every heartbeat record.

The shard package only stores it; the app layer (:mod:`gbdesk.app.fleet`) measures it from the
backend, the measured speeds and the worker record, so the registry never imports the backend.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from gbdesk.errors import UsageError


@dataclass(frozen=True)
class NodeCapacity:
    """A node's reachable backend and what it can serve; None means "not known now".

    ``llm_url`` is the URL other machines use (the LAN address), or a loopback URL with
    ``reachable`` False when the backend listens on this machine only.
    """

    llm_url: str = ""
    reachable: bool = False
    llm_model: str | None = None  # None: keep the model registered
    embedding_url: str = ""
    embedding_model: str = ""
    embedding_dimensions: int | None = None
    tokens_per_second: float | None = None  # one conversation's decode speed
    slots: int | None = None  # conversations served at once (parallel)
    context_tokens: int | None = None  # what one conversation may fill (per slot)
    worker_endpoint: str | None = None  # host:port of this machine's `gbdesk worker`
    worker_free_bytes: int | None = None
    worker_total_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("embedding_dimensions", "slots", "context_tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise UsageError(f"node capacity: {name} must be a non-negative whole number")
        for name in ("worker_free_bytes", "worker_total_bytes"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise UsageError(f"node capacity: {name} must not be negative")
        speed = self.tokens_per_second
        if speed is not None and not (math.isfinite(speed) and speed >= 0):
            raise UsageError("node capacity: tokens_per_second must be a finite number >= 0")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
