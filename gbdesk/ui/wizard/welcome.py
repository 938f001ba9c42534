"""Step 1: what will happen, and where gbdesk puts its files."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel

from gbdesk.download.hub import hub_cache_dir
from gbdesk.paths import app_paths
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Card, muted
from gbdesk.ui.wizard.base import WizardPage


class WelcomePage(WizardPage):
    step_title = "Welcome"
    step_detail = "what will happen, and where gbdesk puts its files"

    def __init__(self, state: AppState) -> None:
        super().__init__(
            state,
            "Welcome to gbdesk",
            "In a few minutes this computer will answer your bot's questions with a language "
            "model running right here. Nothing leaves the machine.",
        )
        plan = Card("What will happen")
        # Filled from the wizard's own steps when it is shown (the same list as the steps on
        # the left, with the same numbers).
        self.plan = QGridLayout()
        self.plan.setHorizontalSpacing(12)
        self.plan.setVerticalSpacing(8)
        self.plan.setColumnStretch(1, 1)
        self.listed: list[str] = []  # the titles of the steps listed
        plan.body.addLayout(self.plan)
        self.body.addWidget(plan)

        paths = app_paths()
        files = Card("Where files go")
        for caption, path in (
            ("Settings", paths.config_dir),
            ("Imported models, chats and the embedded database", paths.data_dir),
            ("Downloaded models (the Hugging Face cache)", hub_cache_dir()),
            ("Logs", paths.log_dir),
        ):
            line = QLabel(f"{caption}<br><code>{path}</code>")
            line.setWordWrap(True)
            files.body.addWidget(line)
        files.body.addWidget(muted("You can change the models folder later in Settings."))
        self.body.addWidget(files)
        self.body.addStretch(1)

    def enter(self) -> None:
        if self.wizard is not None and not self.listed:
            self.show_plan([(page.step_title, page.step_detail) for page in self.wizard.pages])

    def show_plan(self, steps: list[tuple[str, str]]) -> None:
        """List ``steps`` (title, what it does), numbered from 1."""
        self.listed = [title for title, _detail in steps]
        for row, (title, detail) in enumerate(steps):
            number = QLabel(str(row + 1))
            number.setObjectName("SectionTitle")
            number.setFixedWidth(18)
            self.plan.addWidget(number, row, 0)
            text = QLabel(f"<b>{title}</b>: {detail}" if detail else f"<b>{title}</b>")
            text.setWordWrap(True)
            self.plan.addWidget(text, row, 1)

    def next_label(self) -> str:
        return "Let's start"
