"""`gbdesk probe`: print what this machine has."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("probe", help="show this machine's CPU, memory, disk and GPUs")
    parser.add_argument("--json", action="store_true", help="print the profile as JSON")
    parser.set_defaults(handler=run_probe)


def run_probe(args: argparse.Namespace) -> int:
    from gbdesk.hardware.probe import probe

    profile = probe()
    if args.json:
        print(json.dumps(profile.to_json(), indent=2))
    else:
        print(profile)
    return 0
