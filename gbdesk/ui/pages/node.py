"""Node: this computer's shard registration, its heartbeat, (re-)registration, and the fleet.

The heartbeat (``last_seen_at`` every 30 s, so botserver knows the node is alive) runs next to
the backend, in :class:`gbdesk.ui.heartbeat_control.NodeHeartbeat`; this page shows its last
beat and can send one now. The fleet table (:class:`gbdesk.ui.fleet_table.FleetTable`) lists
every node of the registry and is read again after each beat.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget

from gbdesk.app.shard_actions import (
    ShardResult,
    heartbeat,
    registration_status,
    unregister_this_node,
)
from gbdesk.errors import GbdeskError
from gbdesk.ui.fleet_table import FleetTable
from gbdesk.ui.shard_panel import ShardPanel
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Banner, muted, scrolling_page_layout
from gbdesk.ui.worker_panel import WorkerPanel
from gbdesk.ui.workers import run_task


class NodePage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = scrolling_page_layout(
            self,
            "Node",
            "This computer as a shard of General Bots: where it is "
            "registered, and whether botserver sees it alive.",
        )
        self.status_banner = Banner()
        layout.addWidget(self.status_banner)
        row = QHBoxLayout()
        self.heartbeat_label = muted("Heartbeat: not registered yet")
        self.beat_button = QPushButton("Send a heartbeat now")
        self.beat_button.clicked.connect(self.beat)
        self.unregister_button = QPushButton("Unregister")
        self.unregister_button.setProperty("danger", True)
        self.unregister_button.clicked.connect(self.unregister)
        row.addWidget(self.heartbeat_label, 1)
        row.addWidget(self.beat_button)
        row.addWidget(self.unregister_button)
        layout.addLayout(row)
        self.panel = ShardPanel(state)
        self.panel.registered.connect(self._on_registered)
        layout.addWidget(self.panel)
        self.fleet = FleetTable(state)
        layout.addWidget(self.fleet)
        self.worker_panel = WorkerPanel(state)
        layout.addWidget(self.worker_panel)
        layout.addStretch(1)
        self._busy = False
        self._registered = False
        heartbeat = state.heartbeat
        heartbeat.beat.connect(self._on_beat)
        heartbeat.failed.connect(self._on_heartbeat_failed)
        heartbeat.running_changed.connect(lambda _running: self._show_last_beat())
        state.backend.state_changed.connect(self._show_backend)
        self._set_registered(False)
        self.refresh()

    def _set_registered(self, registered: bool) -> None:
        self._registered = registered
        self.beat_button.setEnabled(registered)
        self.unregister_button.setEnabled(registered)

    def _show_last_beat(self) -> None:
        if not self._registered:
            return
        last = self.state.heartbeat.last_beat
        seen = f"last seen {last.astimezone():%H:%M:%S}" if last is not None else "no beat yet"
        every = (
            "every 30 s while the backend runs"
            if self.state.heartbeat.running
            else "sent while the backend runs (stopped now)"
        )
        self.heartbeat_label.setText(f"Heartbeat: {seen}, {every}")

    def refresh(self) -> None:
        """Read the registration from the database (in a worker)."""
        settings = self.state.settings
        self._run(
            "read the registration", lambda _ctx: registration_status(settings), self._on_status
        )

    def _run(self, name: str, fn, on_done) -> None:
        if self._busy:
            return
        self._busy = True
        run_task(
            name, fn, on_done=on_done, on_failed=self._on_failed, on_finished=self._on_finished
        )

    def _on_finished(self) -> None:
        self._busy = False

    def _on_failed(self, error: GbdeskError) -> None:
        from gbdesk.ui.shard_panel import plain_database_error

        self.status_banner.show_message(*plain_database_error(error))
        self.heartbeat_label.setText("Heartbeat: failed (see above)")

    def _on_status(self, result: ShardResult | None) -> None:
        self.fleet.refresh()  # the registry may list other computers, registered here or not
        if result is None:
            self.heartbeat_label.setText("Heartbeat: not registered yet")
            self._set_registered(False)
            return
        self._on_registered(result)

    def _on_registered(self, result: ShardResult) -> None:
        self.status_banner.clear()
        self.panel.result = result
        self.panel.view.show_result(result)
        self.panel.view.show()
        self._set_registered(True)
        self._on_beat(result.registration.last_seen_at)
        self.state.node_registered()

    def _on_heartbeat_failed(self, error: GbdeskError) -> None:
        from gbdesk.ui.shard_panel import plain_database_error

        message, fix = plain_database_error(error)
        self.status_banner.show_message(f"The heartbeat failed: {message}", fix)

    def beat(self) -> None:
        settings = self.state.settings
        state = self.state
        self._run(
            "heartbeat",
            lambda _ctx: heartbeat(settings, state.backend_api_key()),
            self._on_beat,
        )

    def _show_backend(self, _view=None) -> None:
        """The registration's backend line follows the model served now (each beat sends it)."""
        if self.panel.result is None:
            return
        model = self.state.served_model_name()
        registration = self.panel.result.registration
        # The address the registry gives other computers, not the one this computer uses.
        where = "" if registration.llm_url_reachable else " (this computer only)"
        if model:
            self.panel.view.values["backend"].setText(f"{registration.llm_url}{where}  {model}")

    def _on_beat(self, seen: datetime) -> None:
        self.status_banner.clear()
        heartbeat = self.state.heartbeat
        if heartbeat.last_beat is None or seen > heartbeat.last_beat:
            heartbeat.last_beat = seen
        self._show_last_beat()
        if self.panel.result is not None:
            self.panel.view.set_last_seen(seen)
            self._show_backend()
        if self.isVisible():  # each beat records this node's capacity: show it
            self.fleet.refresh()

    def unregister(self) -> None:
        settings = self.state.settings
        self._run("unregister", lambda _ctx: unregister_this_node(settings), self._on_unregistered)

    def _on_unregistered(self, shard_id: int) -> None:
        self.fleet.refresh()
        self.panel.result = None
        self.panel.view.hide()
        self._set_registered(False)
        self.heartbeat_label.setText("Heartbeat: not registered")
        self.status_banner.show_message(
            f"Unregistered; shard {shard_id} is now inactive.", level="info"
        )
