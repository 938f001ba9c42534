"""CLI verbs: ``gbdesk download`` and ``gbdesk models list|import|rm|token``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from gbdesk.errors import ExitCode

if TYPE_CHECKING:
    from gbdesk.download.job import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    download = subparsers.add_parser(
        "download",
        help="download a GGUF model into the Hugging Face cache (resumes, verifies SHA-256)",
        description="Download a model: a catalogue id with an optional quant (llama-3.2-3b:Q4_K_M)"
        " or OWNER/REPO/FILE.gguf. A split model's parts all come with its first part. An"
        " interrupted download continues where it stopped when run again.",
    )
    download.add_argument("model", help="catalogue-id[:QUANT] or OWNER/REPO/FILE.gguf")
    download.add_argument("--revision", default="main", help="branch, tag or commit (main)")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(handler=run_download)

    models = subparsers.add_parser("models", help="list, import and remove installed models")
    verbs = models.add_subparsers(dest="models_verb", metavar="<action>", required=True)
    listing = verbs.add_parser("list", help="installed GGUF models (downloads and imports)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)
    importing = verbs.add_parser("import", help="copy a GGUF file from disk into the library")
    importing.add_argument("path", help="a .gguf file (for a split model, its first part)")
    importing.set_defaults(handler=run_import)
    removing = verbs.add_parser("rm", help="delete an installed model and free its space")
    removing.add_argument("id", help="the model id from `gbdesk models list`")
    removing.set_defaults(handler=run_remove)
    token = verbs.add_parser(
        "token",
        help="store the Hub token for gated models in the OS keyring",
        description="Without options, says whether a token is configured (never shows it)."
        " --set reads it without echo (or from standard input when piped).",
    )
    action = token.add_mutually_exclusive_group()
    action.add_argument("--set", action="store_true", help="store a token")
    action.add_argument("--clear", action="store_true", help="forget the stored token")
    token.set_defaults(handler=run_token)


class _ProgressBar:
    """A one-line progress bar on stderr (a line per 10 % when stderr is not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last_draw = 0.0
        self.last_tenth = -1

    def __call__(self, progress: Progress) -> None:
        from gbdesk.download.job import Phase

        now = time.monotonic()
        if self.tty and now - self.last_draw < 0.1 and progress.done < progress.total:
            return
        self.last_draw = now
        if progress.phase is Phase.HASH:
            line = f"checking the partial file {progress.filename}: {progress.fraction:4.0%}"
        else:
            width = 30
            filled = int(progress.fraction * width)
            eta = _clock(progress.eta) if progress.eta is not None else "--:--"
            line = (
                f"[{'#' * filled}{'.' * (width - filled)}] {progress.fraction:4.0%}"
                f" {progress.done / 1e6:,.1f}/{progress.total / 1e6:,.1f} MB"
                f" {progress.speed / 1e6:6.1f} MB/s ETA {eta}"
            )
        if self.tty:
            sys.stderr.write("\r" + line[:120].ljust(120))
            sys.stderr.flush()
        elif int(progress.fraction * 10) != self.last_tenth:
            self.last_tenth = int(progress.fraction * 10)
            print(line, file=sys.stderr)

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def run_download(args: argparse.Namespace) -> int:
    from gbdesk.download.manager import DownloadManager
    from gbdesk.download.spec import resolve_spec

    spec = resolve_spec(args.model, revision=args.revision)
    bar = None if args.quiet else _ProgressBar()
    with DownloadManager() as manager:
        job = manager.submit(spec, on_progress=bar)
        try:
            while True:
                try:
                    result = job.wait(0.5)
                    break
                except TimeoutError:
                    continue
        except KeyboardInterrupt:
            job.cancel()
            if bar:
                bar.end()
            print(
                "stopped; the bytes received are kept: run the same command to resume",
                file=sys.stderr,
            )
            return ExitCode.INTERRUPTED
        finally:
            if bar and job.state.finished:
                bar.end()
    for path in result.paths:
        print(path)
    return 0


def run_list(args: argparse.Namespace) -> int:
    import json

    from gbdesk.app.installed import installed_models

    # The bundled starter is listed too: it is what `gbdesk serve` serves when no model is set.
    models = installed_models()
    if args.json:
        print(json.dumps([m.to_json() for m in models], indent=2))
        return 0
    if not models:
        print("no models installed; get one with `gbdesk download`")
        return 0
    for model in models:
        quant = model.quant or "?"
        where = "bundled with gbdesk: " if model.source == "bundled" else ""
        print(f"{model.id}\t{quant}\t{model.size / 1e9:.2f} GB\t{where}{model.path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from gbdesk.download.library import ModelLibrary

    model = ModelLibrary().import_file(args.path)
    print(f"imported {model.id} ({model.size / 1e9:.2f} GB) to {model.path}")
    from gbdesk.backend.chat_template import template_warning

    warning = template_warning(model.path)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from gbdesk.download.library import ModelLibrary

    freed = ModelLibrary().remove(args.id)
    print(f"removed {args.id}; {freed / 1e9:.2f} GB freed")
    return 0


def run_token(args: argparse.Namespace) -> int:
    import os

    from gbdesk.download.hub import HUB_TOKEN_SECRET
    from gbdesk.errors import UsageError
    from gbdesk.secrets import delete_secret, get_secret, set_secret

    if args.set:
        if sys.stdin.isatty():
            import getpass

            token = getpass.getpass("Hub token (hf_...): ").strip()
        else:
            token = sys.stdin.readline().strip()
        if not token:
            raise UsageError("no token was given", fix="paste a token from the Hub's settings")
        where = set_secret(HUB_TOKEN_SECRET, token)
        print(f"token stored ({'OS keyring' if where == 'keyring' else where})")
        return 0
    if args.clear:
        delete_secret(HUB_TOKEN_SECRET)
        print("stored token removed")
        return 0
    from huggingface_hub import get_token

    if os.environ.get("HF_TOKEN"):
        print("a token is set by HF_TOKEN")
    elif get_token():
        print("a token comes from the huggingface_hub login")
    elif get_secret(HUB_TOKEN_SECRET):
        print("a token is stored by gbdesk")
    else:
        print("no token; add one with `gbdesk models token --set`")
    return 0
