"""GGUF metadata: key-values and tensor infos of local files and remote headers.

``read_gguf`` reads a file on disk (every part of a split model); ``read_remote_gguf`` reads
only the header of a file on a web server (the Hugging Face Hub) with HTTP Range requests.
Both validate every count, length and offset and raise :class:`GGUFError` on bad input.
"""

from gbdesk.gguf.local import read_gguf, read_gguf_bytes
from gbdesk.gguf.model import (
    FLOAT_TYPES,
    GGUFError,
    GGUFMetadata,
    TensorInfo,
    bytes_per_element,
    ggml_type_name,
    ggml_type_size,
)
from gbdesk.gguf.remote import read_remote_bytes, read_remote_gguf

__all__ = [
    "FLOAT_TYPES",
    "GGUFError",
    "GGUFMetadata",
    "TensorInfo",
    "bytes_per_element",
    "ggml_type_name",
    "ggml_type_size",
    "read_gguf",
    "read_gguf_bytes",
    "read_remote_bytes",
    "read_remote_gguf",
]
