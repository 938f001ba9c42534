"""Step 7: what was set up, then the main window opens on the chat page."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Card, muted
from gbdesk.ui.wizard.base import WizardPage


class DonePage(WizardPage):
    step_title = "Done"
    step_detail = "a summary, then the chat window to try the model"

    def __init__(self, state: AppState) -> None:
        super().__init__(
            state,
            "All set",
            "gbdesk is ready. The main window opens on the chat page so you can try the model.",
        )
        self.summary_card = Card("What is set up")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary_card.body.addWidget(self.summary)
        self.body.addWidget(self.summary_card)
        self.body.addWidget(
            muted(
                "Closing the window keeps the backend running in the system tray; Quit in the "
                "tray or the File menu stops it. Run this wizard again from File → Run the setup "
                "wizard."
            )
        )
        self.body.addStretch(1)

    def enter(self) -> None:
        lines = []
        if self.wizard is not None:
            for page in self.wizard.pages:
                line = getattr(page, "summary_line", lambda: "")()
                if line:
                    lines.append(f"• {line}")
        self.summary.setText("<br>".join(lines) or "Nothing changed.")
