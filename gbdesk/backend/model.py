"""A GGUF model loaded with llama.cpp's C API (through llama-cpp-python's ctypes bindings).

Only what the engine needs: validate the file before llama.cpp sees it, load it, create a
context with one KV-cache sequence per parallel slot, tokenize, turn tokens into bytes, and read
the chat template and special tokens from the metadata.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import llama_cpp as llama

from gbdesk.backend.errors import ModelLoadError
from gbdesk.gguf import GGUFError, GGUFMetadata, read_gguf
from gbdesk.hardware.cpu import physical_cores

log = logging.getLogger(__name__)

_backend_lock = threading.Lock()
_backend_state = {"ready": False}


@dataclass(frozen=True)
class ContextOptions:
    """How the llama.cpp context is sized.

    ``n_ctx`` is the whole KV cache; each of the ``parallel`` slots gets ``n_ctx // parallel``
    tokens of it, as llama-server does.
    """

    n_ctx: int = 4096
    parallel: int = 4
    gpu_layers: int = 0
    threads: int = 0  # 0: the physical cores
    n_batch: int = 2048
    n_ubatch: int = 512
    # llama.cpp's extra weight layouts (AMX, repacking); None: off on AMX CPUs (see cpu_has_amx).
    repack: bool | None = None
    # An embeddings context: one batch of n_ctx tokens (each input whole in one micro-batch),
    # pooled with this llama_pooling_type; ``parallel`` is then the inputs per batch.
    embeddings: bool = False
    pooling: int = -1
    # llama.cpp devices to offload to (ggml_backend_dev_t addresses: RPC workers, then GPUs) and
    # each one's share of the offloaded layers; empty: llama.cpp's default choice.
    devices: tuple[int, ...] = ()
    tensor_split: tuple[float, ...] = ()


def cpu_has_amx() -> bool:
    """Whether the CPU advertises Intel AMX (Linux only; False elsewhere).

    llama.cpp then moves weights into AMX buffers, and its AMX kernels crash with a general
    protection fault where the kernel or hypervisor does not enable AMX state (measured on a
    Firecracker VM: both llama-cpp-python and llama-server die on the first multi-token batch).
    So gbdesk leaves the extra buffer types off on AMX CPUs unless told otherwise.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


def validate_model_file(path: Path) -> GGUFMetadata:
    """Check that ``path`` is a complete GGUF file before llama.cpp touches it.

    Raises:
        ModelLoadError: the file is missing, not a GGUF file, or shorter than its tensors need.
    """
    try:
        metadata = read_gguf(path)
    except GGUFError as exc:
        raise ModelLoadError(
            f"cannot load the model {path}: {exc.message}",
            fix=exc.fix or "download the model again, or pick another file",
        ) from exc
    for tensor in metadata.tensors:
        index = tensor.file_index
        end = metadata.data_offsets[index] + tensor.offset + tensor.n_bytes
        if end > metadata.file_sizes[index]:
            raise ModelLoadError(
                f"the model file {path} is truncated: tensor {tensor.name!r} ends at byte {end:,}"
                f" but the file has {metadata.file_sizes[index]:,} bytes",
                fix="the download was probably interrupted: download the model again",
            )
    return metadata


# ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 "continues the previous line".
_GGML_LEVELS = {3: logging.WARNING, 4: logging.ERROR}
_llama_log = logging.getLogger("gbdesk.llama_cpp")


@llama.llama_log_callback
def _route_llama_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    """llama.cpp's messages go to gbdesk's log (debug, or warning/error), not raw stderr."""
    message = text.decode("utf-8", errors="replace").rstrip()
    if message:
        _llama_log.log(_GGML_LEVELS.get(level, logging.DEBUG), "%s", message)


def _init_backend() -> None:
    with _backend_lock:
        if not _backend_state["ready"]:
            llama.llama_log_set(_route_llama_log, ctypes.c_void_p(0))
            llama.llama_backend_init()
            _backend_state["ready"] = True


