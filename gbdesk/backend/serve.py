"""`gbdesk serve`: resolve the model and settings, listen, load, serve until told to stop.

The port is bound before the model loads (a taken port fails in a second, and /health answers
503 "Loading model" meanwhile); SIGTERM or SIGINT stop the server gracefully.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gbdesk.backend.errors import ModelLoadError
from gbdesk.errors import ConfigError, GbdeskError, UsageError
from gbdesk.events import EventChannel, EventType
from gbdesk.options import (
    DEFAULT_CTX,
    DEFAULT_PARALLEL,
    STARTER,
    option,
    parse_model_ref,
    serve_options_schema,
)
from gbdesk.settings import Settings

if TYPE_CHECKING:
    from gbdesk.backend.chat_template import ChatTemplate
    from gbdesk.backend.embeddings import EmbeddingEngine
    from gbdesk.backend.engine import Engine, EngineStats
    from gbdesk.backend.model import LlamaModel
    from gbdesk.fit.pool import PoolPlan
    from gbdesk.hardware.rpc import WorkerAddress

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_CTX", "DEFAULT_PARALLEL", "ServeOptions", "run_serve"]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
API_KEY_ENV = "GBDESK_API_KEY"


@dataclass(frozen=True)
class ServeOptions:
    """How to run the backend. Zero or "auto" means "choose for this machine"."""

    model: str
    host: str = option("backend_host").default
    port: int = option("backend_port").default
    ctx: int = option("context_length").default
    parallel: int = option("parallel").default
    gpu_layers: str = option("gpu_layers").default
    threads: int = option("threads").default
    api_key: str | None = field(default=None, repr=False)
    queue_limit: int = option("queue_limit").default
    alias: str = option("alias").default  # the model id clients see; the file name by default
    repack: bool | None = option("repack").default  # None: off on AMX CPUs (cpu_has_amx)
    # <think> text to reasoning_content ("deepseek"), or left in the answer ("none")
    reasoning_format: str = option("reasoning_format").default
    embedding_model: str = option("embedding_model").default  # also serve this (own port)
    embedding_port: int = option("embedding_port").default  # botserver's embedding-url default
    embedding_ctx: int = option("embedding_ctx").default  # tokens per embedded text
    embedding_pooling: str = option("embedding_pooling").default  # "": the GGUF's, else mean
    rpc: str = option("rpc_workers").default  # "HOST:PORT,...": llama.cpp RPC workers

    @classmethod
    def from_settings(
        cls, settings: Settings, *, api_key: str | None = None, **given: object
    ) -> ServeOptions:
        """The options for ``settings``, with ``given`` (ServeOptions fields; None means "not
        given") taking precedence. A missing model means the starter model."""
        values: dict[str, object] = {}
        for item in serve_options_schema():
            assert item.serve_field is not None
            value = given.get(item.serve_field)
            values[item.serve_field] = value if value is not None else getattr(settings, item.name)
        values["model"] = values["model"] or STARTER
        values["gpu_layers"] = values["gpu_layers"] or "auto"
        return cls(api_key=api_key, **values)  # type: ignore[arg-type]

    def check(self) -> None:
        """Raises:
        UsageError: an option is out of range, or a non-local host has no API key."""
        if self.host not in LOCAL_HOSTS and not self.api_key:
            raise UsageError(
                f"listening on {self.host} would let other computers use the model without a key",
                fix=f"add --api-key KEY (or set {API_KEY_ENV}), or listen on 127.0.0.1",
            )
        for item in serve_options_schema():
            if item.kind != "int":
                continue
            value = getattr(self, item.serve_field or "")
            try:
                item.coerce(value, "the command line")
            except ConfigError as exc:
                raise UsageError(
                    f"{item.flag} {value} is not between {item.minimum} and {item.maximum}",
                    fix=f"use {item.flag} {item.default}",
                ) from exc
        if self.reasoning_format not in ("deepseek", "none", "auto"):
            raise UsageError(
                f"--reasoning-format must be deepseek, none or auto, not {self.reasoning_format!r}",
                fix="use --reasoning-format deepseek (thinking in reasoning_content) or none",
            )
        if self.embedding_pooling not in ("", "mean", "cls", "last"):
            raise UsageError(
                f"--embedding-pooling must be mean, cls or last, not {self.embedding_pooling!r}",
                fix="leave it out to use the model's own pooling",
            )
        if self.embedding_model and self.embedding_port == self.port and self.port != 0:
            from gbdesk.backend.ports import free_port_near

            raise UsageError(
                f"the embedding port {self.embedding_port} is the chat port too",
                fix="pick another one: --embedding-port "
                f"{free_port_near(self.host, self.port, avoid={self.port})}",
            )
        self.workers()  # junk, duplicates, or this backend's own port: a WorkerError now
        if self.gpu_layers != "auto" and not self.gpu_layers.isdigit():
            raise UsageError(
                f"--gpu-layers must be 'auto' or a number, not {self.gpu_layers!r}",
                fix="use --gpu-layers auto, or --gpu-layers 0 for CPU only",
            )

    def workers(self) -> tuple[WorkerAddress, ...]:
        """The RPC workers of ``--rpc``, checked.

        Raises:
            WorkerError: an address is invalid, listed twice, or is this backend's own port.
        """
        from gbdesk.hardware.rpc import WorkerError, parse_workers

        workers = parse_workers(self.rpc)
        own = {self.port} | ({self.embedding_port} if self.embedding_model else set())
        for worker in workers:
            if worker.port in own and (worker.is_loopback or worker.host == self.host):
                raise WorkerError(
                    f"the worker {worker} is this backend's own port, not a worker",
                    fix="start `gbdesk worker` (port 50052 by default) and give its address",
                )
        return workers


@dataclass(frozen=True)
class ResolvedSettings:
    """The settings actually used, after the estimator and defaults."""

    model_path: Path
    model_id: str
    n_ctx: int
    parallel: int
    gpu_layers: int
    threads: int
    # llama.cpp RPC workers and each of their devices' share of the offloaded layers.
    workers: tuple[WorkerAddress, ...] = ()
    tensor_split: tuple[float, ...] = ()
    pool: PoolPlan | None = None


def resolve_model(spec: str) -> Path:
    """The GGUF file for a path, an installed model id, a catalogue id or the starter model.

    Raises:
        ModelLoadError: nothing on this machine matches ``spec``.
    """
    from gbdesk.starter import STARTER_ID, require_starter_model

    if not spec:
        raise ModelLoadError("no model given", fix="pass --model PATH or a model id")
    candidate = Path(spec).expanduser()
    if candidate.exists() or (
        spec.endswith(".gguf") and os.sep in spec and candidate.parent.is_dir()
    ):
        return candidate  # a path (validated, with a clear error, when it is loaded)
    if spec in {STARTER_ID, STARTER}:
        return require_starter_model()
    from gbdesk.download.library import ModelLibrary

    installed = ModelLibrary().list_models()
    for model in installed:
        if spec in {model.id, model.name} or model.id.endswith("/" + spec):
            return Path(model.path)
    from gbdesk.catalog.loader import load_catalog

    # A catalogue id, optionally with a quant: "llama-3.2-3b-instruct:Q4_K_M".
    ref = parse_model_ref(spec)
    entry = load_catalog().get(ref.id)
    if entry is not None:
        for model in installed:
            if model.repo == entry.repo and (not ref.quant or model.quant.upper() == ref.quant):
                return Path(model.path)
        raise ModelLoadError(
            f"the catalogue model {spec!r} is not downloaded yet",
            fix=f"download it first: gbdesk download {spec}",
        )
    raise ModelLoadError(
        f"no model file, installed model or catalogue model is called {spec!r}",
        fix="pass the path of a .gguf file, or an id from `gbdesk models list`",
    )


def _auto_settings(path: Path, n_ctx: int, parallel: int, ctx_given: bool) -> tuple[int, int]:
    """(gpu layers, context) from the estimator for this machine."""
    from gbdesk.fit.estimator import FitSettings, estimate_fit
    from gbdesk.fit.layout import layout_from_gguf
    from gbdesk.gguf import read_gguf
    from gbdesk.hardware.probe import probe

    layout = layout_from_gguf(read_gguf(path), path.name)
    fit = estimate_fit(layout, probe(), FitSettings(n_ctx=n_ctx, n_parallel=parallel))
    if not ctx_given and fit.max_ctx and fit.max_ctx < n_ctx:
        log.warning("context lowered from %d to %d tokens to fit memory", n_ctx, fit.max_ctx)
        n_ctx = fit.max_ctx
    return fit.gpu_layers, n_ctx


def resolve_settings(options: ServeOptions) -> ResolvedSettings:
    """Fill in what ``options`` leaves to gbdesk: settings file values, then the estimator
    (or, over RPC workers, the pool's plan).

    Raises:
        ModelLoadError: the model cannot be found.
        WorkerError: a worker cannot be used, or the model does not fit even pooled.
    """
    from gbdesk.hardware.cpu import physical_cores
    from gbdesk.settings import load_settings

    settings = load_settings()
    path = resolve_model(options.model)
    parallel = options.parallel or settings.parallel or DEFAULT_PARALLEL
    ctx_given = bool(options.ctx or settings.context_length)
    n_ctx = options.ctx or settings.context_length or DEFAULT_CTX
    threads = options.threads or settings.threads or physical_cores()
    gpu_choice = options.gpu_layers if options.gpu_layers != "auto" else settings.gpu_layers
    workers = options.workers()
    pool: WorkerPlan | None = None
    if workers:  # the split decides where each layer goes
        pool = plan_workers(path, workers, n_ctx=n_ctx, parallel=parallel)
        gpu_layers = pool.plan.gpu_layers
    elif gpu_choice.isdigit():
        gpu_layers = int(gpu_choice)
    else:
        try:
            gpu_layers, n_ctx = _auto_settings(path, n_ctx, parallel, ctx_given)
        except GbdeskError as exc:  # the loader gives the real error for a bad file
            log.info("estimator unavailable for %s: %s", path, exc.message)
            gpu_layers = 0
    return ResolvedSettings(
        model_path=path,
        model_id=options.alias or path.name,
        n_ctx=max(n_ctx, parallel * 256),
        parallel=parallel,
        gpu_layers=gpu_layers,
        threads=threads,
        workers=workers,
        tensor_split=pool.device_split if pool is not None else (),
        pool=pool.plan if pool is not None else None,
    )


@dataclass(frozen=True)
class WorkerPlan:
    """The pool plan and llama.cpp's ``tensor_split`` over every worker device."""

    plan: PoolPlan
    device_split: tuple[float, ...]


def plan_workers(
    path: Path, workers: tuple[WorkerAddress, ...], *, n_ctx: int, parallel: int
) -> WorkerPlan:
    """Ask each worker what it offers and split the model over them and this machine.

    Raises:
        WorkerError: a worker cannot be used, or the model does not fit even pooled.
        ModelLoadError: the model file cannot be read.
    """
    from gbdesk.backend.model import validate_model_file
    from gbdesk.fit.calibration import load_calibration
    from gbdesk.fit.estimator import FitSettings
    from gbdesk.fit.layout import layout_from_gguf
    from gbdesk.fit.pool import ASSUMPTIONS, PoolMember, plan_pool
    from gbdesk.hardware.probe import probe
    from gbdesk.hardware.rpc import WorkerError, probe_worker, round_trip_s

    statuses = [probe_worker(worker) for worker in workers]
    members = [PoolMember(str(s.address), s.free_bytes, round_trip_s(s.address)) for s in statuses]
    layout = layout_from_gguf(validate_model_file(path), path.name)
    plan = plan_pool(
        layout,
        probe(),
        members,
        FitSettings(n_ctx=n_ctx, n_parallel=parallel),
        calibration=load_calibration(),
    )
    if not plan.runs:
        raise WorkerError(
            f"{path.name} {plan.reasons[0]}",
            fix="add a worker, give the workers more memory (gbdesk worker --memory), or pick"
            " a smaller model or a shorter context (--ctx)",
            details={"plan": plan.to_json()},
        )
    log.info("%s %s (the speed %s)", path.name, plan.summary(), ASSUMPTIONS)
    split: list[float] = []
    for status, weight in zip(statuses, plan.tensor_split, strict=True):
        free = status.free_bytes or 1
        split.extend(weight * device.free / free for device in status.devices)
    return WorkerPlan(plan=plan, device_split=tuple(split))


@dataclass(frozen=True)
class Serving:
    """What a ready backend serves, for the person who started it (`gbdesk serve` prints it)."""

    url: str
    model_id: str  # what clients send as "model"
    model_path: Path
    n_ctx: int  # all slots together
    parallel: int
    n_ctx_slot: int  # tokens per chat
    template: str  # "the model's own", or the built-in template that stands in
    template_warning: str  # "" when the model has its own template
    split: str = ""  # over RPC workers: where the layers are ("" on this machine alone)

    def lines(self) -> list[str]:
        """The summary in words, one line each (the warning last, when there is one)."""
        lines = [
            f"gbdesk backend ready on {self.url}",
            f"  model: {self.model_id} ({self.model_path})",
            f"  context: {self.n_ctx} tokens, {self.parallel} chats at once of up to "
            f"{self.n_ctx_slot} tokens each",
            f"  chat template: {self.template}",
        ]
        if self.split:
            lines.append(f"  split: {self.split}")
        if self.template_warning:
            lines.append(f"warning: {self.template_warning}")
        return lines


def run_serve(
    options: ServeOptions,
    *,
    stop: threading.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
    events: EventChannel | None = None,
    on_serving: Callable[[Serving], None] | None = None,
) -> int:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT in the main thread). Returns 0.

    ``events`` gets ``listening``, ``loading`` and ``ready`` (see :mod:`gbdesk.events`);
    ``on_ready`` the URL once ready, ``on_serving`` what is served (model, context, template).

    Raises:
        UsageError: bad options (e.g. a public host without an API key).
        PortInUseError: the port is taken.
        ModelLoadError: the model cannot be found or loaded.
    """
    from gbdesk.backend.engine import Engine
    from gbdesk.backend.server import BackendApp, BackendServer
    from gbdesk.backend.transport import url_for

    events = events or EventChannel()
    options.check()
    # The engine thread needs the GIL back as soon as llama_decode returns; HTTP threads must
    # not hold it for the default 5 ms (measured: 4-stream time to first token 128 -> 56 ms).
    sys.setswitchinterval(0.0005)
    resolved = resolve_settings(options)
    embedding_path = resolve_model(options.embedding_model) if options.embedding_model else None
    stop = stop or threading.Event()
    app = BackendApp(
        api_key=options.api_key,
        model_id=resolved.model_id,
        embedding_model_id=embedding_path.name if embedding_path is not None else None,
        reasoning_format=options.reasoning_format,
    )
    extra_ports = (options.embedding_port,) if embedding_path is not None else ()
    server = BackendServer(options.host, options.port, app, extra_ports)
    server.serve_in_thread()
    url = url_for(options.host, server.port)
    log.info("listening on %s (key required: %s)", url, "yes" if options.api_key else "no")
    embedding_url = f"{url_for(options.host, server.ports[1])}/v1/embeddings" if extra_ports else ""
    if embedding_url:
        log.info("embeddings on %s", embedding_url)
    restore = _install_signal_handlers(stop)
    engine = embedder = None
    events.emit(EventType.LISTENING, url=url)
    try:
        events.emit(EventType.LOADING, model=str(resolved.model_path))
        model, template = _load_model(resolved, repack=options.repack)
        engine = Engine(model, queue_limit=options.queue_limit)
        if resolved.workers:
            _fail_on_lost_worker(engine, resolved.workers)
        app.attach(engine, template)
        log.info(
            "serving %s: %d-token context in %d slots of %d, %d GPU layers, %d threads",
            resolved.model_path,
            model.n_ctx,
            model.parallel,
            model.n_ctx_slot,
            resolved.gpu_layers,
            resolved.threads,
        )
        template_warning = "" if template.from_model else _template_warning(resolved, template)
        if template_warning:
            log.warning("%s", template_warning)
        ready: dict[str, object] = {}
        if embedding_path is not None:
            events.emit(EventType.LOADING, model=str(embedding_path))
            embedder = _load_embeddings(embedding_path, options, resolved)
            app.attach_embeddings(embedder)
            ready = {
                "embedding_url": embedding_url,
                "embedding_model": embedder.model_id,
                "embedding_dimensions": embedder.n_embd,
            }
        events.emit(
            EventType.READY,
            url=url,
            model_id=resolved.model_id,
            n_ctx=model.n_ctx,
            parallel=model.parallel,
            **ready,
            **({"pool": resolved.pool.to_json()} if resolved.pool is not None else {}),
        )
        if on_ready is not None:
            on_ready(url)
        if on_serving is not None:
            on_serving(
                Serving(
                    url=url,
                    model_id=resolved.model_id,
                    model_path=resolved.model_path,
                    n_ctx=model.n_ctx,
                    parallel=model.parallel,
                    n_ctx_slot=model.n_ctx_slot,
                    template=template.name,
                    template_warning=template_warning,
                    split=resolved.pool.summary() if resolved.pool is not None else "",
                )
            )
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        if engine is not None:
            _close_engine(engine, resolved)
            if engine.failure is None:
                _record_speed(resolved, engine.stats())
        if embedder is not None:
            embedder.close()
        restore()
    return 0


def _template_warning(resolved: ResolvedSettings, template: ChatTemplate) -> str:
    from gbdesk.backend.chat_template import missing_template_warning

    return missing_template_warning(resolved.model_path.name, template.name)


def _close_engine(engine: Engine, resolved: ResolvedSettings) -> None:
    """Free the engine; over workers, without hanging on one that went away meanwhile."""
    if not resolved.workers:
        engine.close()
        return
    from gbdesk.backend import ggml_rpc
    from gbdesk.hardware.rpc import WorkerError

    try:
        ggml_rpc.run_guarded("free the model on the workers", engine.close)
    except WorkerError as exc:  # stopping anyway: the workers free what they held on their own
        log.warning("%s", exc.message)


def _fail_on_lost_worker(engine: Engine, workers: tuple[WorkerAddress, ...]) -> None:
    """A worker lost mid-generation ends the requests with a sentence naming it; the server
    keeps answering (``/health`` says why it cannot generate)."""
    from gbdesk.backend import ggml_rpc
    from gbdesk.hardware.rpc import lost_worker_message

    def lost(fault: str) -> None:
        message = lost_worker_message(workers, fault)
        log.error("%s", message)
        engine.fail(message)

    ggml_rpc.on_fault(lost)


def _record_speed(resolved: ResolvedSettings, stats: EngineStats) -> None:
    """Keep this model's measured tokens/s for the recommender (gbdesk.fit.measured)."""
    from gbdesk.fit.measured import MIN_STEPS, record_measured
    from gbdesk.hardware.probe import probe

    if stats.single_steps < MIN_STEPS:
        return
    try:
        cpu = probe().cpu
        record_measured(
            resolved.model_path.name,
            generation_tps=stats.single_sequence_tps,
            prompt_tps=0.0,
            cpu_brand=cpu.brand,
            physical_cores=cpu.physical_cores,
            gpu_layers=resolved.gpu_layers,
            source="serve",
        )
    except (GbdeskError, OSError, ValueError) as exc:
        log.warning("could not keep the measured speed of %s: %s", resolved.model_path, exc)


