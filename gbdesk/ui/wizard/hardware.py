"""Step 2: this computer, as the probe sees it, with each diagnostic and its fix."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from gbdesk.ui.calibration_control import MeasuringLabel
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Banner, Card, DiagnosticRow, human_bytes, muted
from gbdesk.ui.wizard.base import WizardPage
from gbdesk.ui.workers import run_task


def isa_name(feature: str) -> str:
    """How a person reads one of the probe's instruction-set names: ``avx512f`` -> "AVX-512F",
    ``avx512_vnni`` -> "AVX-512 VNNI", ``sse4_1`` -> "SSE4.1", ``neon`` -> "NEON"."""
    name = feature.upper()
    if name.startswith("AVX512"):
        rest = name.removeprefix("AVX512")
        return "AVX-512" + (" " + rest.lstrip("_") if rest.startswith("_") else rest)
    if name.startswith("SSE4_"):
        return name.replace("_", ".")
    return "DotProd" if name == "DOTPROD" else name.replace("_", "-")


def isa_summary(features: tuple[str, ...]) -> str:
    """Every instruction set the probe found (what ``gbdesk probe`` lists), in its order."""
    return ", ".join(isa_name(f) for f in features) or "none detected"


def _probe(_ctx: Any) -> Any:
    from gbdesk.hardware.probe import probe

    return probe()


class HardwareSummary(QWidget):
    """Cards for CPU, memory, disk, GPUs and the inference build, plus diagnostics."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(12)
        self.cpu = self._card("Processor", 0, 0)
        self.memory = self._card("Memory", 0, 1)
        self.disk = self._card("Disk", 1, 0)
        self.gpus = self._card("Graphics", 1, 1)
        self.diagnostics = Card("Findings")
        self.grid.addWidget(self.diagnostics, 2, 0, 1, 2)
        self.diagnostics.hide()
        self.text_by_card: dict[str, str] = {}

    def _card(self, title: str, row: int, column: int) -> QLabel:
        card = Card(title)
        label = QLabel("Looking…")
        label.setWordWrap(True)
        card.body.addWidget(label)
        card.body.addStretch(1)
        self.grid.addWidget(card, row, column)
        return label

    def show_profile(self, profile: Any) -> None:
        cpu = profile.cpu
        features = isa_summary(cpu.features)
        self.cpu.setText(
            f"<b>{cpu.brand or cpu.arch}</b><br>{cpu.physical_cores} cores, "
            f"{cpu.logical_cores} threads ({cpu.arch})<br>"
            f"<span>Instruction sets: {features}</span>"
        )
        mem = profile.memory
        bandwidth = f"<br>about {mem.bandwidth_gbps:.0f} GB/s" if mem.bandwidth_gbps else ""
        self.memory.setText(
            f"<b>{human_bytes(mem.total_bytes)}</b> in total<br>"
            f"{human_bytes(mem.available_bytes)} available now{bandwidth}"
        )
        disk = profile.disk
        self.disk.setText(
            f"<b>{human_bytes(disk.free_bytes)}</b> free of {human_bytes(disk.total_bytes)}"
            f"<br><code>{disk.path}</code>"
        )
        if profile.gpus:
            lines = []
            for gpu in profile.gpus:
                vram = (
                    f"{human_bytes(gpu.total_memory_bytes)} VRAM, "
                    f"{human_bytes(gpu.free_memory_bytes)} free"
                    if gpu.total_memory_bytes
                    else "shared memory"
                )
                usable = "usable by the backend" if gpu.usable_by_backend else "not used by "
                usable = usable if gpu.usable_by_backend else usable + "this build"
                lines.append(f"<b>{gpu.name}</b><br>{vram}; {usable}")
            self.gpus.setText("<br>".join(lines))
        else:
            self.gpus.setText("<b>No graphics card found</b><br>Models will run on the processor.")
        backend = profile.backend
        build = (
            f"llama-cpp-python {backend.version}: " + (", ".join(backend.backends) or "CPU")
            if backend.installed
            else "llama-cpp-python is not installed"
        )
        self.gpus.setText(self.gpus.text() + f"<br><span>Inference: {build}</span>")
        self._show_diagnostics(profile.diagnostics)

    def _show_diagnostics(self, diagnostics: Any) -> None:
        layout = self.diagnostics.body
        while layout.count() > 1:  # keep the title
            item = layout.takeAt(1)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for diagnostic in diagnostics:
            layout.addWidget(DiagnosticRow(diagnostic.level, diagnostic.message, diagnostic.fix))
        self.diagnostics.setVisible(bool(diagnostics))


class HardwarePage(WizardPage):
    step_title = "Your hardware"
    step_detail = "processor, memory, disk and graphics card"

    def __init__(self, state: AppState) -> None:
        super().__init__(
            state,
            "Your hardware",
            "What this computer offers a language model. The next step uses it to pick models "
            "that fit.",
        )
        self.banner = Banner()
        self.body.addWidget(self.banner)
        self.summary = HardwareSummary()
        self.body.addWidget(self.summary)
        # the background measurement of this computer (started by the app on first run)
        self.measuring = MeasuringLabel(state.calibration)
        self.body.addWidget(self.measuring)
        self.body.addWidget(muted("Nothing is sent anywhere: the probe only reads this computer."))
        self.body.addStretch(1)
        self._probing = False

    def enter(self) -> None:
        if self.state.profile is None and not self._probing:
            self.probe()

    def probe(self) -> None:
        self._probing = True
        self.complete_changed.emit()
        run_task(
            "probe",
            _probe,
            on_done=self._on_profile,
            on_failed=self.banner.show_error,
            on_finished=self._on_finished,
        )

    def _on_profile(self, profile: Any) -> None:
        self.state.set_profile(profile)
        self.summary.show_profile(profile)

    def _on_finished(self) -> None:
        self._probing = False
        self.complete_changed.emit()

    def is_complete(self) -> bool:
        return self.state.profile is not None
