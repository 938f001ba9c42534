"""Load a GGUF with llama-cpp-python in a fresh process and measure memory and speed.

The child loads the model the way gbdesk's backend does (low-level API: n_ctx, n_seq_max =
parallel, n_batch 512), feeds every sequence a prompt, 512 tokens unless told (so the compute
buffer is really used), then generates a few tokens for all sequences together. It reports
resident memory (RSS) after ``import llama_cpp`` and after the run, and the tokens/s of prompt
processing and generation (from the 20th-percentile step: what the machine does when other
programs leave it the cores; on a shared machine preempted steps would otherwise dominate).
RSS counts the model file's mmap'd pages once they are touched.

Weight repacking (llama.cpp's "extra buffer types") is off: on this project's machine the AMX
repack path crashes in llama_decode, and with it on, weights would be held twice.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gbdesk.errors import ExitCode, GbdeskError
from gbdesk.hardware.cpu import physical_cores

# Each model is timed this many times, in turn, and the fastest run kept (what the machine does
# when nothing else runs): on a shared machine one process can run 15% slower than the next
# for its whole life, and only ever slower.
REPEATS = 5
# Runs per model of the quick bench (`gbdesk bench --quick`, the app's first-run measurement).
QUICK_REPEATS = 2
_log = logging.getLogger(__name__)
# How often a waiting measure() looks at its cancel event (seconds).
_CANCEL_POLL_S = 0.1


class BenchCancelledError(GbdeskError):
    """The timing was stopped on request (Quit, Cancel); nothing was stored."""

    exit_code = ExitCode.INTERRUPTED


_CHILD = r"""
import json, sys, time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) * 1024
    import psutil
    return psutil.Process().memory_info().rss
import llama_cpp
from llama_cpp import _internals as internals
path, n_ctx, par, n_gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
threads, max_prompt = int(sys.argv[5]), int(sys.argv[6])
quiet = llama_cpp.llama_log_callback(lambda *a: None)  # kept alive: llama.cpp calls it later
llama_cpp.llama_log_set(quiet, None)
base = rss()
mp = llama_cpp.llama_model_default_params()
mp.use_extra_bufts = False
model = internals.LlamaModel(path_model=path, params=mp, verbose=False)
cp = llama_cpp.llama_context_default_params()
cp.n_ctx, cp.n_seq_max, cp.n_batch, cp.n_ubatch = n_ctx, par, 512, 512
cp.n_threads = cp.n_threads_batch = threads
ctx = internals.LlamaContext(model=model, params=cp, verbose=False)
n_vocab = model.n_vocab()
batch = internals.LlamaBatch(n_tokens=512, embd=0, n_seq_max=par, verbose=False)
per_seq = llama_cpp.llama_n_ctx(ctx.ctx) // par
n_prompt = max(1, min(max_prompt, per_seq - n_gen - 8))
t0 = time.perf_counter()
for s in range(par):
    prompt = [(i * 7919 + s * 13) % (n_vocab - 200) + 100 for i in range(n_prompt)]
    for start in range(0, n_prompt, 512):  # one batch holds 512 tokens
        chunk = prompt[start:start + 512]
        batch.batch.n_tokens = len(chunk)
        for j, token in enumerate(chunk):
            batch.batch.token[j] = token
            batch.batch.pos[j] = start + j
            batch.batch.seq_id[j][0] = s
            batch.batch.n_seq_id[j] = 1
            batch.batch.logits[j] = start + j == n_prompt - 1
        ctx.decode(batch)
t_prompt = time.perf_counter()
steps = []
for step in range(n_gen + 1):  # step 0 warms up and is not timed
    t1 = time.perf_counter()
    batch.batch.n_tokens = 0
    for s in range(par):
        j = batch.batch.n_tokens
        batch.batch.n_tokens += 1
        batch.batch.token[j] = (step * 31 + s) % (n_vocab - 200) + 100
        batch.batch.pos[j] = n_prompt + step
        batch.batch.seq_id[j][0] = s
        batch.batch.n_seq_id[j] = 1
        batch.batch.logits[j] = True
    ctx.decode(batch)
    if step:
        steps.append(time.perf_counter() - t1)
