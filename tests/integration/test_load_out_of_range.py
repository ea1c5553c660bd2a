"""The load step against a server that sends numbers no column can hold (issue 10 item 3): each
such request is one protocol_error row naming the value; the good rows of the same worker and
part survive (before, one bad value aborted the part's Arrow conversion and the worker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.fakes.hostile import (
    Behaviour,
    HostileServer,
    SeenRequest,
    content_chunk,
    respond,
    sse,
    usage_chunk,
)
from tests.helpers.load_run import run_load

_GOOD = sse([content_chunk("a", [1]), content_chunk("b", [2]), usage_chunk(64, 2)])
#: request_index -> what the server answers (every other index: a good stream).
_HOSTILE = {
    1: sse([content_chunk("a", [1]), usage_chunk(64, 2**31)]),
    3: sse([content_chunk("a", [1]), usage_chunk(2**63, 1)]),
    5: respond(40000, b"odd"),
}


def _route(request: SeenRequest) -> Behaviour:
    request_id = request.headers.get("x-request-id", "")
    index = int(request_id.rsplit("-", 1)[1]) if "-0-" in request_id else -1
    return _HOSTILE.get(index, _GOOD)


def test_out_of_range_values_fail_only_their_request(
    hostile_server: Callable[[Callable[[SeenRequest], Behaviour]], HostileServer],
    qwen_tokenizer_dir: Path,
    tmp_path: Path,
) -> None:
    server = hostile_server(_route)
    code, rows, run_json = run_load(
        tmp_path, server.url, qwen_tokenizer_dir,
        "--rate", "10", "--duration", "1", "--num-workers", "1", "--output-tokens", "2",
    )  # fmt: skip
    assert code == 1  # some requests failed; every one is a row
    assert run_json["complete"] is True and len(rows) == 10
    by_index = {r["request_index"]: r for r in rows}
    for index, row in by_index.items():
        expected = "protocol_error" if index in _HOSTILE else "ok"
        assert row["status"] == expected, (index, row["error"])
    assert by_index[1]["output_tokens"] is None
    assert f"output_tokens value {2**31} is outside" in by_index[1]["error"]
    assert by_index[3]["prompt_tokens"] is None and str(2**63) in by_index[3]["error"]
    # llhttp refuses a status of more than three digits; the error quotes the status line
    assert by_index[5]["http_status"] is None and "HTTP/1.1 40000" in by_index[5]["error"]
    assert all(by_index[i]["output_tokens"] == 2 for i in (0, 2, 4, 6, 7, 8, 9))
