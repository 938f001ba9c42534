"""Continuous batching on llama.cpp: one thread decodes every active request in one batch per step.

Each parallel slot owns one sequence of the KV cache and, while busy, one request with its own
sampler chain. Between steps, waiting requests join free slots (their prompts are prefilled in
chunks that share the batch with the other slots' next tokens) and finished ones leave. Text goes
to the HTTP threads through one queue per request: ``str`` pieces, then a :class:`Finish`.

A free slot keeps its KV cache, so the next turn of the same chat (whose prompt starts with the
previous prompt and answer) only prefills the new tokens.
"""

from __future__ import annotations

import codecs
import collections
import ctypes
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import llama_cpp as llama
import numpy as np

from gbdesk.backend.errors import RequestError
from gbdesk.backend.model import LlamaModel
from gbdesk.enums import StrEnum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; the defaults are llama-server's."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    penalty_last_n: int = 64
    seed: int | None = None
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)

    @property
    def uses_penalties(self) -> bool:
        return (
            self.repeat_penalty != 1.0
            or self.presence_penalty != 0.0
            or self.frequency_penalty != 0.0
        )


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. ``max_tokens`` of None means until the end of generation or context."""

    prompt_tokens: tuple[int, ...]
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    sampling: SamplingParams = field(default_factory=SamplingParams)
    ignore_eos: bool = False
    grammar: str | None = None  # GBNF that every sampled token must follow (root rule "root")
    # With patterns the grammar is lazy: it applies from the first capture group of the first
    # pattern that matches the text generated so far (llama.cpp's lazy grammar).
    grammar_triggers: tuple[str, ...] = ()
    # Log-probabilities of each generated token, and of this many most likely tokens (None: off).
    logprobs: int | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token's log-probability (from the model's distribution before sampling)
    and the ``top`` most likely tokens, each ``(token bytes, logprob)``. Sent just before the
    text of its token."""

    piece: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True)
class Finish:
    """The last event of a generation."""

    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    error: str | None = None


# What a generation hands its consumer: text pieces, token log-probabilities, then one Finish.
Event = str | TokenLogprob | Finish


class Generation:
    """A request's handle: iterate it for text pieces; ``finish`` is set when it ends."""

    def __init__(
        self, request: GenerationRequest, notify: Callable[[], None] | None = None
    ) -> None:
        self.request = request
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.cancelled = False
        self.finish: Finish | None = None
        self.submitted_at = time.monotonic()
        # Called (on the engine thread) after each event: wakes an asyncio consumer.
        self.notify = notify

    def push(self, event: Event) -> None:
        """Hand an event to the consumer (engine thread)."""
        self.events.put(event)
        if self.notify is not None:
            self.notify()

    def cancel(self) -> None:
        """Ask the engine to stop this generation and free its slot at the next step."""
        self.cancelled = True

    def poll(self) -> Event | None:
        """The next event if one is ready, else None (never blocks)."""
        try:
            event = self.events.get_nowait()
        except queue.Empty:
            return None
        if isinstance(event, Finish):
            self.finish = event
        return event

    def next_event(self, timeout: float | None = None) -> Event:
        """The next text piece or the Finish. Raises queue.Empty after ``timeout`` seconds."""
        event = self.events.get(timeout=timeout)
        if isinstance(event, Finish):
            self.finish = event
        return event


@dataclass(frozen=True)
class EngineStats:
    """Counters for /metrics."""

    requests_finished: int
    prompt_tokens: int
    completion_tokens: int
    generation_seconds: float
    active: int
    queued: int
    slots: int
    queue_limit: int
    single_steps: int = 0  # decode steps of one generating sequence alone
    single_seconds: float = 0.0

    @property
    def single_sequence_tps(self) -> float:
        """Tokens/s of one sequence generating alone (0 before any such step)."""
        return self.single_steps / self.single_seconds if self.single_seconds > 0 else 0.0

    @property
    def tokens_per_second(self) -> float:
        if self.generation_seconds <= 0:
            return 0.0
        return self.completion_tokens / self.generation_seconds


