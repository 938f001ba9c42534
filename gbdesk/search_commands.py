"""`gbdesk search QUERY`: GGUF models on the Hub, with a fit verdict per quantization."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

VERDICT_WORDS = {
    "full-gpu": "runs on the GPU",
    "partial-gpu": "partly on the GPU",
    "cpu-only": "runs on the CPU",
    "does-not-fit": "does not fit",
    "cannot-load": "llama.cpp cannot load it",
    "unknown": "no verdict",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from gbdesk.catalog.hub_search import DEFAULT_LIMIT, SORTS

    search = subparsers.add_parser(
        "search",
        help="search the Hub for GGUF models, with a fit verdict per quant before download",
    )
    search.add_argument("query", nargs="?", default="", help="words in the repo name")
    search.add_argument(
        "--sort", choices=tuple(SORTS), default="downloads", help="order (default: downloads)"
    )
    search.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"repos (default {DEFAULT_LIMIT})"
    )
    search.add_argument("--ctx", type=int, default=4096, help="total context (default 4096)")
    search.add_argument("--parallel", type=int, default=1, help="parallel sequences (slots)")
    search.add_argument("--json", action="store_true", help="print JSON (once, at the end)")
    search.set_defaults(handler=run_search)


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / (1 << 30):.1f} GiB"


def _count(value: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(int(value))


def _repo_line(repo: Any) -> str:
    updated = repo.last_modified.date().isoformat() if repo.last_modified else "?"
    gated = "  gated: accept the licence on the Hub" if repo.gated else ""
    quants = "" if repo.quants else "  (no GGUF model file)"
    return (
        f"{repo.repo}  {_count(repo.downloads)} downloads  {_count(repo.likes)} likes  "
        f"updated {updated}  licence {repo.licence or 'not given'}{gated}{quants}"
    )


def _result_line(result: Any) -> str:
    words = VERDICT_WORDS.get(result.verdict, result.verdict)
    head = f"  {result.quant:<10} {_gib(result.size_bytes):>9}  "
    if result.verdict == "unknown":
        return f"{head}{words}: {result.message}\n    fix: {result.fix}"
    fit = result.fit
    memory = sum(d.total for d in fit.devices)
    extra = (
        f"  (architecture {result.architecture!r} is not in this llama.cpp)"
        if result.loadable is False
        else ""
    )
    return (
        f"{head}{words:<18} needs {_gib(memory):>9}  ~{fit.speed.generation_tps:.1f} tokens/s "
        f"({result.speed_source})  context up to {fit.max_ctx}  "
        f"{_count(result.params)} params, {result.architecture}{extra}"
    )


def run_search(args: argparse.Namespace) -> int:
    from gbdesk.app.hub_search import search
    from gbdesk.fit.calibration import load_calibration
    from gbdesk.fit.estimator import FitSettings
    from gbdesk.hardware.probe import probe

    settings = FitSettings(n_ctx=args.ctx, n_parallel=args.parallel)
    settings.check()
    profile = probe()
    as_json = args.json

    def on_repo(repo: Any) -> None:
        if not as_json:
            print(_repo_line(repo), flush=True)

    def on_result(result: Any) -> None:
        if not as_json:
            print(_result_line(result), flush=True)

    found = search(
        args.query,
        profile,
        settings,
        sort=args.sort,
        limit=args.limit,
        calibration=load_calibration(),
        on_repo=on_repo,
        on_result=on_result,
    )
    if as_json:
        payload = [
            {**repo.to_json(), "quants": [r.to_json() for r in results]} for repo, results in found
        ]
        json.dump(payload, sys.stdout, indent=2)
        print()
    elif not found:
        print(f"no GGUF repos on the Hub match {args.query!r}", file=sys.stderr)
    return 0
