"""Step 1: what will happen, and where gbdesk puts its files."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel

from gbdesk.paths import app_paths
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Card, muted
from gbdesk.ui.wizard.base import WizardPage

STEPS = (
    ("Look at this computer", "processor, memory, disk and graphics card"),
    ("Pick a model that fits", "with the reason it fits, before anything is downloaded"),
    ("Download it", "pause and resume at any time; the starter model is already here"),
    ("Start the bot backend", "an OpenAI-compatible server on this computer for your bot"),
    ("Register as a shard", "optional: make this computer a node of your General Bots install"),
)


class WelcomePage(WizardPage):
    step_title = "Welcome"

    def __init__(self, state: AppState) -> None:
        super().__init__(
            state,
            "Welcome to gbdesk",
            "In a few minutes this computer will answer your bot's questions with a language "
            "model running right here. Nothing leaves the machine.",
        )
        plan = Card("What will happen")
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(8)
        for row, (title, detail) in enumerate(STEPS):
            number = QLabel(str(row + 1))
            number.setObjectName("SectionTitle")
            number.setFixedWidth(18)
            grid.addWidget(number, row, 0)
            text = QLabel(f"<b>{title}</b>: {detail}")
            text.setWordWrap(True)
            grid.addWidget(text, row, 1)
        grid.setColumnStretch(1, 1)
        plan.body.addLayout(grid)
        self.body.addWidget(plan)

        paths = app_paths()
        files = Card("Where files go")
        for caption, path in (
            ("Settings", paths.config_dir),
            ("Imported models, chats and the embedded database", paths.data_dir),
            ("Downloaded models (the Hugging Face cache)", "HF_HOME or ~/.cache/huggingface"),
            ("Logs", paths.log_dir),
        ):
            line = QLabel(f"{caption}<br><code>{path}</code>")
            line.setWordWrap(True)
            files.body.addWidget(line)
        files.body.addWidget(muted("You can change the models folder later in Settings."))
        self.body.addWidget(files)
        self.body.addStretch(1)

    def next_label(self) -> str:
        return "Let's start"
