"""`gbdesk probe`: print what this machine has."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``probe`` verb."""
    parser = subparsers.add_parser(
        "probe", help="show this machine's CPU, memory, disk, GPUs and llama.cpp build"
    )
    parser.add_argument("--json", action="store_true", help="print the profile as JSON")
    parser.add_argument(
        "--models-dir",
        metavar="DIR",
        help="measure free disk space here (default: the models_dir setting)",
    )
    parser.add_argument(
        "--load-backend",
        action="store_true",
        help="also load llama-cpp-python and ask it what it supports (slower)",
    )
    parser.set_defaults(handler=run_probe)


def run_probe(args: argparse.Namespace) -> int:
    """Probe the machine and print the profile; exit status 0 (problems are diagnostics)."""
    import json
    from pathlib import Path

    from gbdesk.hardware.probe import probe

    models_dir = Path(args.models_dir).expanduser() if args.models_dir else None
    profile = probe(models_dir, load_backend=args.load_backend)
    if args.json:
        print(json.dumps(profile.to_json(), indent=2))
    else:
        from gbdesk.hardware.summary import format_profile

        print(format_profile(profile))
    return 0
