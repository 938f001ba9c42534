"""The first-run wizard (also reachable later from File → Run the setup wizard)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from gbdesk.ui.state import AppState
from gbdesk.ui.wizard.backend import BackendPage
from gbdesk.ui.wizard.base import WizardFrame, WizardPage
from gbdesk.ui.wizard.choose_model import ChooseModelPage
from gbdesk.ui.wizard.done import DonePage
from gbdesk.ui.wizard.download import DownloadPage
from gbdesk.ui.wizard.hardware import HardwarePage
from gbdesk.ui.wizard.shard import ShardPage
from gbdesk.ui.wizard.welcome import WelcomePage


def build_pages(state: AppState) -> list[WizardPage]:
    return [
        WelcomePage(state),
        HardwarePage(state),
        ChooseModelPage(state),
        DownloadPage(state),
        BackendPage(state),
        ShardPage(state),
        DonePage(state),
    ]


class FirstRunWizard(WizardFrame):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(state, build_pages(state), parent)


__all__ = ["FirstRunWizard", "WizardFrame", "WizardPage"]