steps.sort()
print(json.dumps({"base_rss": base, "rss": rss(), "prompt_tokens": n_prompt * par,
    "prompt_seconds": t_prompt - t0, "generated": n_gen * par,
    "step_seconds": steps[len(steps) // 5],
    "n_ctx": llama_cpp.llama_n_ctx(ctx.ctx), "n_prompt": n_prompt}))
"""


@dataclass(frozen=True)
class Measurement:
    """One measured run: memory growth after `import llama_cpp`, and speeds."""

    n_ctx: int
    parallel: int
    rss_growth_bytes: int
    base_rss_bytes: int
    prompt_tps: float
    generation_tps: float  # per sequence
    allocated_ctx: int
    prompt_tokens: int  # per sequence: the KV cells generation attends over, with the answer


def measure(
    path: Path,
    n_ctx: int,
    parallel: int,
    *,
    n_gen: int = 16,
    max_prompt: int = 512,
    threads: int | None = None,
    timeout: float = 240,
    cancel: threading.Event | None = None,
) -> Measurement:
    """Run the measuring child for one case, with the backend's thread count by default.
    Setting ``cancel`` kills the child within a tenth of a second.

    Raises:
        BenchCancelledError: ``cancel`` was set.
        GbdeskError: the child failed or ran past ``timeout`` (the message says why in a
            sentence; the child's whole output goes to the log).
    """
    command = [
        sys.executable,
        "-c",
        _CHILD,
        str(path),
        str(n_ctx),
        str(parallel),
        str(n_gen),
        str(threads or physical_cores()),
        str(max_prompt),
    ]
    result = _run_child(command, timeout, cancel)
    if result is None:
        raise GbdeskError(
            f"timing {path.name} took longer than {timeout:.0f} s",
            fix="close other programs that keep the processor busy and try again",
        )
    if result.returncode != 0:
        _log.warning("measuring %s failed (exit %s): %s", path, result.returncode, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        # the child's last line is its exception, "ValueError: Failed to load model from ..."
        reason = lines[-1].split(": ", 1)[-1] if lines else f"exit status {result.returncode}"
        raise GbdeskError(
            f"llama.cpp could not run {path.name}: {reason}",
            fix="check that the file is a complete GGUF model (download it again if it was cut "
            "short) of an architecture this llama.cpp knows",
        )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return Measurement(
        n_ctx=n_ctx,
        parallel=parallel,
        rss_growth_bytes=data["rss"] - data["base_rss"],
        base_rss_bytes=data["base_rss"],
        prompt_tps=data["prompt_tokens"] / data["prompt_seconds"],
        generation_tps=1 / data["step_seconds"],
        allocated_ctx=data["n_ctx"],
        prompt_tokens=data["n_prompt"],
    )


def _run_child(
    command: list[str], timeout: float, cancel: threading.Event | None
) -> subprocess.CompletedProcess[str] | None:
    """Run ``command`` to its end (None when it ran past ``timeout``; killed then).

    Raises:
        BenchCancelledError: ``cancel`` was set (the child is killed and reaped first).
    """
    if cancel is None:
        try:
            return subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return None
    if cancel.is_set():
        raise BenchCancelledError("the timing was stopped", fix="start it again when you like")
    deadline = time.monotonic() + timeout
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        while True:
            try:
                stdout, stderr = child.communicate(timeout=_CANCEL_POLL_S)
                return subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
            except subprocess.TimeoutExpired:
                if cancel.is_set() or time.monotonic() > deadline:
                    child.kill()
                    child.communicate()
                    if cancel.is_set():
                        raise BenchCancelledError(
                            "the timing was stopped", fix="start it again when you like"
                        ) from None
                    return None


@dataclass(frozen=True)
class TimedModel:
    """A GGUF file to time, with the context and the prompt length it is timed at."""

    path: Path
    n_ctx: int
    prompt: int


def time_in_turn(
    models: list[TimedModel],
    repeats: int = REPEATS,
    report: Callable[[str], None] = lambda _: None,
    *,
    n_gen: int = 48,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> list[list[Measurement]]:
    """Time every model ``repeats`` times, in turn, so a slow minute on a shared machine
    spreads over all of them; the runs of each model, in the order given. ``progress`` gets
    (runs done, runs in all) after each run.

    Raises:
        BenchCancelledError: ``cancel`` was set.
        GbdeskError: llama-cpp-python failed to load or run one of them.
    """
    runs: list[list[Measurement]] = [[] for _ in models]
    total = repeats * len(models)
    for round_ in range(repeats):
        report(f"timing {len(models)} models on the CPU (round {round_ + 1} of {repeats})...")
        for index, model in enumerate(models):
            runs[index].append(
                measure(
                    model.path,
                    model.n_ctx,
                    1,
                    n_gen=n_gen,
                    max_prompt=model.prompt,
                    cancel=cancel,
                )
            )
            progress(round_ * len(models) + index + 1, total)
    return runs