def _load_model(
    resolved: ResolvedSettings, *, repack: bool | None
) -> tuple[LlamaModel, ChatTemplate]:
    """The llama.cpp model and its chat template.

    Raises:
        ModelLoadError: the file is not a loadable GGUF.
    """
    from gbdesk.backend.chat_template import template_for_model
    from gbdesk.backend.model import ContextOptions, LlamaModel

    context = ContextOptions(
        n_ctx=resolved.n_ctx,
        parallel=resolved.parallel,
        gpu_layers=resolved.gpu_layers,
        threads=resolved.threads,
        repack=repack,
    )
    if not resolved.workers:
        model = LlamaModel(resolved.model_path, context)
        return model, template_for_model(model)
    from gbdesk.backend import ggml_rpc

    def load() -> LlamaModel:
        devices = ggml_rpc.worker_devices(resolved.workers) + ggml_rpc.local_gpu_devices()
        split = resolved.tensor_split + (0.0,) * (len(devices) - len(resolved.tensor_split))
        try:
            return LlamaModel(
                resolved.model_path, replace(context, devices=tuple(devices), tensor_split=split)
            )
        except ModelLoadError as exc:  # the file was checked: the workers refused their part
            from gbdesk.hardware.rpc import WorkerError, format_workers

            raise WorkerError(
                f"llama.cpp could not place {resolved.model_path.name} on the workers"
                f" {format_workers(resolved.workers)}: one of them may lack the memory it"
                " offered a moment ago",
                fix="free memory on the workers (or lower their --memory), or use a shorter"
                " context (--ctx); the log file has llama.cpp's reason",
            ) from exc

    model = ggml_rpc.run_guarded("load the model over the workers", load)
    return model, template_for_model(model)


def _load_embeddings(
    path: Path, options: ServeOptions, resolved: ResolvedSettings
) -> EmbeddingEngine:
    """The embedding model's engine (on the CPU, as botserver runs it: --n-gpu-layers 0).

    Raises:
        ModelLoadError: the file is not a loadable GGUF.
    """
    from gbdesk.backend.embeddings import EmbeddingEngine

    embedder = EmbeddingEngine(
        path,
        path.name,
        n_ctx=options.embedding_ctx,
        pooling=options.embedding_pooling or None,
        threads=resolved.threads,
        repack=options.repack,
    )
    log.info(
        "embeddings from %s: %d dimensions, %s pooling, %d tokens per text",
        path,
        embedder.n_embd,
        embedder.pooling,
        embedder.n_ctx,
    )
    return embedder


def _install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT set ``stop`` (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(_signum: int, _frame: object) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def with_key_from_env(options: ServeOptions) -> ServeOptions:
    """``options`` with the API key from ``GBDESK_API_KEY`` when none was given."""
    if options.api_key:
        return options
    return replace(options, api_key=os.environ.get(API_KEY_ENV) or None)
