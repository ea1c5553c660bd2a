"""steps.load.client.scan_chunk: cheap chunk classification on real vLLM/OpenAI shapes."""

from __future__ import annotations

import pytest

from steps.load.client import ChunkScan, scan_chunk

_TEXT = b'"text"'
_CONTENT = b'"content"'


def _scan(payload: bytes, key: bytes = _TEXT) -> ChunkScan:
    out = ChunkScan()
    scan_chunk(payload, key, out)
    return out


@pytest.mark.parametrize(
    ("payload", "content", "tokens", "usage"),
    [
        # vLLM completion content chunk with return_token_ids, 3 coalesced tokens
        (
            b'{"id":"c","object":"text_completion","model":"m","choices":[{"index":0,'
            b'"text":" a b c","logprobs":null,"finish_reason":null,"token_ids":[264, 293, 272]}]}',
            True,
            3,
            False,
        ),
        # python json.dumps spacing, no token_ids
        (b'{"choices": [{"index": 0, "text": " the"}], "usage": null}', True, -1, False),
        # empty text finish chunk with empty token_ids
        (
            b'{"choices":[{"index":0,"text":"","finish_reason":"length","token_ids":[]}]}',
            False,
            0,
            False,
        ),
        # usage chunk
        (
            b'{"choices":[],"usage":{"prompt_tokens":512,"completion_tokens":128}}',
            False,
            -1,
            True,
        ),
        # token ids but text withheld (partial UTF-8): still a token arrival
        (b'{"choices":[{"text":"","token_ids":[151]}]}', True, 1, False),
        # prompt_token_ids must not be taken for token_ids
        (b'{"choices":[{"text":"x","prompt_token_ids":[1,2,3]}]}', True, -1, False),
    ],
)
def test_scan_chunk_completion_shapes(
    payload: bytes, content: bool, tokens: int, usage: bool
) -> None:
    out = _scan(payload)
    assert (out.content, out.tokens, out.usage) == (content, tokens, usage)


def test_scan_chunk_chat_role_only_delta_is_not_content() -> None:
    role = b'{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'
    assert not _scan(role, _CONTENT).content


def test_scan_chunk_chat_content_and_reasoning_are_content() -> None:
    assert _scan(b'{"choices":[{"delta":{"content":"Hi"}}]}', _CONTENT).content
    thinking = b'{"choices":[{"delta":{"reasoning_content":"hmm","content":null}}]}'
    assert _scan(thinking, _CONTENT).content


def test_scan_chunk_model_named_text_does_not_fool_completion_check() -> None:
    payload = b'{"model":"text","choices":[{"text":""}]}'
    assert not _scan(payload).content
