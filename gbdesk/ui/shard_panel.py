"""The shard registration form and its result, shared by the wizard and the Node page."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gbdesk.app.shard_actions import ShardResult, register_this_node
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Banner, Card, choose_env_file, muted, primary_button
from gbdesk.ui.workers import TaskHandle, run_task


class RegistrationView(Card):
    """The registration's fields in two columns (empty until :meth:`show_result`)."""

    FIELDS = (
        ("shard", "Shard"),
        ("region", "Region"),
        ("tenants", "Tenant ids"),
        ("database", "Database"),
        ("backend", "Backend"),
        ("seen", "Last seen"),
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Registration", parent)
        grid = QGridLayout()
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(6)
        self.values: dict[str, QLabel] = {}
        for row, (key, caption) in enumerate(self.FIELDS):
            grid.addWidget(muted(caption, wrap=False), row, 0)
            value = QLabel("-")
            value.setWordWrap(True)
            grid.addWidget(value, row, 1)
            self.values[key] = value
        grid.setColumnStretch(1, 1)
        self.body.addLayout(grid)

    def show_result(self, result: ShardResult) -> None:
        r = result.registration
        where = "embedded PostgreSQL" if result.embedded else "PostgreSQL"
        self.values["shard"].setText(
            f"<b>{r.shard_id}</b> ({'active' if r.is_active else 'inactive'}"
            f"{', primary' if r.is_primary else ''}), node {r.node_id[:8]}"
        )
        self.values["region"].setText(f"{r.region_code}, datacenter {r.datacenter}")
        self.values["tenants"].setText(f"{r.min_tenant_id} to {r.max_tenant_id}")
        self.values["database"].setText(f"{r.connection} ({where})")
        self.values["backend"].setText(f"{r.llm_url}  {r.llm_model or ''}".strip())
        self.set_last_seen(r.last_seen_at)

    def set_last_seen(self, when: Any) -> None:
        self.values["seen"].setText(when.astimezone().strftime("%Y-%m-%d %H:%M:%S"))


class ShardPanel(QWidget):
    """Where to register (embedded or a URL), the shard's options, Register, and the result."""

    registered = Signal(object)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.result: ShardResult | None = None
        self._task: TaskHandle | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)

        form_card = Card("Where and how")
        self.embedded_choice = QRadioButton("gbdesk's own database (embedded PostgreSQL)")
        self.url_choice = QRadioButton("botserver's PostgreSQL at this address:")
        group = QButtonGroup(self)
        group.addButton(self.embedded_choice)
        group.addButton(self.url_choice)
        self.embedded_choice.setChecked(True)
        self.database_url = QLineEdit()
        self.database_url.setPlaceholderText("postgresql://user:password@host:5432/botserver")
        self.database_url.setEchoMode(QLineEdit.EchoMode.PasswordEchoOnEdit)
        self.database_url.setEnabled(False)
        self.url_choice.toggled.connect(self.database_url.setEnabled)
        form_card.body.addWidget(self.embedded_choice)
        form_card.body.addWidget(self.url_choice)
        form_card.body.addWidget(self.database_url)

        form = QFormLayout()
        form.setHorizontalSpacing(16)
        form.setVerticalSpacing(8)
        self.shard_id = QSpinBox()
        self.shard_id.setRange(0, 1023)
        self.shard_id.setValue(1)
        form.addRow("Shard id", self.shard_id)
        self.region = QComboBox()
        self.region.setEditable(False)
        self._fill_regions()
        form.addRow("Region", self.region)
        self.datacenter = QLineEdit("local")
        self.datacenter.setMaxLength(32)
        form.addRow("Datacenter", self.datacenter)
        self.env_file = QLineEdit()
        self.env_file.setPlaceholderText(
            "optional: botserver's .env gets SHARD_ID and DATABASE_URL"
        )
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_env_file)
        env_row = QHBoxLayout()
        env_row.addWidget(self.env_file, 1)
        env_row.addWidget(browse)
        form.addRow("botserver .env", env_row)
        form_card.body.addLayout(form)
        buttons = QHBoxLayout()
        self.progress_label = muted("", wrap=False)
        self.register_button = primary_button("Register this computer")
        self.register_button.clicked.connect(self.register)
        buttons.addWidget(self.progress_label, 1)
        buttons.addWidget(self.register_button)
        form_card.body.addLayout(buttons)
        layout.addWidget(form_card)

        self.banner = Banner()
        layout.addWidget(self.banner)
        self.view = RegistrationView()
        self.view.hide()
        layout.addWidget(self.view)

    def _fill_regions(self) -> None:
        from gbdesk.shard.regions import countries

        for code, name in countries().items():
            self.region.addItem(f"{code}  {name}", code)
        index = self.region.findData("USA")
        self.region.setCurrentIndex(max(0, index))

    def _choose_env_file(self) -> None:
        choose_env_file(self, self.env_file)

    def is_busy(self) -> bool:
        return self._task is not None

    def register(self) -> None:
        if self._task is not None:
            return
        url = self.database_url.text().strip() if self.url_choice.isChecked() else ""
        if self.url_choice.isChecked() and not url:
            self.banner.show_message(
                "Write the PostgreSQL address first.",
                "for example postgresql://user:password@host:5432/botserver",
            )
            return
        self.banner.clear()
        self.register_button.setEnabled(False)
        self.progress_label.setText(
            "Starting the embedded database and registering…" if not url else "Registering…"
        )
        settings = self.state.settings
        profile = self.state.profile.to_json() if self.state.profile is not None else None
        options = {
            "database_url": url,
            "shard_id": self.shard_id.value(),
            "region": self.region.currentData(),
            "datacenter": self.datacenter.text().strip() or None,
            "env_file": self.env_file.text().strip(),
            "hardware_profile": profile,
        }
        self._task = run_task(
            "shard registration",
            lambda _ctx: register_this_node(settings, **options),
            on_done=self._on_registered,
            on_failed=self._on_failed,
            on_finished=self._on_finished,
        )

    def _on_registered(self, result: ShardResult) -> None:
        self.result = result
        verb = "Registered" if result.created else "Already registered; refreshed"
        extra = (
            f" botserver's {result.env_file} now has SHARD_ID and DATABASE_URL."
            if (result.env_file)
            else ""
        )
        self.banner.show_message(
            f"{verb}: this computer is shard {result.registration.shard_id}.{extra}",
            level="success",
        )
        self.view.show_result(result)
        self.view.show()
        self.registered.emit(result)

    def _on_failed(self, message: str, fix: str) -> None:
        self.banner.show_message(message, fix)

    def _on_finished(self) -> None:
        self._task = None
        self.progress_label.setText("")
        self.register_button.setEnabled(True)
