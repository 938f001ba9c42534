"""The one options schema: every setting and backend option is declared here, once.

Each :class:`Option` says its type, range, default, help, environment name
(``GBDESK_<NAME>``), its `gbdesk serve` flag (if it is a backend option) and whether a running
backend must restart for a change to take effect. Generated from it:

- :class:`gbdesk.settings.Settings` (its field set and defaults are checked against the schema,
  its values are validated by :func:`validate`),
- the `gbdesk serve` command line (:func:`add_serve_arguments`) and the supervisor's argv for
  the child (:func:`serve_argv`),
- the GUI's spin boxes (their range, default and tooltip come from :func:`option`).

A model reference ``id[:QUANT]`` is parsed in one place too: :func:`parse_model_ref`.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gbdesk.errors import ConfigError

ENV_PREFIX = "GBDESK_"
Kind = Literal["str", "int", "bool", "tristate"]

# What "0 / automatic" becomes when nothing else decides (the server's defaults).
DEFAULT_CTX = 4096  # botserver's template: llm-server-ctx-size,4096
DEFAULT_PARALLEL = 4  # chats served at once when the settings say "automatic" (0)
STARTER = "starter"  # the model reference of the bundled starter model
DEFAULT_QUANT = "Q4_K_M"  # the quant a catalogue id without ":QUANT" downloads


@dataclass(frozen=True)
class Option:
    """One option. ``flag``/``serve_field`` are set for options of `gbdesk serve`."""

    name: str  # the Settings field
    kind: Kind
    default: Any
    help: str
    minimum: int | None = None
    maximum: int | None = None
    flag: str | None = None  # e.g. "--ctx"
    serve_field: str | None = None  # the ServeOptions field
    restart: bool = False  # a running backend must restart to use a new value
    auto_text: str | None = None  # what 0 means, for a spin box's special value

    @property
    def env(self) -> str:
        """The environment variable that overrides the settings file."""
        return ENV_PREFIX + self.name.upper()

    def coerce(self, raw: Any, origin: str) -> Any:
        """``raw`` (from a file, the environment or a widget) as this option's type, checked.

        Raises:
            ConfigError: the value has the wrong type or is out of range.
        """
        try:
            value = _coerce(self.kind, raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"setting {self.name!r} from {origin} has the value {raw!r},"
                f" which is not {_KIND_WORDS[self.kind]}",
                fix=f"correct or remove it in {origin}",
            ) from exc
        if isinstance(value, int) and not isinstance(value, bool):
            low = self.minimum if self.minimum is not None else value
            high = self.maximum if self.maximum is not None else value
            if not low <= value <= high:
                raise ConfigError(
                    f"setting {self.name!r} from {origin} is {value},"
                    f" outside {self.minimum}..{self.maximum}",
                    fix=f"use a value between {self.minimum} and {self.maximum} in {origin}",
                )
        return value


_KIND_WORDS = {"str": "a text", "int": "an int", "bool": "a bool", "tristate": "on, off or auto"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(kind: Kind, raw: Any) -> Any:
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(text)
    if kind == "tristate":
        if raw is None or isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"auto", "none", "null"}:
            return None
        return _coerce("bool", text)
    if kind == "int":
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError(raw)
        return int(raw)
    if not isinstance(raw, str | int):
        raise ValueError(raw)
    return str(raw)


OPTIONS: tuple[Option, ...] = (
    Option("models_dir", "str", "", "where imported GGUF files go (empty: the data folder)"),
    Option("hub_endpoint", "str", "", "Hugging Face endpoint or mirror (empty: HF_ENDPOINT)"),
    Option(
        "backend_host",
        "str",
        "127.0.0.1",
        "address to listen on (anything but 127.0.0.1 needs an API key)",
        flag="--host",
        serve_field="host",
        restart=True,
    ),
    Option(
        "backend_port",
        "int",
        8081,
        "the backend's port (0: any free port)",
        minimum=0,
        maximum=65535,
        flag="--port",
        serve_field="port",
        restart=True,
    ),
    Option(
        "context_length",
        "int",
        0,
        f"total context in tokens, shared by all parallel chats (0: {DEFAULT_CTX},"
        " lowered to fit memory)",
        minimum=0,
        maximum=1_048_576,
        flag="--ctx",
        serve_field="ctx",
        restart=True,
        auto_text="Automatic",
    ),
    Option(
        "parallel",
        "int",
        0,
        f"chats served at once, each with its slot of the context (0: {DEFAULT_PARALLEL})",
        minimum=0,
        maximum=64,
        flag="--parallel",
        serve_field="parallel",
        restart=True,
        auto_text="Automatic",
    ),
    Option(
        "gpu_layers",
        "str",
        "auto",
        "'auto' or a number of layers on the GPU (0: CPU only)",
        flag="--gpu-layers",
        serve_field="gpu_layers",
        restart=True,
    ),
    Option(
        "threads",
        "int",
        0,
        "CPU threads (0: the physical cores)",
        minimum=0,
        maximum=1024,
        flag="--threads",
        serve_field="threads",
        restart=True,
        auto_text="Automatic",
    ),
    Option(
        "queue_limit",
        "int",
        16,
        "requests waiting for a slot before the backend answers 429",
        minimum=0,
        maximum=4096,
        flag="--queue-size",
        serve_field="queue_limit",
        restart=True,
    ),
    Option(
        "alias",
        "str",
        "",
        "the model id clients see (empty: the file name)",
        flag="--alias",
        serve_field="alias",
        restart=True,
    ),
    Option(
        "repack",
        "tristate",
        None,
        "llama.cpp's AMX/repacked weight layouts (auto: off on AMX CPUs, else on)",
        flag="--repack",
        serve_field="repack",
        restart=True,
    ),
    Option(
        "model",
        "str",
        "",
        "catalogue id[:QUANT], installed id or .gguf path of the model to serve",
        flag="--model",
        serve_field="model",
        restart=True,
    ),
    Option(
        "reasoning_format",
        "str",
        "deepseek",
        "a reasoning model's <think> text: 'deepseek' moves it to reasoning_content, 'none'"
        " leaves it in the answer",
        flag="--reasoning-format",
        serve_field="reasoning_format",
        restart=True,
    ),
    Option(
        "embedding_model",
        "str",
        "",
        "also serve this embedding model for botserver's knowledge base (catalogue id, installed"
        " id or .gguf path; empty: none)",
        flag="--embedding-model",
        serve_field="embedding_model",
        restart=True,
    ),
    Option(
        "embedding_port",
        "int",
        8082,
        "the embeddings port (botserver's embedding-url default)",
        minimum=0,
        maximum=65535,
        flag="--embedding-port",
        serve_field="embedding_port",
        restart=True,
    ),
    Option(
        "embedding_ctx",
        "int",
        512,
        "tokens per embedded text; longer texts are cut (botserver's 512)",
        minimum=8,
        maximum=131_072,
        flag="--embedding-ctx",
        serve_field="embedding_ctx",
        restart=True,
    ),
    Option(
        "embedding_pooling",
        "str",
        "",
        "mean, cls or last (empty: what the model declares, else mean)",
        flag="--embedding-pooling",
        serve_field="embedding_pooling",
        restart=True,
    ),
    Option(
        "rpc_workers",
        "str",
        "",
        "llama.cpp RPC workers (`gbdesk worker` on other machines) to split the model over, as"
        " HOST:PORT,HOST:PORT (empty: this machine only)",
        flag="--rpc",
        serve_field="rpc",
        restart=True,
    ),
    Option(
        "worker_host",
        "str",
        "127.0.0.1",
        "where this machine's RPC worker listens (anything but 127.0.0.1 lets whoever reaches"
        " it use this computer: the RPC protocol has no password)",
    ),
    Option(
        "worker_port",
        "int",
        50052,
        "the RPC worker's port",
        minimum=1,
        maximum=65535,
    ),
    Option(
        "worker_memory_mib",
        "int",
        0,
        "memory the RPC worker offers, in MiB (0: what is available)",
        minimum=0,
        maximum=16_777_216,
        auto_text="All available",
    ),
    Option("start_backend_at_login", "bool", False, "start the backend in the tray at login"),
    Option(
        "resume_backend",
        "bool",
        True,
        "once the setup wizard is done, serve the model again each time the app opens (a node"
        " for botserver keeps serving after Quit and a relaunch)",
    ),
    Option(
        "botserver_config_csv",
        "str",
        "",
        "the bot's config.csv gbdesk last wrote (kept naming the served model)",
    ),
    Option(
        "botserver_env_file",
        "str",
        "",
        "botserver's .env gbdesk last wrote (kept naming the served model)",
    ),
    Option("database_url", "str", "", "the shard registry's PostgreSQL (empty: embedded)"),
    Option("first_run_done", "bool", False, "the setup wizard has been completed"),
)

_BY_NAME = {item.name: item for item in OPTIONS}


def option(name: str) -> Option:
    """The option called ``name`` (a Settings field). Raises KeyError for an unknown name."""
    return _BY_NAME[name]


def serve_options_schema() -> tuple[Option, ...]:
    """The options of `gbdesk serve`, in command-line order."""
    return tuple(item for item in OPTIONS if item.flag is not None)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every backend option to ``parser``; each defaults to None ("not given")."""
    for item in serve_options_schema():
        assert item.flag is not None and item.serve_field is not None
        if item.kind == "tristate":
            parser.add_argument(
                item.flag,
                dest=item.serve_field,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=item.help,
            )
            continue
        parser.add_argument(
            item.flag,
            dest=item.serve_field,
            type=int if item.kind == "int" else str,
            default=None,
            help=f"{item.help} (settings: {item.name}, env {item.env})",
        )


