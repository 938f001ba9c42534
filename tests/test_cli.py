from __future__ import annotations

import subprocess
import sys

from gbdesk import __version__
from gbdesk.cli import build_parser


def test_version_prints_the_package_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gbdesk", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"gbdesk {__version__}"


def test_every_verb_has_a_handler() -> None:
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert "probe" in verbs
    for name, sub in verbs.items():
        assert sub.get_default("handler") is not None or sub._subparsers is not None, name


def test_a_closed_pipe_ends_quietly() -> None:
    # stdout is a pipe whose reader has already gone, as in `gbdesk probe --json | head -1`.
    code = (
        "import os, sys\n"
        "r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
        "from gbdesk.cli import main\n"
        "sys.exit(main(['probe', '--json']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert "Traceback" not in out.stderr
    assert out.returncode == 0


def test_an_unforeseen_failure_is_told_in_plain_words_with_the_traceback_in_the_log(
    monkeypatch, capsys
) -> None:
    import gbdesk.hardware.probe
    from gbdesk.cli import main
    from gbdesk.errors import ExitCode
    from gbdesk.paths import app_paths

    def broken_probe(*_args, **_kwargs):
        return 1 / 0  # a bug in a probe the CLI did not foresee

    monkeypatch.setattr(gbdesk.hardware.probe, "probe", broken_probe)
    assert main(["probe"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error: Could not run gbdesk probe: something unexpected went wrong." in err
    assert "ZeroDivisionError" in err and "fix: try again" in err
    assert "Traceback" in app_paths().log_file.read_text(encoding="utf-8")
