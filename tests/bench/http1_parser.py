"""A/B of the load step's HTTP/1.1 response parser (not a test; run by hand).

    .venv/bin/python -m tests.bench.http1_parser [--baseline-commit 74e9734] [--rounds 7]

Feeds one 128-chunk SSE completion response (vLLM's chunk layout, Transfer-Encoding: chunked,
one network read per chunk as at 10 ms ITL) through `steps.load.http1.ResponseParser` and
through the parser of `--baseline-commit` (read with `git show`: the hand-written Python
parser that httptools replaced), interleaved round by round, and prints the median CPU per
response of each. Both are called exactly as `Connection.data_received` calls them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable
from typing import Any

from steps.load.http1 import ResponseParser
from tests.fixtures.simulator import ROOT

_HEAD = (
    b"HTTP/1.1 200 OK\r\ndate: Wed, 02 Dec 2026 04:00:00 GMT\r\nserver: uvicorn\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
)


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _reads() -> list[bytes]:
    """The response as the client reads it: the head with the first chunk, then one per read."""
    event = {
        "id": "cmpl-x", "object": "text_completion", "created": 1, "model": "Qwen/Qwen3-8B",
        "choices": [{"index": 0, "text": " tok", "logprobs": None, "finish_reason": None,
                     "stop_reason": None, "token_ids": [1234]}],
        "usage": None,
    }  # fmt: skip
    reads = [_chunk(b"data: " + json.dumps(event).encode() + b"\n\n") for _ in range(128)]
    reads[0] = _HEAD + reads[0]
    usage = b'data: {"usage":{"prompt_tokens":512,"completion_tokens":128}}\n\n'
    reads.append(_chunk(usage) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return reads


def _baseline_parser(commit: str) -> Any:
    """`ResponseParser` of steps/load/http1.py at `commit`."""
    source = subprocess.run(
        ["git", "show", f"{commit}:steps/load/http1.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    module = types.ModuleType("baseline_http1")
    exec(compile(source, f"{commit}:steps/load/http1.py", "exec"), module.__dict__)
    return module.ResponseParser


def _one_response(parser_class: Any, reads: list[bytes]) -> Callable[[], int]:
    def run() -> int:
        parser = parser_class()
        size = 0
        for data in reads:
            size += len(parser.feed(data))
        assert parser.complete and parser.status == 200
        return size

    return run


def main() -> int:
    """Print the median CPU µs per response of both parsers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-commit", default="74e9734")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--responses", type=int, default=3000)
    args = parser.parse_args()
    reads = _reads()
    runs = {
        "httptools (steps/load/http1.py)": _one_response(ResponseParser, reads),
        f"hand-written ({args.baseline_commit})": _one_response(
            _baseline_parser(args.baseline_commit), reads
        ),
    }
    sizes = {name: run() for name, run in runs.items()}
    assert len(set(sizes.values())) == 1, sizes  # the same body bytes from both
    cpu_us: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(args.rounds):
        order = list(runs) if round_ % 2 == 0 else list(reversed(runs))
        for name in order:
            start = time.process_time()
            for _ in range(args.responses):
                runs[name]()
            cpu_us[name].append((time.process_time() - start) / args.responses * 1e6)
    for name, values in cpu_us.items():
        values.sort()
        print(
            f"{name}: median {values[len(values) // 2]:.1f} µs CPU per 129-read response "
            f"(min {values[0]:.1f}, max {values[-1]:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
