"""Chat prompts from the model's own template (``tokenizer.chat_template`` in the GGUF).

Rendered with jinja2 in a sandbox, the way llama-cpp-python's Jinja2ChatFormatter and
Hugging Face transformers do it. A model without a template gets the one of llama.cpp's
built-in templates that its architecture and special tokens call for (Gemma's turns for
gemma, Llama 3's headers for a vocabulary with ``<|eot_id|>``...), rendered by llama.cpp's
``llama_chat_apply_template``; ChatML only when nothing else fits.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gbdesk.backend.errors import RequestError
from gbdesk.backend.json_body import clip

if TYPE_CHECKING:
    from gbdesk.backend.model import LlamaModel
    from gbdesk.gguf.model import GGUFMetadata

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class _IgnoreGenerationTags(jinja2.ext.Extension):
    """Hugging Face's ``{% generation %}`` tag marks training spans: render its body as is."""

    tags = {"generation"}  # noqa: RUF012 (jinja2's Extension API declares it this way)

    def parse(self, parser: jinja2.parser.Parser) -> list[jinja2.nodes.Node]:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise RequestError(400, f"the chat template refused the messages: {message}", param="messages")


class ChatTemplate:
    """A compiled chat template.

    Raises (from the constructor):
        jinja2.TemplateSyntaxError: the template is not valid jinja2.
    """

    def __init__(
        self,
        source: str | None,
        *,
        bos_token: str = "",
        eos_token: str = "",
        builtin: str | None = None,
    ) -> None:
        self.source = source or CHATML_TEMPLATE
        self.from_model = bool(source)  # else a llama.cpp built-in (or ChatML) stands in
        self.builtin = None if source else builtin  # a llama.cpp template name
        self.bos_token = bos_token
        self.eos_token = eos_token
        environment = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[_IgnoreGenerationTags, jinja2.ext.loopcontrols],
        )
        environment.filters["tojson"] = _tojson
        self._template = environment.from_string(self.source)

    @property
    def name(self) -> str:
        """The words for it: "the model's own", or the built-in one used ("chatml", "llama3")."""
        return "the model's own" if self.from_model else (self.builtin or "chatml")

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """The prompt text for ``messages``.

        Raises:
            RequestError: the template rejects the conversation or fails on it (400).
        """
        if self.builtin is not None:
            return _apply_builtin(self.builtin, messages, add_generation_prompt)
        try:
            return self._template.render(
                messages=list(messages),
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                add_generation_prompt=add_generation_prompt,
                tools=list(tools) if tools else None,
                raise_exception=_raise_exception,
                strftime_now=lambda fmt: datetime.now().strftime(fmt),
            )
        except RequestError:
            raise
        except Exception as exc:
            # jinja2's own errors, and whatever the template's code raises on the client's
            # data (a TypeError adding a string to an object, ...): the messages are at fault.
            detail = str(exc) if isinstance(exc, jinja2.TemplateError) else type(exc).__name__
            raise RequestError(
                400,
                f"the chat template cannot render these messages: {clip(detail, 200)}",
                param="messages",
            ) from None


# Architectures whose models use one llama.cpp template whatever their vocabulary.
_ARCH_TEMPLATES = {
    "gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma",
    "phi3": "phi3", "command-r": "command-r", "cohere2": "command-r",
    "deepseek2": "deepseek2", "chatglm": "chatglm4", "exaone": "exaone3", "granite": "granite",
    "minicpm": "minicpm", "orion": "orion", "rwkv6": "rwkv-world",
}  # fmt: skip
# Otherwise, the special token that a template's turns are made of.
_TOKEN_TEMPLATES = (
    ("<|im_start|>", "chatml"),
    ("<|eot_id|>", "llama3"),
    ("<|start_header_id|>", "llama3"),
    ("<start_of_turn>", "gemma"),
    ("<|end|>", "phi3"),
    ("[INST]", "mistral-v1"),
)


# Every llama.cpp built-in template gbdesk may choose ("chatml" when nothing else fits).
BUILTIN_TEMPLATES = tuple(
    sorted({*_ARCH_TEMPLATES.values(), *(name for _, name in _TOKEN_TEMPLATES), "chatml"})
)


