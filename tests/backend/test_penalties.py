"""Repetition, frequency and presence penalties over real HTTP: they change what the model
writes, and a request the engine cannot start fails alone (the engine keeps serving)."""

from __future__ import annotations

import pytest

from tests.backend.conftest import RunningBackend

pytestmark = pytest.mark.model
PROMPT = [{"role": "user", "content": "Write the word cat twenty times, separated by spaces."}]


def answer(backend: RunningBackend, **sampling: float) -> str:
    body = {"messages": PROMPT, "max_tokens": 40, "temperature": 0, **sampling}
    status, reply = backend.post("/v1/chat/completions", body)
    assert status == 200, reply
    return str(reply["choices"][0]["message"]["content"])


@pytest.mark.parametrize(
    "sampling",
    [
        {"repeat_penalty": 1.5},
        {"frequency_penalty": 1.5},
        {"presence_penalty": 1.5},
        {"presence_penalty": 1e-30},  # tiny but not zero: the penalty sampler still runs
    ],
)
def test_penalties_generate_and_the_engine_keeps_serving(
    backend: RunningBackend, sampling: dict[str, float]
) -> None:
    penalised = answer(backend, **sampling)
    assert penalised
    plain = answer(backend)
    assert plain
    if next(iter(sampling.values())) >= 1:
        # The penalty reached the sampler: greedy decoding takes another path.
        assert penalised != plain
    status, _ = backend.get("/health")
    assert status == 200
