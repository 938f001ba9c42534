"""A model without a chat template (a base model) is never served silently: `gbdesk models
import`, `gbdesk serve` and the backend's /props say so, and which template stands in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gbdesk.backend.chat_template import template_choice_for_file, template_warning
from gbdesk.cli import main
from tests.backend.conftest import start_backend, wait_for
from tests.free_ports import free_port
from tests.support.gguf_edit import copy_without_keys


@pytest.fixture
def base_model(starter_model: Path, tmp_path: Path) -> Path:
    """The starter without tokenizer.chat_template: what a base model's file looks like."""
    return copy_without_keys(
        starter_model, tmp_path / "base-model.Q4_1.gguf", drop={"tokenizer.chat_template"}
    )


def test_the_header_tells_which_template_a_model_gets(
    base_model: Path, starter_model: Path
) -> None:
    own = template_choice_for_file(starter_model)
    assert own.from_model and own.warning == "" and template_warning(starter_model) == ""
    bare = template_choice_for_file(base_model)
    assert not bare.from_model and bare.name == "chatml"  # its vocabulary has <|im_start|>
    assert bare.warning == template_warning(base_model)
    assert "base-model.Q4_1.gguf has no chat template" in bare.warning
    assert "base model" in bare.warning and "chatml template" in bare.warning
    assert template_warning(base_model.parent / "missing.gguf") == ""  # loading will say why


def test_models_import_warns_about_a_model_without_a_template(
    base_model: Path, starter_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "import", str(base_model)]) == 0
    out, err = capsys.readouterr()
    assert "imported" in out
    assert "warning: base-model.Q4_1.gguf has no chat template" in err and "chatml" in err
    assert main(["models", "import", str(starter_model)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_served_base_model_is_named_in_props_and_in_the_ready_summary(
    base_model: Path, starter_model: Path
) -> None:
    for model, from_model in ((base_model, False), (starter_model, True)):
        backend = start_backend(model, ctx=512, parallel=1)
        try:
            status, raw = backend.get("/props")
            props = json.loads(raw)
        finally:
            backend.stop.set()
            backend.thread.join(60)
        assert status == 200 and props["chat_template_from_model"] is from_model
        if from_model:
            assert props["chat_template_name"] == "the model's own"
            assert props["chat_template_warning"] == ""
        else:
            assert props["chat_template_name"] == "chatml"
            assert "has no chat template" in props["chat_template_warning"]


def test_gbdesk_serve_prints_the_model_the_context_and_the_template_warning(
    base_model: Path, gbdesk_home: Path
) -> None:
    """The real command, as a person runs it: once ready it says what it serves."""
    port = free_port()
    env = {**os.environ, "GBDESK_HOME": str(gbdesk_home)}
    command = [sys.executable, "-m", "gbdesk", "serve", "--model", str(base_model)]
    command += ["--port", str(port), "--ctx", "1024", "--parallel", "2", "--threads", "1"]
    lines: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as child:

        def read() -> None:
            assert child.stdout is not None
            for line in child.stdout:
                lines.append(line.rstrip("\n"))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            wait_for(lambda: any(line.startswith("warning:") for line in lines), "the summary")
        finally:
            child.terminate()
            child.wait(60)
            reader.join(10)
    text = "\n".join(lines)
    assert f"gbdesk backend ready on http://127.0.0.1:{port}" in text
    assert f"model: base-model.Q4_1.gguf ({base_model})" in text
    assert "context: 1024 tokens, 2 chats at once of up to 512 tokens each" in text
    assert "chat template: chatml" in text
    assert "warning: base-model.Q4_1.gguf has no chat template" in text
