"""The `gbdesk` command: no verb opens the desktop app, `gbdesk <verb>` runs one step.

Each area of gbdesk registers its verbs from its own ``commands`` module (a ``register``
function that adds sub-parsers). Those modules import only argparse at module level and do their
heavy imports inside the handlers, so `gbdesk probe` never pays for llama.cpp or Qt.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from gbdesk import __version__
from gbdesk.errors import ExitCode, GbdeskError

log = logging.getLogger("gbdesk.cli")

# Modules with a `register(subparsers)` function, in the order `gbdesk --help` lists them.
COMMAND_MODULES = (
    "gbdesk.hardware.commands",
    "gbdesk.shard.commands",
    "gbdesk.download.commands",
    "gbdesk.catalog.commands",
    "gbdesk.fit.commands",
    "gbdesk.backend.commands",
)

Handler = Callable[[argparse.Namespace], int]
# Options of the desktop app itself, passed on to gbdesk.ui.app.main.
_GUI_FLAGS = frozenset({"--wizard", "--background"})


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every area's verbs."""
    parser = argparse.ArgumentParser(
        prog="gbdesk",
        description="General Bots desktop node. Without a verb, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"gbdesk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installed copy (model, server) without a display, then exit",
    )
    parser.add_argument(
        "--wizard", action="store_true", help="open the desktop app on its setup wizard"
    )
    parser.add_argument(
        "--background",
        action="store_true",
        help="start the desktop app in the tray with the backend running (start at login)",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="<verb>")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _open_gui(gui_args: Sequence[str] = ()) -> int:
    from gbdesk.ui.app import main as gui_main

    return gui_main(list(gui_args))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gbdesk` console script. Returns the process exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    if set(words) <= _GUI_FLAGS:
        # The desktop app: it sets up its own logging once its window is up, and building
        # every verb's parser would only delay the first window.
        return _open_gui(words)
    from gbdesk.logs import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        setup_logging(verbose=args.verbose, to_stderr=True)
    except OSError as exc:  # a read-only home must not stop `gbdesk probe`
        from gbdesk.errors import os_error_words

        print(f"warning: cannot write the log file: {os_error_words(exc)}", file=sys.stderr)
    handler: Handler | None = getattr(args, "handler", None)
    try:
        if args.self_test:
            from gbdesk.selftest import main as self_test

            return self_test()
        if handler is None:
            return _open_gui([flag for flag in _GUI_FLAGS if getattr(args, flag[2:])])
        return handler(args)
    except GbdeskError as exc:
        log.debug("command failed", exc_info=True)
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `gbdesk probe --json | head`: the reader left; say nothing more on a closed pipe.
        _silence_stdout()
        return 0
    except Exception as exc:  # a bug or an odd system error: plain words, traceback in the log
        from gbdesk.errors import UnexpectedError
        from gbdesk.paths import app_paths

        log.debug("command failed unexpectedly", exc_info=True)
        verb = f"gbdesk {args.verb}" if getattr(args, "verb", None) else "gbdesk"
        error = UnexpectedError.during(f"run {verb}", exc, log_file=str(app_paths().log_file))
        from gbdesk.errors import without_errno

        detail = without_errno(str(exc))
        print(f"error: {error.message} ({type(exc).__name__}: {detail})", file=sys.stderr)
        print(f"  fix: {error.fix}", file=sys.stderr)
        return error.exit_code


def _silence_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush does not raise again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    raise SystemExit(main())
