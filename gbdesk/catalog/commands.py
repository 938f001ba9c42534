"""`gbdesk catalog`, `gbdesk recommend`, `gbdesk plan` and `gbdesk search` (the Hub)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from gbdesk.options import DEFAULT_CTX, DEFAULT_PARALLEL

if TYPE_CHECKING:
    from gbdesk.hardware.profile import HardwareProfile


def register(subparsers: argparse._SubParsersAction) -> None:
    catalog = subparsers.add_parser("catalog", help="list, show or refresh the model catalogue")
    verbs = catalog.add_subparsers(
        dest="catalog_verb", metavar="<list|show|refresh>", required=True
    )
    listing = verbs.add_parser("list", help="every model and quantization")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)
    show = verbs.add_parser("show", help="one model with its figures and their sources")
    show.add_argument("model_id")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_show)
    refresh = verbs.add_parser(
        "refresh", help="read file sizes and GGUF headers from the Hub into the user catalogue"
    )
    refresh.add_argument("repo", nargs="?", help="one Hub repo id or model id (default: all)")
    refresh.set_defaults(handler=run_refresh)

    rec = subparsers.add_parser("recommend", help="which models and quants this machine runs")
    rec.add_argument("--hardware", help="a preset id or a `gbdesk probe --json` file")
    _fit_options(rec)
    rec.add_argument("--use-case", help="only models for this use case (qa, reasoning...)")
    rec.add_argument(
        "--rpc",
        metavar="HOST:PORT[,HOST:PORT...]",
        help="also list the models that fit only across this machine and these `gbdesk worker`"
        " machines (default: the rpc_workers setting; '' for none)",
    )
    rec.add_argument("--json", action="store_true", help="print JSON")
    rec.set_defaults(handler=run_recommend)

    plan = subparsers.add_parser("plan", help="preset machines that run MODEL[:QUANT] on GPU")
    plan.add_argument("model", help="catalogue id, optionally :QUANT (e.g. glm-4-9b-chat:Q8_0)")
    _fit_options(plan)
    plan.add_argument("--json", action="store_true", help="print JSON")
    plan.set_defaults(handler=run_plan)
    _register_search(subparsers)


def _fit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ctx", type=int, default=DEFAULT_CTX, help=f"total context (default {DEFAULT_CTX})"
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=DEFAULT_PARALLEL,
        help=f"parallel sequences (slots; default {DEFAULT_PARALLEL}, as `gbdesk serve`)",
    )
    parser.add_argument(
        "--cache-type", default="f16", choices=("f16", "q8_0", "q4_0"), help="KV cache type"
    )


def _settings(args: argparse.Namespace):
    from gbdesk.fit.estimator import FitSettings

    settings = FitSettings(n_ctx=args.ctx, n_parallel=args.parallel, cache_type=args.cache_type)
    settings.check()
    return settings


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / (1 << 30):.1f} GiB"


def run_list(args: argparse.Namespace) -> int:
    from gbdesk.catalog.loader import load_catalog

    catalog = load_catalog()
    if args.json:
        print(json.dumps([e.to_json() for e in catalog.entries], indent=2))
        return 0
    for entry in catalog.entries:
        quants = ", ".join(
            f"{q.name} {q.size_bytes / 1e9:.2f} GB" + ("~" if q.size_source != "hub" else "")
            for q in entry.quants
        )
        print(f"{entry.id:32} {entry.name}")
        print(f"{'':32} {entry.repo}  [{quants}]")
    print("\n~ size not yet checked on the Hub (`gbdesk catalog refresh` reads it)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from gbdesk.catalog.loader import load_catalog

    entry = load_catalog().require(args.model_id)
    if args.json:
        print(json.dumps(entry.to_json(), indent=2))
        return 0
    print(f"{entry.name} ({entry.id})")
    print(f"  repo: {entry.repo}   licence: {entry.licence}   gated: {entry.gated}")
    print(f"  quality tier: {entry.quality_tier}   use cases: {', '.join(entry.use_cases)}")
    print(f"  {entry.summary}")
    print("  architecture (figure = value [source]):")
    for key, value in entry.architecture.to_json().items():
        print(f"    {key} = {value} [{entry.source_of(key)}]")
    for quant in entry.quants:
        print(f"  {quant.name}: {quant.size_bytes:,} bytes [{quant.size_source}]")
        for name in quant.files:
            print(f"    {name}")
        if quant.guide:
            print(f"    guide says: {quant.guide}")
    if entry.guide:
        print(f"  guide says: {entry.guide}")
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    from gbdesk.app.catalog_refresh import refresh_catalog
    from gbdesk.catalog.loader import load_catalog, user_catalog_path

    changes = refresh_catalog(load_catalog(), args.repo)
    for change in changes:
        print(f"changed {change}")
    print(f"{len(changes)} change(s) written to {user_catalog_path()}")
    return 0


def _hardware(spec: str | None):
    if spec:
        from gbdesk.catalog.presets import load_hardware

        return load_hardware(spec)
    from gbdesk.hardware.probe import probe

    return probe()


def run_recommend(args: argparse.Namespace) -> int:
    from gbdesk.catalog.loader import load_catalog
    from gbdesk.fit.calibration import load_calibration
    from gbdesk.fit.recommend import context_words, recommend

    profile = _hardware(args.hardware)
    if args.hardware:  # another machine: only the calibration (it names its CPU) may apply
        results = recommend(
            load_catalog(),
            profile,
            _settings(args),
            use_case=args.use_case,
            calibration=load_calibration(),
        )
    else:  # this machine: its models on disk and measured speeds too
        from gbdesk.app.recommendation import hub_is_reachable, recommend_here

        online = hub_is_reachable()
        results = recommend_here(profile, _settings(args), use_case=args.use_case, online=online)
        if not online and not args.json:
            print("the Hub cannot be reached: models already on this computer come first")
    pooled, workers = _pooled(args, profile)
    if args.json:
        document: dict[str, object] = {
            "hardware": profile.source,
            "results": [r.to_json() for r in results],
        }
        if workers:
            document["workers"] = workers
            document["pooled"] = [option.to_json() for option in pooled]
        print(json.dumps(document))
        return 0
    print(f"hardware: {profile.source}   context {args.ctx}, {args.parallel} sequence(s)")
    name_width = max((len(f"{r.model_id}:{r.quant}") for r in results), default=0)
    for item in results:
        fit = item.fit
        mark = "+" if item.runs_well else "~" if fit.runs else "x"
        calibrated = f" ({fit.speed.basis})"
        name = f"{item.model_id}:{item.quant}"
        print(
            f"{mark} {name:{name_width}}  {fit.verdict:13} "
            f"RAM {_gb(fit.cpu.total):>9}  GPU {_gb(fit.gpu_bytes):>9}  "
            f"max ctx {fit.max_ctx_per_chat:>7}/chat  {fit.speed.generation_tps:7.1f} tok/s"
            f"{calibrated}"
        )
        print(f"    {item.reason}")
        if fit.runs:
            print(f"    {context_words(fit)}")
    print("+ runs well   ~ runs slowly   x does not fit")
    if any(item.fit.speed.basis == "guess" for item in results):
        print("speeds marked 'a guess': `gbdesk bench --quick` measures this computer (30 s)")
    if workers:
        _print_pooled(pooled, workers)
    return 0


def _pooled(args: argparse.Namespace, profile: HardwareProfile) -> tuple[list[Any], str]:
    """The models that fit only with the workers of --rpc (or the rpc_workers setting).

    Raises:
        WorkerError: a worker address is invalid or a worker cannot be used.
    """
    from gbdesk.settings import load_settings

    workers = args.rpc if args.rpc is not None else load_settings().rpc_workers
    if not workers.strip():
        return [], ""
    from gbdesk.app.pool import pool_members, pooled_options
    from gbdesk.fit.calibration import load_calibration

    members = pool_members(workers)
    return (
        pooled_options(profile, members, _settings(args), calibration=load_calibration()),
        workers,
    )


def _print_pooled(pooled: list[Any], workers: str) -> None:
    from gbdesk.fit.pool import ASSUMPTIONS

    print()
    print(f"with the workers {workers}: models that fit only across machines")
    if not pooled:
        print("  none: every catalogue model either fits this computer alone or not even pooled")
    for option in pooled:
        print(f"= {option.model_id}:{option.quant}  {option.plan.summary()}")
    print(f"= fits across machines (speed {ASSUMPTIONS})")


def run_plan(args: argparse.Namespace) -> int:
    from gbdesk.catalog.loader import CatalogError, load_catalog
    from gbdesk.catalog.presets import load_presets
    from gbdesk.fit.estimator import estimate_fit
    from gbdesk.fit.layout import layout_from_catalog
    from gbdesk.options import parse_model_ref

    ref = parse_model_ref(args.model)
    quant_name = ref.quant
    entry = load_catalog().require(ref.id)
    quants = list(entry.quants)
    if quant_name:
        chosen = entry.quant(quant_name)
        if chosen is None:
            raise CatalogError(
                f"{entry.id} has no quant {quant_name!r}",
                fix=f"use one of {', '.join(q.name for q in entry.quants)}",
            )
        quants = [chosen]
    settings = _settings(args)
    rows = []
    for quant in quants:
        layout = layout_from_catalog(entry, quant)
        for preset in load_presets():
            fit = estimate_fit(layout, preset.profile, settings)
            if fit.verdict == "full-gpu":
                rows.append((preset, quant, fit))
    rows.sort(key=lambda row: (row[0].cheapest_brl is None, row[0].cheapest_brl or 0))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "preset": p.id,
                        "quant": q.name,
                        "price_brl": p.to_json()["price_brl"],
                        "fit": f.to_json(),
                    }
                    for p, q, f in rows
                ]
            )
        )
        return 0
    if not rows:
        print(f"no preset machine runs {args.model} fully on the GPU at context {args.ctx}")
        return 0
    for preset, quant, fit in rows:
        print(
            f"{preset.name:24} {entry.id}:{quant.name:7} GPU {_gb(fit.gpu_bytes):>9} "
            f"~{fit.speed.generation_tps:.0f} tok/s   {preset.price_text()}"
        )
    return 0


# --- gbdesk search -------------------------------------------------------------------------

VERDICT_WORDS = {
    "full-gpu": "runs on the GPU",
    "partial-gpu": "partly on the GPU",
    "cpu-only": "runs on the CPU",
    "does-not-fit": "does not fit",
    "cannot-load": "llama.cpp cannot load it",
    "unknown": "no verdict",
}


def _register_search(subparsers: argparse._SubParsersAction) -> None:
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
    from gbdesk.fit.recommend import context_words

    words = VERDICT_WORDS.get(result.verdict, result.verdict)
    head = f"  {result.quant:<10} {_gb(result.size_bytes):>9}  "
    if result.verdict == "unknown":
        return f"{head}{words}: {result.message}\n    fix: {result.fix}"
    fit = result.fit
    model = f"{_count(result.params)} params, {result.architecture}"
    if result.loadable is False:
        return (
            f"{head}cannot load: the architecture {result.architecture!r} is not in the installed "
            f"llama.cpp  ({model})"
        )
    if not fit.runs:
        return f"{head}{fit.reasons[0]}  ({model})"
    memory = sum(d.total for d in fit.devices)
    return (
        f"{head}{words:<18} needs {_gb(memory):>9}  ~{fit.speed.generation_tps:.1f} tokens/s "
        f"({result.speed_source})  {context_words(fit)}  {model}"
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
