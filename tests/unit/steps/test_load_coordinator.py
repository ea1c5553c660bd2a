"""The start coordinator and the pods' side of it, in-process over real TCP: the barrier's start
and values, the clock offset on one host, and each refusal as one line naming the pod."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from steps.errors import BenchError
from steps.load.coordinator import serve
from steps.load.pod_link import PodLink, parse_address


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def coordinator() -> Iterator[tuple[int, list[BaseException | None]]]:
    """A coordinator of 2 pods on a free port; yields (port, [its error or None once done])."""
    port = _free_port()
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            serve(port, 2, "run-1", 0.2, 3.0)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield port, outcome
    thread.join(timeout=10)


def _link(port: int, pod: int, pods: int = 2) -> PodLink:
    return PodLink(("127.0.0.1", port), pod, pods, connect_s=10)


def test_two_pods_get_one_run_id_one_start_and_every_value(
    coordinator: tuple[int, list[BaseException | None]],
) -> None:
    port, outcome = coordinator
    links = [_link(port, 0), _link(port, 1)]
    assert {link.run_id for link in links} == {"run-1"}
    clock = links[0].measure_clock()
    assert abs(clock.offset_ns) < 2_000_000 and 0 < clock.rtt_ns < 50_000_000  # one host
    before = time.time_ns()
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda i: links[i].barrier("ready", i * 10, 5.0), (0, 1)))
    assert answers[0] == answers[1]
    start, values = answers[0]
    assert values == [0, 10]
    assert start > before + 100_000_000  # the lead (0.2 s) after the last pod arrived
    for link in links:
        link.finish()
    deadline = time.monotonic() + 10
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    assert outcome == [None]  # every pod done: the coordinator ends cleanly


def test_a_second_pod_with_the_same_index_fails_the_run_naming_it(
    coordinator: tuple[int, list[BaseException | None]],
) -> None:
    port, _ = coordinator
    first = _link(port, 0)
    with pytest.raises(BenchError, match="load pod 0: coordinator: two load pods claim"):
        _link(port, 0)
    with pytest.raises(BenchError, match="two load pods claim --pod-index 0"):
        first.barrier("ready", None, 5.0)
    first.close()


def test_a_pod_of_another_fan_out_is_refused(
    coordinator: tuple[int, list[BaseException | None]],
) -> None:
    port, _ = coordinator
    with pytest.raises(BenchError, match="expects --load-pods 2; got pod 0 of 3"):
        _link(port, 0, pods=3)


def test_a_missing_pod_fails_the_barrier_in_one_line(
    coordinator: tuple[int, list[BaseException | None]],
) -> None:
    port, outcome = coordinator
    link = _link(port, 1)
    with pytest.raises(BenchError) as error:
        link.barrier("ready", None, 0.5)
    assert str(error.value) == (
        "load pod 1: coordinator: load pod(s) 0 did not reach 'ready' within 0.5 s"
    )
    link.close()
    deadline = time.monotonic() + 10
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [str(e) for e in outcome] == ["load pod(s) 0 did not reach 'ready' within 0.5 s"]


def test_no_coordinator_fails_the_pod_at_its_connect_timeout() -> None:
    port = _free_port()
    with pytest.raises(
        BenchError, match=f"load pod 0: cannot reach the coordinator at 127.0.0.1:{port} within 1 s"
    ):
        PodLink(("127.0.0.1", port), 0, 2, connect_s=1)


@pytest.mark.parametrize(
    ("text", "expected"), [("10.0.0.7", ("10.0.0.7", 7878)), ("h:9000", ("h", 9000))]
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected
