"""`gbdesk --self-test`: a headless check that an installed copy of gbdesk works.

It runs the parts a first start needs, in order, and times each: probe the machine, find the
package data, find the bundled starter model, load it and generate a few tokens, and start the
real backend server on a free port, ask it for /health and one short chat completion, and stop
it. No Qt, no display, no network beyond 127.0.0.1. Installers run it on each bundle they build.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from gbdesk.bundle import describe, package_file

# Package data that every install must have: the UI's icon and style sheet. Read here as plain
# files (no Qt), through the same importlib.resources lookup the UI uses.
REQUIRED_PACKAGE_DATA = (
    ("gbdesk.ui.resources", "app-icon.svg"),
    ("gbdesk.ui.resources", "style.qss"),
)
GENERATE_PROMPT = "The capital of France is"
GENERATE_TOKENS = 8
GENERATE_TIMEOUT_S = 60.0
SERVER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class StepResult:
    """One step of the self-test: whether it passed, how long it took, and what it saw."""

    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class SelfTestReport:
    """Every step's result, in the order they ran."""

    steps: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": self.seconds, "steps": [asdict(s) for s in self.steps]}


Context = dict[str, Any]
Step = tuple[str, Callable[[Context], str], tuple[str, ...]]


def _probe(context: Context) -> str:
    from gbdesk.hardware.probe import probe

    profile = probe()
    memory_gib = profile.memory.total_bytes / 2**30
    gpus = ", ".join(gpu.name for gpu in profile.gpus) or "no GPU"
    return f"{profile.cpu.logical_cores} CPU threads, {memory_gib:.1f} GiB RAM, {gpus}"


def _package_data(context: Context) -> str:
    found = [package_file(package, name) for package, name in REQUIRED_PACKAGE_DATA]
    return f"{len(found)} files, e.g. {found[0]}"


def _starter_model(context: Context) -> str:
    from gbdesk.starter import require_starter_model

    path = require_starter_model()
    context["model_path"] = path
    return f"{path} ({path.stat().st_size / 1e6:.0f} MB)"


def _generate(context: Context) -> str:
    # The backend's own engine, as the server uses it: a generation that works here works there.
    from gbdesk.backend.engine import Engine, Finish, GenerationRequest, SamplingParams
    from gbdesk.backend.model import ContextOptions, LlamaModel

    model = LlamaModel(context["model_path"], ContextOptions(n_ctx=512, parallel=1))
    engine = Engine(model)  # owns the model from here and frees it on close
    try:
        request = GenerationRequest(
            prompt_tokens=tuple(model.tokenize(GENERATE_PROMPT)),
            max_tokens=GENERATE_TOKENS,
            sampling=SamplingParams(temperature=0.0),
        )
        generation = engine.submit(request)
        pieces: list[str] = []
        while True:
            event = generation.next_event(timeout=GENERATE_TIMEOUT_S)
            if isinstance(event, Finish):
                break
            if isinstance(event, str):  # no log-probabilities were asked for
                pieces.append(event)
    finally:
        engine.close()
    if event.error:
        raise RuntimeError(f"generation failed: {event.error}")
    if event.completion_tokens < 1:
        raise RuntimeError("the model generated no tokens")
    text = "".join(pieces)
    return f"{event.completion_tokens} tokens: {GENERATE_PROMPT!r} -> {text!r}"


def _backend_server(context: Context) -> str:
    # The real OpenAI-compatible server on a free port of 127.0.0.1, in this process.
    import threading

    from gbdesk.backend.client import BackendClient
    from gbdesk.backend.serve import ServeOptions, run_serve

    stop = threading.Event()
    started = threading.Event()
    urls: list[str] = []
    errors: list[BaseException] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        started.set()

    def serve() -> None:
        try:
            options = ServeOptions(model=str(context["model_path"]), port=0, ctx=512, parallel=1)
            run_serve(options, stop=stop, on_ready=on_ready)
        except BaseException as exc:  # reported by the self-test's thread below
            errors.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=serve, name="gbdesk-self-test-server", daemon=True)
    thread.start()
    try:
        started.wait(SERVER_TIMEOUT_S)
        if errors:
            raise errors[0]
        if not urls:
            raise RuntimeError(f"the server did not start within {SERVER_TIMEOUT_S:.0f} s")
        url = urls[0]
        client = BackendClient(url, timeout_s=SERVER_TIMEOUT_S)
        status = client.health(timeout_s=SERVER_TIMEOUT_S)
        if status != 200:
            raise RuntimeError(f"GET /health answered {status}")
        models = client.get("/v1/models").json()
        request = {
            "model": models["data"][0]["id"],
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": GENERATE_TOKENS,
            "temperature": 0.0,
        }
        answer = client.post("/v1/chat/completions", request)
        if answer.status != 200:
            raise RuntimeError(f"POST /v1/chat/completions answered {answer.status}: {answer.text}")
        reply = answer.json()
        tokens = reply["usage"]["completion_tokens"]
        content = reply["choices"][0]["message"]["content"]
    finally:
        stop.set()
        thread.join(SERVER_TIMEOUT_S)
    if thread.is_alive():
        raise RuntimeError("the server did not stop")
    return f"{url}: /health 200, chat completion of {tokens} tokens {content!r}, stopped"


STEPS: tuple[Step, ...] = (
    ("probe", _probe, ()),
    ("package data", _package_data, ()),
    ("starter model", _starter_model, ()),
    ("generate", _generate, ("starter model",)),
    ("backend server", _backend_server, ("starter model",)),
)


def run_self_test(*, on_step: Callable[[StepResult], None] | None = None) -> SelfTestReport:
    """Run every step; a step whose prerequisite failed is reported as failed, not run.

    Never raises for a failing step: the failure is in the report.
    """
    context: Context = {}
    results: list[StepResult] = []
    passed: set[str] = set()
    for name, function, needs in STEPS:
        missing = [need for need in needs if need not in passed]
        started = time.perf_counter()
        if missing:
            result = StepResult(name, False, 0.0, f"not run: {', '.join(missing)} failed")
        else:
            try:
                detail = function(context)
                result = StepResult(name, True, time.perf_counter() - started, detail)
                passed.add(name)
            except Exception as exc:  # a self-test reports every failure, whatever its type
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                fix = getattr(exc, "fix", None)
                if fix:
                    message += f" (fix: {fix})"
                result = StepResult(name, False, time.perf_counter() - started, message)
        results.append(result)
        if on_step is not None:
            on_step(result)
    return SelfTestReport(tuple(results))


def _print_step(step: StepResult) -> None:
    mark = "ok  " if step.ok else "FAIL"
    print(f"[{mark}] {step.name:<15} {step.seconds:6.2f} s  {step.detail}", flush=True)


def main() -> int:
    """Run the self-test, print each step as it ends; 0 when all passed, 1 otherwise."""
    from gbdesk import __version__

    print(f"gbdesk {__version__} self-test: {describe()}", flush=True)
    started = time.perf_counter()
    report = run_self_test(on_step=_print_step)
    total = time.perf_counter() - started
    if report.ok:
        print(f"self-test passed in {total:.2f} s", flush=True)
        return 0
    failed = ", ".join(step.name for step in report.steps if not step.ok)
    print(f"self-test FAILED ({failed}) after {total:.2f} s", file=sys.stderr, flush=True)
    return 1
