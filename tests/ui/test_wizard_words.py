"""What the wizard says: the Welcome step lists the same steps as the steps list on the left
(one list: the wizard's pages), and the hardware step names every instruction set the probe
found, as ``gbdesk probe`` does."""

from __future__ import annotations

import dataclasses

# /proc/cpuinfo flags of an AVX-512 server CPU (a Xeon), as the Linux probe reads them.
XEON_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz
physical id\t: 0
core id\t: 0
flags\t\t: fpu vme sse sse2 pni ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 avx512f avx512dq \
avx512cd avx512bw avx512vl avx512vbmi avx512_vnni avx512_bf16 amx_tile
"""


def test_welcome_lists_every_step_of_the_steps_list(qtbot, state) -> None:
    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.welcome import WelcomePage

    wizard = FirstRunWizard(state)
    qtbot.addWidget(wizard)
    welcome = wizard.page_of(WelcomePage)
    sidebar = [label.text().split(maxsplit=1)[1] for label in wizard.step_labels]
    assert welcome.listed == sidebar == [page.step_title for page in wizard.pages]
    assert len(welcome.listed) == len(wizard.pages) == 7
    assert all(page.step_detail for page in wizard.pages)  # each says what it does


def test_the_hardware_step_names_every_instruction_set_the_probe_found(qtbot) -> None:
    from gbdesk.hardware.cpu import parse_proc_cpuinfo
    from gbdesk.hardware.probe import probe
    from gbdesk.hardware.summary import format_profile
    from gbdesk.ui.wizard.hardware import HardwareSummary, isa_name

    _brand, features, _physical, _logical = parse_proc_cpuinfo(XEON_CPUINFO)
    assert "avx512f" in features and len(features) > 8  # more than the step used to show
    here = probe()
    xeon = dataclasses.replace(here, cpu=dataclasses.replace(here.cpu, features=features))
    for profile in (here, xeon):
        summary = HardwareSummary()
        qtbot.addWidget(summary)
        summary.show_profile(profile)
        shown = summary.cpu.text()
        # Every feature `gbdesk probe` lists, in the same order.
        listed = format_profile(profile).split()
        assert all(feature in listed for feature in profile.cpu.features)
        positions = [shown.find(isa_name(f)) for f in profile.cpu.features]
        assert -1 not in positions, shown
        assert positions == sorted(positions)
    assert "AVX-512F" in shown and "AVX-512BW" in shown and "AVX-512 VNNI" in shown
    assert "AVX2" in shown and "FMA" in shown and "F16C" in shown


def test_instruction_set_names_read_as_people_write_them() -> None:
    from gbdesk.ui.wizard.hardware import isa_summary

    assert isa_summary(("sse4_1", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_bf16")) == (
        "SSE4.1, AVX, AVX2, FMA, F16C, AVX-512F, AVX-512 BF16"
    )
    assert isa_summary(("neon", "dotprod", "i8mm", "sve")) == "NEON, DotProd, I8MM, SVE"
    assert isa_summary(()) == "none detected"


def test_offline_the_model_step_names_the_model_it_picked(qtbot, state, starter_model) -> None:
    """With the Hub unreachable, what is on disk comes first; the sentence names that model
    (the bundled starter, or one already in the models folder), never another."""
    import shutil

    from gbdesk.paths import app_paths
    from gbdesk.ui.wizard.choose_model import ChooseModelPage
    from tests.free_ports import free_port

    state.update_settings(hub_endpoint=f"http://127.0.0.1:{free_port()}")  # nothing listens
    for with_second_model in (False, True):
        if with_second_model:
            models = app_paths().ensure().models_dir
            models.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(starter_model, models / "second-model.Q4_1.gguf")
        page = ChooseModelPage(state)
        qtbot.addWidget(page)
        if state.profile is None:
            from gbdesk.hardware.probe import probe

            state.set_profile(probe())
        page.refresh()
        qtbot.waitUntil(lambda page=page: bool(page.recommendations), timeout=60_000)
        picked = page.chosen()
        status = page.status.text()
        assert "cannot be reached" in status
        if with_second_model:
            assert picked.model_name in status and "starter" not in status, status
        else:
            assert "bundled starter model is picked" in status, status
