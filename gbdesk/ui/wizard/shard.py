"""Step 6 (optional): register this computer as a shard of General Bots."""

from __future__ import annotations

from gbdesk.ui.shard_panel import ShardPanel
from gbdesk.ui.state import AppState
from gbdesk.ui.wizard.base import WizardPage


class ShardPage(WizardPage):
    step_title = "Register as a shard"
    step_detail = "optional: make this computer a node of your General Bots install"

    def __init__(self, state: AppState) -> None:
        super().__init__(
            state,
            "Register as a shard (optional)",
            "botserver can route tenants to this computer. Registration records it in "
            "PostgreSQL: gbdesk's own embedded database, or your botserver's.",
        )
        self.panel = ShardPanel(state)
        self.panel.registered.connect(lambda _result: self.complete_changed.emit())
        # Beat from now on when the backend started on the previous step is serving.
        self.panel.registered.connect(lambda _result: state.node_registered())
        self.body.addWidget(self.panel)
        self.body.addStretch(1)

    def can_skip(self) -> bool:
        return self.panel.result is None and not self.panel.is_busy()

    def is_complete(self) -> bool:
        return self.panel.result is not None

    def summary_line(self) -> str:
        if self.panel.result is None:
            return "Not registered as a shard (you can do it later on the Node page)."
        return f"Registered as shard {self.panel.result.registration.shard_id}."
