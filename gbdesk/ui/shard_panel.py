"""The shard registration form and its result, shared by the wizard and the Node page."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
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
from gbdesk.errors import GbdeskError
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import (
    Banner,
    Card,
    ElidingComboBox,
    choose_env_file,
    muted,
    primary_button,
)
from gbdesk.ui.workers import TaskHandle, run_task

ALL_TENANTS_MAX = 2**63 - 1  # the registry's default range ends at PostgreSQL's largest BIGINT

_WHERE = re.compile(r"at (?P<where>[^\s:()]+:\d+)")
# Driver messages, and what they mean to a person: (text in the message, meaning, fix).
_DATABASE_MEANINGS = (
    (
        "ssl negotiation",
        "The program at {where} is not a PostgreSQL server.",
        "check the host and port in the address; botserver's PostgreSQL usually listens on 5432",
    ),
    (
        "connection refused",
        "Nothing answers at {where}: the database is not running there.",
        "start botserver's database, or check the host and port in the address",
    ),
    (
        "password authentication failed",
        "The database at {where} refused the user name or password.",
        "check the user and password in the address (botserver's .env has them)",
    ),
    (
        "does not exist",
        "The database named in the address does not exist at {where}.",
        "check the database name at the end of the address (botserver's is usually botserver)",
    ),
    (
        "timeout expired",
        "The database at {where} did not answer in time.",
        "check that this computer can reach it (network, firewall), then try again",
    ),
    (
        "could not translate host name",
        "The database's host name in the address is unknown.",
        "check the spelling of the host in the address",
    ),
)


def plain_database_error(error: GbdeskError) -> tuple[str, str]:
    """(message, fix) of a database failure in words a person can act on: no driver text, no
    command line."""
    message, fix = error.message, error.fix or ""
    lowered = message.lower()
    match = _WHERE.search(message)
    where = match.group("where") if match else "that address"
    for needle, meaning, advice in _DATABASE_MEANINGS:
        if needle in lowered:
            return meaning.format(where=where), advice
    if "`" in fix or "--" in fix:
        fix = "check the database address, then try again; the log has the details"
    return message, fix


def split_password(url: str) -> tuple[str, str]:
    """(the URL without its password, the password); a URL without one comes back as is."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url, ""
    if not password or "@" not in parts.netloc:
        return url, ""
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), password


def join_password(url: str, password: str) -> str:
    """``url`` with ``password`` put back in (quoted), when it has a user and no password."""
    from urllib.parse import quote, urlsplit, urlunsplit

    if not password:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc or parts.password:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def tenant_range_text(low: int, high: int) -> str:
    """The tenants this shard serves, in words ("all tenants" for the default range)."""
    if low <= 1 and high >= ALL_TENANTS_MAX:
        return "All tenants (this is the only shard)"
    return f"Tenants {low} to {high}"


class RegistrationView(Card):
    """The registration's fields in two columns (empty until :meth:`show_result`)."""

    FIELDS = (
        ("shard", "Shard"),
        ("region", "Region"),
        ("tenants", "Tenants"),
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
        self.values["tenants"].setText(tenant_range_text(r.min_tenant_id, r.max_tenant_id))
        self.values["database"].setText(f"{r.connection} ({where})")
        where = "" if r.llm_url_reachable else " (this computer only)"
        self.values["backend"].setText(f"{r.llm_url}{where}  {r.llm_model or ''}".strip())
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
        # The address is shown; only its password is hidden (in a field of its own).
        self.database_url = QLineEdit()
        self.database_url.setPlaceholderText("postgresql://user@host:5432/botserver")
        self.database_url.editingFinished.connect(self._move_password_out)
        self.database_password = QLineEdit()
        self.database_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.database_password.setPlaceholderText("password")
        url_row = QHBoxLayout()
        url_row.addWidget(self.database_url, 3)
        url_row.addWidget(self.database_password, 1)
        for field in (self.database_url, self.database_password):
            field.setEnabled(False)
            self.url_choice.toggled.connect(field.setEnabled)
        form_card.body.addWidget(self.embedded_choice)
        form_card.body.addWidget(self.url_choice)
        form_card.body.addLayout(url_row)

        form = QFormLayout()
        form.setHorizontalSpacing(16)
        form.setVerticalSpacing(8)
        self.shard_id = QSpinBox()
        self.shard_id.setRange(0, 1023)
        self.shard_id.setValue(1)
        form.addRow("Shard id", self.shard_id)
        self.region = ElidingComboBox()  # long country names end in "…" when narrow
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
        self.progress_label = muted("")
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

    def _move_password_out(self) -> None:
        """A pasted URL with a password: the password goes to its hidden field."""
        url, password = split_password(self.database_url.text().strip())
        if password:
            self.database_url.setText(url)
            self.database_password.setText(password)

    def full_database_url(self) -> str:
        """The address with its password, as the registration needs it (never shown)."""
        self._move_password_out()
        return join_password(self.database_url.text().strip(), self.database_password.text())

    def is_busy(self) -> bool:
        return self._task is not None

    def register(self) -> None:
        if self._task is not None:
            return
        url = self.full_database_url() if self.url_choice.isChecked() else ""
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
            lambda _ctx: self._register_noting_embedded(settings, options),
            on_done=self._on_registered,
            on_failed=self._on_failed,
            on_finished=self._on_finished,
        )

    def _register_noting_embedded(self, settings, options: dict) -> ShardResult:
        """Register (in a worker); tells the app when it started the embedded database, so
        Quit can stop it again."""
        from gbdesk.shard.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres()
        was_running = embedded.is_running()
        try:
            return register_this_node(settings, api_key=self.state.backend_api_key(), **options)
        finally:
            if not was_running and embedded.is_running():
                self.state.note_embedded_started()

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

    def _on_failed(self, error: GbdeskError) -> None:
        self.banner.show_message(*plain_database_error(error))

    def _on_finished(self) -> None:
        self._task = None
        self.progress_label.setText("")
        self.register_button.setEnabled(True)
