"""`gbdesk bench`: measure this machine with the starter model and store the calibration
(`--quick`: the short bench the app runs on its first start)."""

from __future__ import annotations

import argparse

from gbdesk.fit.measure import QUICK_REPEATS, REPEATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="time the starter model and synthetic models of each weight type on this CPU; "
        "calibrate the speed estimates",
    )
    parser.add_argument("--model", help="a GGUF path (default: the starter model)")
    parser.add_argument(
        "--repeats",
        type=int,
        choices=range(1, 11),
        default=None,
        metavar="N",
        help=f"times each model is run, the fastest counting (1-10, default {REPEATS}; "
        f"{QUICK_REPEATS} with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the short bench the app runs on first start: fewer models (F16, Q8_0, Q6_K, Q4_K), "
        "about half a minute",
    )
    parser.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gbdesk.fit.bench import calibrate
    from gbdesk.fit.calibration import describe
    from gbdesk.starter import require_starter_model

    path = Path(args.model) if args.model else require_starter_model()
    repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS)
    calibration, where = calibrate(path, report=print, repeats=repeats, quick=args.quick)
    print(
        f"measured {calibration.measured_generation_tps:.1f} tokens/s generating, "
        f"{calibration.measured_prompt_tps:.0f} tokens/s on the prompt, "
        f"{calibration.measured_rss_growth_bytes / (1 << 20):.0f} MiB resident"
    )
    print(
        f"speed model from {calibration.points} models: {describe(calibration)}; saved to {where}"
    )
    return 0