class _Slot:
    """One parallel slot: a KV-cache sequence and the request using it (if any)."""

    __slots__ = (
        "batch_index",
        "cached_tokens",
        "decoder",
        "generation",
        "held",
        "last_token",
        "max_tokens",
        "n_generated",
        "n_prefilled",
        "prompt",
        "sampler",
        "seq_id",
        "stops",
        "tokens",
    )

    def __init__(self, seq_id: int) -> None:
        self.seq_id = seq_id
        self.tokens: list[int] = []  # what this sequence of the KV cache holds, in order
        self.generation: Generation | None = None
        self.sampler: llama.llama_sampler_p | None = None
        self.prompt: tuple[int, ...] = ()
        self.n_prefilled = 0
        self.last_token = -1
        self.n_generated = 0
        self.max_tokens = 0
        self.batch_index = -1
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.held = ""
        self.stops: tuple[str, ...] = ()
        self.cached_tokens = 0

    @property
    def active(self) -> Generation:
        """The generation this slot serves; only asked of a busy slot."""
        generation = self.generation
        if generation is None:
            raise RuntimeError("an idle slot has no generation")
        return generation


class QueueFullError(RequestError):
    pass


class Engine:
    """Runs generations on one model with ``model.parallel`` slots.

    Args:
        model: the loaded model; the engine owns it from now on and frees it in :meth:`close`.
        queue_limit: how many requests may wait for a slot before :meth:`submit` refuses more.
    """

    def __init__(self, model: LlamaModel, *, queue_limit: int = 16) -> None:
        self.model = model
        self.queue_limit = queue_limit
        self._slots = [_Slot(seq_id) for seq_id in range(model.parallel)]
        self._pending: collections.deque[Generation] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._batch = llama.llama_batch_init(model.n_batch, 0, 1)
        self._eog_bias = self._end_of_generation_bias()
        self._requests_finished = 0
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._generation_seconds = 0.0
        # Steps that decoded one generating sequence and nothing else: its tokens/s on its own.
        self._single_steps = 0
        self._single_seconds = 0.0
        # Set when llama.cpp can no longer run this model (an RPC worker stopped answering):
        # every request then ends with this sentence; the engine thread never comes back.
        self.failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="gbdesk-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public, any thread

    @property
    def n_ctx_slot(self) -> int:
        return self.model.n_ctx_slot

    def submit(
        self,
        request: GenerationRequest,
        *,
        prompt_param: str = "messages",
        notify: Callable[[], None] | None = None,
    ) -> Generation:
        """Queue a request; its slot is assigned between two decoding steps.

        Raises:
            RequestError: 400 when the prompt does not fit a slot's context, 429 when the queue
                is full, 503 when the engine is shutting down.
        """
        n_prompt = len(request.prompt_tokens)
        if n_prompt == 0:
            raise RequestError(400, "the prompt is empty", param=prompt_param)
        if n_prompt >= self.model.n_ctx_slot:
            raise RequestError(
                400,
                f"the prompt has {n_prompt} tokens, more than the {self.model.n_ctx_slot - 1}"
                f" that fit a slot's context ({self.model.n_ctx} tokens shared by"
                f" {self.model.parallel} slots); shorten it or start the server with a larger"
                " --ctx",
                param=prompt_param,
                code="context_length_exceeded",
            )
        if request.grammar is not None:
            self.check_grammar(request.grammar, request.grammar_triggers)
        generation = Generation(request, notify)
        with self._wake:
            if self.failure is not None:
                raise RequestError(503, self.failure, kind="unavailable_error")
            if self._stopping:
                raise RequestError(503, "the server is shutting down", kind="unavailable_error")
            # Waiting requests first take the free slots (at the next step); only what is left
            # over counts against the queue.
            free = sum(1 for slot in self._slots if slot.generation is None)
            if len(self._pending) >= self.queue_limit + free:
                raise QueueFullError(
                    429,
                    f"all {len(self._slots)} slots are busy and {self.queue_limit} requests are"
                    " already waiting; retry later",
                    kind="rate_limit_error",
                )
            self._pending.append(generation)
            self._wake.notify()
        return generation

    def _grammar_sampler(self, grammar: str, triggers: tuple[str, ...]) -> llama.llama_sampler_p:
        if not triggers:
            return llama.llama_sampler_init_grammar(self.model.vocab, grammar.encode(), b"root")
        patterns = (ctypes.c_char_p * len(triggers))(*(t.encode() for t in triggers))
        no_tokens = (llama.llama_token * 1)()
        return llama.llama_sampler_init_grammar_lazy_patterns(
            self.model.vocab, grammar.encode(), b"root", patterns, len(triggers), no_tokens, 0
        )

    def check_grammar(self, grammar: str, triggers: tuple[str, ...] = ()) -> None:
        """Raises:
        RequestError: llama.cpp cannot parse the GBNF grammar (400)."""
        sampler = self._grammar_sampler(grammar, triggers)
        if not sampler:
            raise RequestError(400, "the grammar could not be parsed", param="grammar")
        llama.llama_sampler_free(sampler)

    def stats(self) -> EngineStats:
        return EngineStats(
            requests_finished=self._requests_finished,
            prompt_tokens=self._prompt_tokens,
            completion_tokens=self._completion_tokens,
            generation_seconds=self._generation_seconds,
            single_steps=self._single_steps,
            single_seconds=self._single_seconds,
            active=sum(1 for slot in self._slots if slot.generation is not None),
            queued=len(self._pending),
            slots=len(self._slots),
            queue_limit=self.queue_limit,
        )

    def fail(self, message: str) -> None:
        """llama.cpp stopped on a fault (any thread): end every request with ``message``.

        The engine thread is stuck inside llama.cpp for good (its worker is gone), so nothing
        else touches the slots any more; this takes them over and refuses new requests.
        """
        with self._wake:
            if self.failure is not None:
                return
            self.failure = message
            self._stopping = True
            for slot in self._slots:
                if slot.generation is not None:
                    self._finish(slot, FinishReason.ERROR, error=message, flush=False)
            while self._pending:
                generation = self._pending.popleft()
                generation.push(
                    Finish(FinishReason.ERROR, len(generation.request.prompt_tokens), 0, 0, message)
                )

    def close(self) -> None:
        """Stop the engine thread, end every request, free the model (safe to call twice)."""
        if self.failure is not None:
            # The engine thread and the model's buffers belong to a lost worker: freeing them
            # would call it again. The process ends soon after; the OS frees what is here.
            return
        with self._wake:
            if self._stopping and not self._thread.is_alive():
                return
            self._stopping = True
            self._wake.notify()
        self._thread.join()
        for slot in self._slots:
            if slot.generation is not None:
                self._finish(slot, FinishReason.ERROR, error="the server is shutting down")
        while self._pending:
            generation = self._pending.popleft()
            generation.push(
                Finish(
                    FinishReason.ERROR,
                    len(generation.request.prompt_tokens),
                    0,
                    error="shutting down",
                )
            )
        if self._batch is not None:
            llama.llama_batch_free(self._batch)
            self._batch = None
        self.model.close()

    # ------------------------------------------------------------------ engine thread

    def _end_of_generation_bias(self) -> ctypes.Array:
        """Logit biases of -inf for every end-of-generation token (for ignore_eos)."""
        eog = [t for t in range(self.model.n_vocab) if self.model.is_end_of_generation(t)]
        biases = (llama.llama_logit_bias * len(eog))()
        for entry, token in zip(biases, eog, strict=True):
            entry.token = token
            entry.bias = float("-inf")
        return biases

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._pending and not self._has_work():
                    self._wake.wait()
                if self._stopping:
                    return
                self._admit()
            try:
                self._step()
            except Exception as exc:  # keep serving: fail the requests in flight, not the server
                log.exception("decoding step failed")
                for slot in self._slots:
                    if slot.generation is not None:
                        self._finish(slot, FinishReason.ERROR, error=f"internal error: {exc}")
                        self._forget_cache(slot)

    def _has_work(self) -> bool:
        return any(slot.generation is not None for slot in self._slots)

    def _admit(self) -> None:
        """Move waiting requests into free slots (called with the lock held)."""
        while self._pending:
            free = [slot for slot in self._slots if slot.generation is None]
            if not free:
                return
            generation = self._pending.popleft()
            if generation.cancelled:
                generation.push(Finish(FinishReason.CANCELLED, 0, 0))
                continue
            prompt = generation.request.prompt_tokens
            slot = max(free, key=lambda s: _common_prefix(s.tokens, prompt))
            try:
                self._start(slot, generation)
            except Exception as exc:  # one request that cannot start must not stop the engine
                log.error("a request could not start: %s: %s", type(exc).__name__, exc)
                if slot.sampler is not None:
                    llama.llama_sampler_free(slot.sampler)
                    slot.sampler = None
                slot.generation = None
                slot.prompt = ()
                self._forget_cache(slot)
                generation.push(
                    Finish(
                        FinishReason.ERROR,
                        len(prompt),
                        0,
                        error="internal error: the request could not start",
                    )
                )

    def _start(self, slot: _Slot, generation: Generation) -> None:
        request = generation.request
        prompt = request.prompt_tokens
        # Reuse the cached prefix, but always decode at least one prompt token for its logits.
        keep = min(_common_prefix(slot.tokens, prompt), len(prompt) - 1)
        if not llama.llama_memory_seq_rm(self.model.memory, slot.seq_id, keep, -1):
            keep = 0
            llama.llama_memory_seq_rm(self.model.memory, slot.seq_id, -1, -1)
        del slot.tokens[keep:]
        slot.generation = generation
        slot.prompt = prompt
        slot.n_prefilled = keep
        slot.cached_tokens = keep
        slot.n_generated = 0
        slot.max_tokens = request.max_tokens if request.max_tokens is not None else -1
        slot.decoder.reset()
        slot.held = ""
        slot.stops = request.stop
        slot.sampler = self._sampler_chain(request)
        self._prompt_tokens += len(prompt) - keep

    def _sampler_chain(self, request: GenerationRequest) -> llama.llama_sampler_p:
        params = request.sampling
        chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
        add = llama.llama_sampler_chain_add
        if params.logit_bias:  # the request's own biases come first, as in llama-server
            biases = (llama.llama_logit_bias * len(params.logit_bias))()
            for entry, (token, bias) in zip(biases, params.logit_bias, strict=True):
                entry.token, entry.bias = token, bias
            add(
                chain,  # the sampler keeps a copy of the array
                llama.llama_sampler_init_logit_bias(self.model.n_vocab, len(biases), biases),
            )
        if request.ignore_eos and len(self._eog_bias):
            add(
                chain,
                llama.llama_sampler_init_logit_bias(
                    self.model.n_vocab, len(self._eog_bias), self._eog_bias
                ),
            )
        if request.grammar is not None:
            grammar = self._grammar_sampler(request.grammar, request.grammar_triggers)
            if grammar:  # checked by submit(); never None here
                add(chain, grammar)
        if params.uses_penalties:
            penalties = llama.llama_sampler_init_penalties(
                self.model.n_vocab,
                params.penalty_last_n,
                params.repeat_penalty,
                params.frequency_penalty,
                params.presence_penalty,
            )
            # The prompt counts for the penalties (only for them: not for a grammar).
            for token in request.prompt_tokens[-params.penalty_last_n :]:
                llama.llama_sampler_accept(penalties, token)
            add(chain, penalties)
        if params.temperature <= 0:
            add(chain, llama.llama_sampler_init_greedy())
            return chain
        if params.top_k > 0:
            add(chain, llama.llama_sampler_init_top_k(params.top_k))
        if params.top_p < 1.0:
            add(chain, llama.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0.0:
            add(chain, llama.llama_sampler_init_min_p(params.min_p, 1))
        add(chain, llama.llama_sampler_init_temp(params.temperature))
        seed = llama.LLAMA_DEFAULT_SEED if params.seed is None else params.seed & 0xFFFFFFFF
        add(chain, llama.llama_sampler_init_dist(seed))
        return chain

    def _step(self) -> None:
        """One llama_decode over every busy slot, then sampling for those that need a token."""
        batch = self._batch
        tokens, positions = batch.token, batch.pos
        n_seq_ids, seq_ids, wants_logits = batch.n_seq_id, batch.seq_id, batch.logits
        capacity = self.model.n_batch
        n = 0
        generating = 0
        busy: list[_Slot] = []
        for slot in self._slots:
            generation = slot.generation
            if generation is None:
                continue
            if generation.cancelled:
                self._finish(slot, FinishReason.CANCELLED)
                continue
            busy.append(slot)
            if slot.n_prefilled < len(slot.prompt):
                continue
            # Generating: feed the last sampled token.
            tokens[n] = slot.last_token
            positions[n] = len(slot.tokens)
            n_seq_ids[n] = 1
            seq_ids[n][0] = slot.seq_id
            wants_logits[n] = 1
            slot.tokens.append(slot.last_token)
            slot.batch_index = n
            n += 1
            generating += 1
        for slot in busy:
            start = slot.n_prefilled
            prompt = slot.prompt
            if start >= len(prompt) or n >= capacity:
                continue
            chunk = min(len(prompt) - start, capacity - n)
            seq_id = slot.seq_id
            pos = len(slot.tokens)
            for offset in range(chunk):
                tokens[n] = prompt[start + offset]
                positions[n] = pos + offset
                n_seq_ids[n] = 1
                seq_ids[n][0] = seq_id
                wants_logits[n] = 0
                n += 1
            slot.tokens.extend(prompt[start : start + chunk])
            slot.n_prefilled = start + chunk
            if slot.n_prefilled == len(prompt):
                wants_logits[n - 1] = 1
                slot.batch_index = n - 1
            else:
                slot.batch_index = -1
        if n == 0:
            return
        batch.n_tokens = n
        started = time.perf_counter()
        status = llama.llama_decode(self.model.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        for slot in busy:
            if slot.batch_index >= 0:
                self._sample(slot)
                slot.batch_index = -1
        if generating:
            elapsed = time.perf_counter() - started
            self._generation_seconds += elapsed
            if n == 1:
                self._single_steps += 1
                self._single_seconds += elapsed

    def _sample(self, slot: _Slot) -> None:
        model = self.model
        token = llama.llama_sampler_sample(slot.sampler, model.ctx, slot.batch_index)
        if model.is_end_of_generation(token) and not slot.active.request.ignore_eos:
            self._finish(slot, FinishReason.STOP)
            return
        slot.n_generated += 1
        self._completion_tokens += 1
        slot.last_token = token
        if slot.active.request.logprobs is not None:
            slot.active.push(self._logprob(slot, token))
        text = slot.decoder.decode(model.piece(token))
        if text and self._emit(slot, text):
            return  # a stop string ended it
        if slot.n_generated == slot.max_tokens or len(slot.tokens) >= model.n_ctx_slot:
            self._finish(slot, FinishReason.LENGTH)

    def _logprob(self, slot: _Slot, token: int) -> TokenLogprob:
        model = self.model
        pointer = llama.llama_get_logits_ith(model.ctx, slot.batch_index)
        logits = np.ctypeslib.as_array(pointer, shape=(model.n_vocab,)).astype(np.float64)
        peak = logits.max()
        logsumexp = peak + math.log(float(np.exp(logits - peak).sum()))
        top_n = slot.active.request.logprobs or 0
        top: tuple[tuple[bytes, float], ...] = ()
        if top_n:
            best = np.argpartition(-logits, top_n - 1)[:top_n]
            best = best[np.argsort(-logits[best])]
            top = tuple((model.piece(int(t)), float(logits[t] - logsumexp)) for t in best)
        return TokenLogprob(model.piece(token), float(logits[token] - logsumexp), top)

    def _emit(self, slot: _Slot, text: str) -> bool:
        """Hand text to the client, holding back what may be the start of a stop string.

        Returns True when a stop string was found (and the generation finished).
        """
        stops = slot.stops
        if not stops:
            slot.active.push(text)
            return False
        held = slot.held + text
        cut = -1
        for stop in stops:
            index = held.find(stop)
            if index >= 0 and (cut < 0 or index < cut):
                cut = index
        if cut >= 0:
            slot.held = ""
            if cut:
                slot.active.push(held[:cut])
            self._finish(slot, FinishReason.STOP, flush=False)
            return True
        keep = _longest_stop_prefix(held, stops)
        ready = held[: len(held) - keep]
        slot.held = held[len(held) - keep :]
        if ready:
            slot.active.push(ready)
        return False

    def _finish(
        self, slot: _Slot, reason: FinishReason, *, error: str | None = None, flush: bool = True
    ) -> None:
        generation = slot.active
        if flush and reason in {FinishReason.STOP, FinishReason.LENGTH}:
            rest = slot.held + slot.decoder.decode(b"", final=True)
            if rest:
                generation.push(rest)
        slot.held = ""
        generation.push(
            Finish(reason, len(slot.prompt), slot.n_generated, slot.cached_tokens, error)
        )
        self._requests_finished += 1
        if slot.sampler is not None:
            llama.llama_sampler_free(slot.sampler)
            slot.sampler = None
        # The KV cache stays: slot.tokens is exactly what it holds, ready for prefix reuse.
        slot.generation = None
        slot.prompt = ()

    def _forget_cache(self, slot: _Slot) -> None:
        llama.llama_memory_seq_rm(self.model.memory, slot.seq_id, -1, -1)
        slot.tokens.clear()


def _common_prefix(cached: list[int], prompt: tuple[int, ...]) -> int:
    limit = min(len(cached), len(prompt))
    index = 0
    while index < limit and cached[index] == prompt[index]:
        index += 1
    return index


def _longest_stop_prefix(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that is the start of some stop string."""
    best = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:size]):
                best = size
                break
    return best
