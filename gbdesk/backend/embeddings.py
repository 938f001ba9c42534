"""The embeddings engine: one thread packs every waiting input into llama.cpp batches.

Each input is one sequence of the batch; llama.cpp pools its token vectors (mean, CLS or last,
as the GGUF says, or as asked) and the vector is L2-normalised, as llama-server's
``/v1/embeddings`` does. Inputs of several concurrent requests share a batch. An input longer
than the context is cut to it (its last special token, [SEP] or EOS, is kept), so botserver's
2,400-character chunks never fail on a 512-token model.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp as llama
import numpy as np

from gbdesk.backend.errors import ModelLoadError, RequestError
from gbdesk.backend.model import ContextOptions, LlamaModel
from gbdesk.gguf import GGUFMetadata

log = logging.getLogger(__name__)

POOLING_TYPES = {"mean": 1, "cls": 2, "last": 3}
DEFAULT_EMBEDDING_CTX = 512  # botserver's --ctx-size for its embedding server
INPUTS_PER_BATCH = 64


def gguf_pooling(metadata: GGUFMetadata) -> str | None:
    """The pooling the GGUF declares (``<arch>.pooling_type``), or None."""
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.pooling_type")
    names = {number: name for name, number in POOLING_TYPES.items()}
    return names.get(value) if isinstance(value, int) else None


@dataclass
class _Job:
    inputs: list[list[int]]
    future: Future
    vectors: list[np.ndarray | None] = field(default_factory=list)
    remaining: int = 0


class EmbeddingEngine:
    """Embeds texts with one model on its own thread.

    Args:
        path: the GGUF file.
        model_id: the id clients see.
        n_ctx: tokens per input (and per batch).
        pooling: mean, cls or last; None: what the GGUF declares, else mean.

    Raises (from the constructor):
        ModelLoadError: the model cannot be loaded.
    """

    def __init__(
        self,
        path: Path,
        model_id: str,
        *,
        n_ctx: int = DEFAULT_EMBEDDING_CTX,
        pooling: str | None = None,
        threads: int = 0,
        gpu_layers: int = 0,
        repack: bool | None = None,
    ) -> None:
        from gbdesk.backend.model import validate_model_file

        metadata = validate_model_file(Path(path))
        self.pooling = pooling or gguf_pooling(metadata) or "mean"
        if self.pooling not in POOLING_TYPES:
            raise ModelLoadError(f"unknown pooling {self.pooling!r}", fix="use mean, cls or last")
        self.model = LlamaModel(
            Path(path),
            ContextOptions(
                n_ctx=n_ctx,
                parallel=INPUTS_PER_BATCH,
                gpu_layers=gpu_layers,
                threads=threads,
                repack=repack,
                embeddings=True,
                pooling=POOLING_TYPES[self.pooling],
            ),
        )
        self.model_id = model_id
        self.n_ctx = self.model.n_ctx
        self.n_embd = self.model.n_embd
        self.n_vocab = self.model.n_vocab
        self.inputs_done = 0
        self.tokens_done = 0
        self._batch = llama.llama_batch_init(self.n_ctx, 0, 1)
        self._jobs: collections.deque[_Job] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="gbdesk-embed", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ any thread

    def tokenize(self, item: str | list[int]) -> list[int]:
        """The tokens of one input, cut to the context.

        Raises:
            RequestError: a token id outside the vocabulary (400).
        """
        if isinstance(item, str):
            tokens = self.model.tokenize(item, add_special=True)
        else:
            if any(token >= self.n_vocab for token in item):
                raise RequestError(400, "a token id is outside the vocabulary", param="input")
            tokens = list(item)
        if len(tokens) > self.n_ctx:
            last = tokens[-1]
            keep_last = bool(llama.llama_vocab_is_control(self.model.vocab, last))
            tokens = [*tokens[: self.n_ctx - 1], last] if keep_last else tokens[: self.n_ctx]
        return tokens

    def submit(self, inputs: list[str | list[int]]) -> Future:
        """Embed ``inputs``; the future gives (unit vectors, prompt tokens).

        Raises:
            RequestError: 400 for a bad token id, 503 when shutting down.
        """
        job = _Job([self.tokenize(item) for item in inputs], Future())
        job.vectors = [None] * len(job.inputs)
        job.remaining = len(job.inputs)
        with self._wake:
            if self._stopping:
                raise RequestError(503, "the server is shutting down", kind="unavailable_error")
            self._jobs.append(job)
            self._wake.notify()
        return job.future

    def close(self) -> None:
        """Stop the thread, fail waiting requests, free the model (safe to call twice)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()
        while self._jobs:
            job = self._jobs.popleft()
            if not job.future.done():
                job.future.set_exception(
                    RequestError(503, "the server is shutting down", kind="unavailable_error")
                )
        if self._batch is not None:
            llama.llama_batch_free(self._batch)
            self._batch = None
        self.model.close()

    # ------------------------------------------------------------------ engine thread

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._jobs:
                    self._wake.wait()
                if self._stopping:
                    return
                jobs = list(self._jobs)
            # (job, index) of every input not yet embedded, oldest request first.
            work = [(job, i) for job in jobs for i, v in enumerate(job.vectors) if v is None]
            try:
                self._embed_batch(self._pack(work))
            except Exception as exc:
                log.exception("embedding batch failed")
                error = RequestError(500, f"embedding failed: {exc}", kind="server_error")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
            with self._wake:
                while self._jobs and (self._jobs[0].future.done()):
                    self._jobs.popleft()

    def _pack(self, work: list[tuple[_Job, int]]) -> list[tuple[_Job, int]]:
        """As many inputs as fit one batch (at least one)."""
        chosen: list[tuple[_Job, int]] = []
        used = 0
        for job, index in work:
            size = len(job.inputs[index])
            if chosen and (used + size > self.n_ctx or len(chosen) >= INPUTS_PER_BATCH):
                break
            chosen.append((job, index))
            used += size
        return chosen

    def _embed_batch(self, chosen: list[tuple[_Job, int]]) -> None:
        model, batch = self.model, self._batch
        memory = model.memory
        if memory:
            llama.llama_memory_clear(memory, True)
        n = 0
        for seq_id, (job, index) in enumerate(chosen):
            for position, token in enumerate(job.inputs[index]):
                batch.token[n] = token
                batch.pos[n] = position
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq_id
                batch.logits[n] = 1
                n += 1
        batch.n_tokens = n
        status = llama.llama_decode(model.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        for seq_id, (job, index) in enumerate(chosen):
            pointer = llama.llama_get_embeddings_seq(model.ctx, seq_id)
            if not pointer:
                raise RuntimeError("llama.cpp returned no pooled embedding")
            array = ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float * self.n_embd)).contents
            vector = np.array(array, dtype=np.float32)
            norm = float(np.linalg.norm(vector))
            job.vectors[index] = vector / norm if norm > 0 else vector
            job.remaining -= 1
            self.inputs_done += 1
            self.tokens_done += len(job.inputs[index])
            if job.remaining == 0 and not job.future.done():
                total = sum(len(tokens) for tokens in job.inputs)
                job.future.set_result((job.vectors, total))