def builtin_template_name(architecture: str, has_token: Callable[[str], bool]) -> str:
    """The llama.cpp built-in template for a model that has none in its GGUF.

    ``has_token(text)`` tells whether the vocabulary has ``text`` as one (special) token.
    """
    if architecture in _ARCH_TEMPLATES:
        return _ARCH_TEMPLATES[architecture]
    for token, name in _TOKEN_TEMPLATES:
        if has_token(token):
            return name
    return "chatml"


def _apply_builtin(
    name: str, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool
) -> str:
    import llama_cpp as llama

    encoded = [
        (str(m.get("role", "user")).encode(), str(m.get("content") or "").encode())
        for m in messages
    ]
    array = (llama.llama_chat_message * len(encoded))()
    for slot, (role, content) in zip(array, encoded, strict=True):
        slot.role, slot.content = role, content
    size = sum(len(r) + len(c) for r, c in encoded) * 2 + 256
    for _ in range(2):
        buffer = ctypes.create_string_buffer(size)
        written = llama.llama_chat_apply_template(
            name.encode(), array, len(encoded), add_generation_prompt, buffer, size
        )
        if written < 0:
            raise RequestError(
                400, f"llama.cpp's {name} template cannot render these messages", param="messages"
            )
        if written <= size:
            return buffer.raw[:written].decode("utf-8", errors="replace")
        size = written + 1
    raise RequestError(500, "the chat template output kept growing", kind="server_error")


def template_for_model(model: LlamaModel) -> ChatTemplate:
    """The model's chat template, or llama.cpp's built-in one for its architecture.

    Raises:
        jinja2.TemplateSyntaxError: the GGUF's template is not valid jinja2.
    """
    metadata = model.metadata
    source = metadata.get("tokenizer.chat_template")
    builtin = None
    if not source:

        def has_token(text: str) -> bool:
            tokens = model.tokenize(text, add_special=False)
            return len(tokens) == 1 and model.piece(tokens[0]) == text.encode()

        builtin = builtin_template_name(metadata.architecture, has_token)
    return ChatTemplate(
        source,
        bos_token=model.token_text(metadata.get("tokenizer.ggml.bos_token_id")),
        eos_token=model.token_text(metadata.get("tokenizer.ggml.eos_token_id")),
        builtin=builtin,
    )


@dataclass(frozen=True)
class TemplateChoice:
    """Which chat template a model file gets: its own, or a built-in one in its place."""

    model_name: str  # the file name
    from_model: bool  # the GGUF has tokenizer.chat_template
    name: str  # "the model's own", or the llama.cpp built-in template used ("chatml"...)

    @property
    def warning(self) -> str:
        """What a person must know about a model without a template ("" when it has one)."""
        return "" if self.from_model else missing_template_warning(self.model_name, self.name)


def missing_template_warning(model_name: str, builtin: str) -> str:
    """The warning for a model without a chat template that is served with ``builtin``."""
    return (
        f"{model_name} has no chat template in its file: it is probably a base model, not "
        "tuned for chat, and its answers may repeat one line until the token limit. gbdesk "
        f"uses the {builtin} template (llama.cpp's built-in) for it; for a bot, choose the "
        "model's instruct or chat version."
    )


def template_choice(metadata: GGUFMetadata, model_name: str) -> TemplateChoice:
    """The template :func:`template_for_model` will give this model, from its header alone
    (nothing is loaded): its own, or the built-in one its architecture and tokens call for."""
    if metadata.get("tokenizer.chat_template"):
        return TemplateChoice(model_name, True, "the model's own")
    tokens = metadata.get("tokenizer.ggml.tokens") or ()
    vocabulary = frozenset(token for token in tokens if isinstance(token, str))
    builtin = builtin_template_name(metadata.architecture, vocabulary.__contains__)
    return TemplateChoice(model_name, False, builtin)


def template_choice_for_file(path: str | Path) -> TemplateChoice:
    """:func:`template_choice` of a GGUF file.

    Raises:
        GGUFError: the file is missing or not a readable GGUF.
    """
    from gbdesk.gguf import read_gguf

    return template_choice(read_gguf(path), Path(path).name)


def template_warning(path: str | Path) -> str:
    """The warning for a model file without a chat template; "" when it has one, or when its
    header cannot be read (loading it will say why)."""
    from gbdesk.gguf.model import GGUFError

    try:
        return template_choice_for_file(path).warning
    except GGUFError:
        return ""