def serve_argv(values: Mapping[str, Any]) -> list[str]:
    """The `gbdesk serve` arguments for ``values`` (keyed by ServeOptions field).

    Options at their "automatic" value (0, empty, None) are left out, so the child decides the
    same way a `gbdesk serve` typed by hand does.
    """
    argv: list[str] = []
    for item in serve_options_schema():
        assert item.flag is not None and item.serve_field is not None
        value = values.get(item.serve_field)
        if item.kind == "tristate":
            if value is not None:
                argv.append(item.flag if value else "--no-" + item.flag[2:])
        elif value is None or value == "" or (value == 0 and item.auto_text):
            continue  # automatic: the child decides
        else:
            argv += [item.flag, str(value)]
    return argv


def defaults() -> dict[str, Any]:
    """Every option's default, by Settings field."""
    return {item.name: item.default for item in OPTIONS}


def validate(values: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """``values`` (known names only) coerced and range-checked.

    Raises:
        ConfigError: a value has the wrong type or is out of range.
    """
    return {
        name: _BY_NAME[name].coerce(raw, origin) for name, raw in values.items() if name in _BY_NAME
    }


def names() -> Iterable[str]:
    return _BY_NAME.keys()


# --------------------------------------------------------------------------- model references


@dataclass(frozen=True)
class ModelRef:
    """``id[:QUANT]``: a catalogue or installed id with an optional quantization.

    The quant is upper-cased (``q4_k_m`` and ``Q4_K_M`` are the same file); ``quant`` is empty
    when none was given.
    """

    id: str
    quant: str = ""

    @property
    def is_starter(self) -> bool:
        return self.id == STARTER

    def __str__(self) -> str:
        return f"{self.id}:{self.quant}" if self.quant else self.id


def parse_model_ref(text: str) -> ModelRef:
    """Split ``id[:QUANT]`` (surrounding blanks ignored, the quant upper-cased)."""
    model_id, _, quant = text.strip().partition(":")
    return ModelRef(model_id.strip(), quant.strip().upper())
