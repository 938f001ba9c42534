"""The Node page's fleet table: every node of the registry, as `gbdesk fleet` lists it.

The list is read in a worker (:func:`gbdesk.app.fleet.list_fleet`), never on the GUI thread; the
cells are the CLI's own (:func:`gbdesk.app.fleet.fleet_row`), with headers in plain words.
"""

from __future__ import annotations

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from gbdesk.app.fleet import FleetResult, fleet_row, list_fleet
from gbdesk.errors import GbdeskError
from gbdesk.shard.heartbeat import STALE_AFTER_S
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Banner, Card, muted, scrolls_sideways
from gbdesk.ui.workers import TaskHandle, run_task

# fleet_row's keys, in order, with the words the table shows.
COLUMNS = (
    ("id", "Node"),
    ("name", "Computer"),
    ("shard", "Shard"),
    ("url", "Address for other computers"),
    ("model", "Model"),
    ("ctx", "Context"),
    ("slots", "Slots"),
    ("tok/s", "Tokens/s"),
    ("worker", "Worker"),
    ("last seen", "Last seen"),
    ("state", "State"),
)
_STATE_WORDS = {"live": "Live", "stale": "Silent"}
_STALE_COLOUR = QColor("#b26a00")


class FleetTable(Card):
    """Every node of the registry; refreshed on demand and after this node's beats."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Fleet", parent)
        self.state = state
        self.note = muted(
            "Every computer registered in this registry. A computer is shown as silent when "
            f"it has not been heard from for {STALE_AFTER_S:.0f} seconds; bots are not sent "
            "to it."
        )
        self.body.addWidget(self.note)
        self.banner = Banner()
        self.body.addWidget(self.banner)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([caption for _, caption in COLUMNS])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        # Every column as wide as its header and cells (a stretched one cut its header short);
        # the last one takes what is left, and the table scrolls sideways when it must.
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        scrolls_sideways(self.table)  # eleven columns: wider than a small window
        self.body.addWidget(self.table)
        row = QHBoxLayout()
        self.summary = muted("Not read yet.")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        row.addWidget(self.summary, 1)
        row.addWidget(self.refresh_button)
        self.body.addLayout(row)
        self.result: FleetResult | None = None
        self._task: TaskHandle | None = None

    def is_busy(self) -> bool:
        return self._task is not None

    def refresh(self) -> None:
        """Read the fleet again (in a worker); a refresh in progress is not doubled."""
        if self._task is not None:
            return
        settings = self.state.settings
        self.refresh_button.setEnabled(False)
        self._task = run_task(
            "read the fleet",
            lambda _ctx: list_fleet(settings),
            on_done=self.show_fleet,
            on_failed=self._on_failed,
            on_finished=self._on_finished,
        )

    def _on_finished(self) -> None:
        self._task = None
        self.refresh_button.setEnabled(True)

    def _on_failed(self, error: GbdeskError) -> None:
        from gbdesk.ui.shard_panel import plain_database_error

        message, fix = plain_database_error(error)
        self.banner.show_message(f"The fleet could not be read: {message}", fix)

    def show_fleet(self, result: FleetResult) -> None:
        self.result = result
        self.banner.clear()
        self.table.setRowCount(len(result.nodes))
        for index, node in enumerate(result.nodes):
            cells = fleet_row(node)
            cells["state"] = _STATE_WORDS.get(cells["state"], cells["state"])
            if node.node_id == result.this_node_id:
                cells["name"] += " (this computer)"
            for column, (key, _) in enumerate(COLUMNS):
                item = QTableWidgetItem(cells[key])
                if key == "id":
                    item.setToolTip(node.node_id)
                if node.stale:
                    item.setForeground(QBrush(_STALE_COLOUR))
                self.table.setItem(index, column, item)
        live = sum(1 for node in result.nodes if not node.stale)
        if result.nodes:
            count = len(result.nodes)
            self.summary.setText(f"{count} computer{'s' if count != 1 else ''}, {live} live.")
        else:
            self.summary.setText("No computer is registered yet.")
