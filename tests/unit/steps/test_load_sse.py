"""steps.load.sse: any split of a valid byte stream gives the same events (property-based)."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steps.load.sse import EventTooLarge, SseSplitter

_PAYLOAD = st.binary(min_size=0, max_size=40).filter(
    lambda b: b"\n" not in b and b"\r" not in b and not b.startswith(b" ")
)


def _encode(payloads: list[bytes], eol: bytes, extras: bool) -> bytes:
    out = b""
    for p in payloads:
        if extras:
            out += b": keep-alive comment" + eol + b"event: message" + eol
        out += b"data: " + p + eol + eol
    return out


def _feed_all(stream: bytes, cuts: list[int]) -> list[bytes]:
    splitter = SseSplitter()
    events: list[bytes] = []
    prev = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        events.extend(splitter.feed(stream[prev:cut]))
        prev = cut
    return events


@given(
    payloads=st.lists(_PAYLOAD, max_size=12),
    eol=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    extras=st.booleans(),
    data=st.data(),
)
def test_sse_feed_any_split_same_events(
    payloads: list[bytes], eol: bytes, extras: bool, data: st.DataObject
) -> None:
    stream = _encode(payloads, eol, extras)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    assert _feed_all(stream, cuts) == payloads


@given(payloads=st.lists(_PAYLOAD, min_size=1, max_size=5))
def test_sse_feed_byte_by_byte_crlf_same_events(payloads: list[bytes]) -> None:
    stream = _encode(payloads, b"\r\n", extras=False)
    assert _feed_all(stream, list(range(len(stream)))) == payloads


def test_sse_feed_many_events_in_one_read_in_order() -> None:
    stream = b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n'
    assert SseSplitter().feed(stream) == [b'{"a":1}', b'{"a":2}', b"[DONE]"]


def test_sse_feed_multiline_data_joined_with_lf_and_no_space_variant() -> None:
    stream = b"data:first\ndata: second\nid: 3\n\n"
    assert SseSplitter().feed(stream) == [b"first\nsecond"]


def test_sse_feed_incomplete_event_kept_pending() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b'data: {"a":') == []
    assert splitter.pending == b'data: {"a":'
    assert splitter.feed(b"1}\n\n") == [b'{"a":1}']
    assert splitter.pending == b""


def test_sse_feed_event_without_data_not_dispatched() -> None:
    assert SseSplitter().feed(b": ping\n\nevent: x\n\n") == []


def test_sse_event_at_the_cap_passes_one_byte_more_raises() -> None:
    event = b"data: " + b"x" * 94  # 100 bytes before the blank line
    assert SseSplitter(max_event_bytes=100).feed(event[:50]) == []
    splitter = SseSplitter(max_event_bytes=100)
    splitter.feed(event[:50])
    assert splitter.feed(event[50:] + b"\n\n") == [b"x" * 94]
    with pytest.raises(EventTooLarge, match="longer than 100 bytes"):
        SseSplitter(max_event_bytes=100).feed(event + b"y")


def test_sse_endless_line_stops_at_the_cap_in_small_reads() -> None:
    splitter = SseSplitter(max_event_bytes=64 * 1024)
    splitter.feed(b'data: {"a":1}\n\ndata: ')
    with pytest.raises(EventTooLarge):
        for _ in range(1000):
            splitter.feed(b"x" * 1024)
    assert len(splitter.pending) <= 64 * 1024


def test_sse_unfinished_event_not_recopied_per_read() -> None:
    # Memory allocated while feeding one small read must not grow with the event pending so
    # far: re-joining the whole buffer per read is quadratic (an endless line pinned a worker's
    # CPU). Summed over 512 reads of 1 KiB, a linear splitter allocates a few MiB; the old
    # one allocated ~2 x 128 MiB.
    splitter = SseSplitter(max_event_bytes=1 << 20)
    splitter.feed(b"data: ")
    piece = b"x" * 1024
    allocated = 0
    tracemalloc.start()
    try:
        for _ in range(512):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            splitter.feed(piece)
            allocated += tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert allocated < 16 * 512 * 1024
    assert splitter.feed(b"\n\n") == [piece * 512]
