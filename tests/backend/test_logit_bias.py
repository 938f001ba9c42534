"""OpenAI's ``logit_bias``: a bias of -100 keeps a token out, 100 puts it in; a malformed map
or a token outside the vocabulary is a 400 naming the field (never silently ignored)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.backend.conftest import RunningBackend

ASK = [{"role": "user", "content": "What is the capital of France?"}]


def _first_token(backend: RunningBackend, **extra: Any) -> int:
    status, body = backend.post(
        "/v1/chat/completions",
        {"messages": ASK, "max_tokens": 1, "temperature": 0, "logprobs": True, **extra},
    )
    assert status == 200, body
    (entry,) = body["choices"][0]["logprobs"]["content"]
    status, tokens = backend.post("/tokenize", {"content": entry["token"]})
    assert status == 200
    return int(tokens["tokens"][0])


@pytest.mark.model
def test_a_banned_token_is_never_chosen_and_a_pushed_one_always_is(backend: RunningBackend) -> None:
    greedy = _first_token(backend)
    assert _first_token(backend, logit_bias={str(greedy): -100}) != greedy
    status, tokens = backend.post("/tokenize", {"content": " Lisbon"})
    assert status == 200
    pushed = int(tokens["tokens"][0])
    assert _first_token(backend, logit_bias={str(pushed): 100}) == pushed
    # A small bias is a nudge: the greedy token stays.
    assert _first_token(backend, logit_bias={str(pushed): 0.01}) == greedy


@pytest.mark.model
@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([[1, 2]], "must be an object"),
        ({"a": 1}, "keys must be token ids"),
        ({"-1": 1}, "keys must be token ids"),
        ({"1": "x"}, "must be a number"),
        ({"1": 101}, "between -100.0 and 100.0"),
        ({"1": True}, "must be a number"),
        ({"999999999": 1}, "the vocabulary has"),
        ({str(n): 1 for n in range(1025)}, "at most 1024"),
    ],
)
def test_a_bad_logit_bias_is_a_400_naming_it(
    backend: RunningBackend, value: Any, words: str
) -> None:
    for path, body in (
        ("/v1/chat/completions", {"messages": ASK, "max_tokens": 1}),
        ("/v1/completions", {"prompt": "Hi", "max_tokens": 1}),
    ):
        status, answer = backend.post(path, {**body, "logit_bias": value})
        assert status == 400, answer
        assert answer["error"]["param"] == "logit_bias", answer
        assert words in answer["error"]["message"], json.dumps(answer)
