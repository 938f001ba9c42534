"""`gbdesk serve` (the bot backend) and `gbdesk botserver-config` (point botserver at it)."""

from __future__ import annotations

import argparse

from gbdesk.events import EVENTS_FLAG
from gbdesk.options import add_serve_arguments, serve_options_schema


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the model as an OpenAI-compatible backend for botserver",
        description="Serve a GGUF model over HTTP (OpenAI API, like llama-server). Without"
        " options, context, parallel slots and GPU layers are chosen for this machine.",
    )
    add_serve_arguments(serve)
    serve.add_argument(
        "--api-key", default=None, help="require 'Authorization: Bearer KEY' (or GBDESK_API_KEY)"
    )
    serve.add_argument(
        EVENTS_FLAG,
        action="store_true",
        help="write JSON-lines events (listening, loading, ready, error) on stdout, for a"
        " supervising process; other output goes to stderr",
    )
    serve.set_defaults(handler=run_serve_command)

    config = subparsers.add_parser(
        "botserver-config",
        help="point botserver at this backend (config.csv and .env)",
        description="Write llm-url, llm-model, llm-server and llm-key into a bot's config.csv"
        " and LLM_URL, LLM_MODEL, LLM_KEY, LLM_PROVIDER, LLM_API_URL into botserver's .env."
        " Other lines are kept as they are.",
    )
    config.add_argument("--bot-dir", help="the bot's <bot>.gbai or <bot>.gbot folder")
    config.add_argument("--env-file", help="botserver's .env file")
    config.add_argument("--print", action="store_true", help="only show the values (key masked)")
    config.add_argument("--url", help="the backend's base URL (default from the settings)")
    config.add_argument("--model", default="", help="the served model (default from settings)")
    config.add_argument("--api-key", default=None, help="the backend's key (or GBDESK_API_KEY)")
    config.set_defaults(handler=run_botserver_config)


def run_serve_command(args: argparse.Namespace) -> int:
    """`gbdesk serve`. With ``--events`` every outcome is also a JSON-lines event.

    Raises:
        GbdeskError: the options, the model or the port (printed by the CLI).
    """
    from gbdesk.backend.serve import ServeOptions, run_serve, with_key_from_env
    from gbdesk.errors import GbdeskError
    from gbdesk.events import stdout_channel
    from gbdesk.settings import load_settings

    events = stdout_channel() if args.events else None
    try:
        given = {
            item.serve_field or "": getattr(args, item.serve_field or "")
            for item in serve_options_schema()
        }
        options = with_key_from_env(
            ServeOptions.from_settings(load_settings(), api_key=args.api_key, **given)
        )

        def ready(url: str) -> None:
            print(f"gbdesk backend ready on {url}", flush=True)

        return run_serve(options, on_ready=ready, events=events)
    except GbdeskError as exc:
        if events is not None:
            events.error(exc)
        raise
    except Exception as exc:
        if events is not None:  # the log has the traceback; the parent gets a sentence
            events.error(GbdeskError(f"the backend failed: {exc}", fix="see the backend log"))
        raise


def run_botserver_config(args: argparse.Namespace) -> int:
    import os

    from gbdesk.backend.botserver_link import (
        backend_values,
        bot_config_path,
        masked,
        write_botserver_config,
    )
    from gbdesk.errors import UsageError

    values = backend_values(
        url=args.url,
        model=args.model,
        api_key=args.api_key or os.environ.get("GBDESK_API_KEY") or None,
    )
    if args.print:
        for key, value in masked(values.config_csv).items():
            print(f"config.csv  {key},{value}")
        for key, value in masked(values.env).items():
            print(f".env        {key}={value}")
        return 0
    if not args.bot_dir and not args.env_file:
        raise UsageError(
            "nothing to write",
            fix="pass --bot-dir <bot>.gbai and/or --env-file PATH, or --print to see the values",
        )
    config_csv = bot_config_path(args.bot_dir) if args.bot_dir else None
    written = write_botserver_config(values, config_csv=config_csv, env_file=args.env_file)
    for path in written:
        print(f"wrote {path}")
    return 0