class LlamaModel:
    """A loaded model and its context. Not thread-safe: the engine thread owns it.

    Raises (from the constructor):
        ModelLoadError: the file is invalid or llama.cpp refuses to load it.
    """

    def __init__(self, path: Path, options: ContextOptions) -> None:
        self.path = Path(path)
        self.metadata = validate_model_file(self.path)
        _init_backend()
        model_params = llama.llama_model_default_params()
        model_params.n_gpu_layers = options.gpu_layers
        model_params.use_extra_bufts = (
            options.repack if options.repack is not None else not cpu_has_amx()
        )
        if options.devices:
            # NULL-terminated; kept on self: llama.cpp reads them during the load only, but a
            # ctypes array freed early would be a use-after-free.
            self._devices = (ctypes.c_void_p * (len(options.devices) + 1))(*options.devices, None)
            model_params.devices = ctypes.cast(self._devices, ctypes.c_void_p)
            split = list(options.tensor_split)[: llama.LLAMA_MAX_DEVICES]
            self._split = (ctypes.c_float * llama.LLAMA_MAX_DEVICES)(*split)
            model_params.tensor_split = self._split
        self._model = llama.llama_model_load_from_file(str(self.path).encode(), model_params)
        if not self._model:
            raise ModelLoadError(
                f"llama.cpp could not load the model {self.path}",
                fix="the file may be damaged or use an architecture this llama.cpp does not know;"
                " download it again or pick another model (the log file has llama.cpp's reason)",
            )
        self.n_ctx_train = llama.llama_model_n_ctx_train(self._model)
        n_ctx = options.n_ctx
        ctx_params = llama.llama_context_default_params()
        ctx_params.n_ctx = n_ctx
        ctx_params.n_seq_max = options.parallel
        ctx_params.n_batch = min(options.n_batch, n_ctx)
        ctx_params.n_ubatch = min(options.n_ubatch, ctx_params.n_batch)
        threads = options.threads or physical_cores()
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        ctx_params.kv_unified = False  # each slot gets its own part, like llama-server --parallel
        ctx_params.no_perf = True
        if options.embeddings:
            ctx_params.embeddings = True
            ctx_params.pooling_type = options.pooling
            ctx_params.n_batch = ctx_params.n_ubatch = n_ctx
            ctx_params.kv_unified = True  # the inputs of a batch share the n_ctx cells
        self._ctx = llama.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            llama.llama_model_free(self._model)
            self._model = None
            raise ModelLoadError(
                f"llama.cpp could not create a context of {n_ctx} tokens for {self.path}",
                fix="lower --ctx or --parallel, or offload fewer layers to the GPU (--gpu-layers)",
            )
        self.memory = llama.llama_get_memory(self._ctx)
        self.vocab = llama.llama_model_get_vocab(self._model)
        self.n_vocab = llama.llama_vocab_n_tokens(self.vocab)
        self.n_ctx = llama.llama_n_ctx(self._ctx)
        self.n_ctx_slot = llama.llama_n_ctx_seq(self._ctx)
        self.n_batch = llama.llama_n_batch(self._ctx)
        self.parallel = llama.llama_n_seq_max(self._ctx)
        self.add_bos = bool(llama.llama_vocab_get_add_bos(self.vocab))
        self.n_embd = llama.llama_model_n_embd(self._model)
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._piece_cache: dict[int, bytes] = {}

    @property
    def ctx(self) -> llama.llama_context_p:
        return self._ctx

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        """Tokens of ``text``; special tokens written as text (``<|im_start|>``) are parsed."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (llama.llama_token * capacity)()
        count = llama.llama_tokenize(
            self.vocab, data, len(data), buffer, capacity, add_special, True
        )
        if count < 0:
            capacity = -count
            buffer = (llama.llama_token * capacity)()
            count = llama.llama_tokenize(
                self.vocab, data, len(data), buffer, capacity, add_special, True
            )
        return list(buffer[:count])

    def piece(self, token: int) -> bytes:
        """The bytes of one token (possibly part of a UTF-8 character); cached per token."""
        cached = self._piece_cache.get(token)
        if cached is not None:
            return cached
        buffer = self._piece_buffer
        size = llama.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        piece = buffer.raw[:size]
        self._piece_cache[token] = piece
        return piece

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama.llama_vocab_is_eog(self.vocab, token))

    def token_text(self, token_id: int | None) -> str:
        """A special token's text (BOS/EOS for chat templates), or ''."""
        if token_id is None or token_id < 0 or token_id >= self.n_vocab:
            return ""
        text = llama.llama_vocab_get_text(self.vocab, token_id)
        return text.decode("utf-8", errors="replace") if text else ""

    def close(self) -> None:
        """Free the context and the model (safe to call twice)."""
        if self._ctx:
            llama.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            llama.llama_model_free(self._model)
            self._model = None
