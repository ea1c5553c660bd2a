"""The simulator's pure latency model, stop points, fault bands and admission queue: no clock."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from steps.simulator.latency import (
    AdmissionQueue,
    Fault,
    LatencyModel,
    NoiseModel,
    RequestNoise,
    output_length,
    pick_fault,
)


def test_first_token_delay_adds_prefill_per_prompt_token() -> None:
    model = LatencyModel(ttft_s=0.05, itl_s=0.01, prefill_s_per_token=2e-6)
    assert model.first_token_delay_s(0) == pytest.approx(0.05)
    assert model.first_token_delay_s(512) == pytest.approx(0.05 + 512 * 2e-6)


def test_chunk_sizes_one_token_per_chunk_by_default() -> None:
    assert LatencyModel(ttft_s=0.05, itl_s=0.01).chunk_sizes(128) == [1] * 128


@pytest.mark.parametrize(
    ("tokens", "per_chunk", "expected"),
    [(10, 4, [1, 4, 4, 1]), (9, 4, [1, 4, 4]), (1, 4, [1]), (2, 3, [1, 1])],
)
def test_chunk_sizes_coalesced_keep_prefill_token_alone_and_sum_to_output(
    tokens: int, per_chunk: int, expected: list[int]
) -> None:
    # The prefill token leaves alone; then one chunk per `per_chunk` decode steps.
    model = LatencyModel(ttft_s=0.05, itl_s=0.01, tokens_per_chunk=per_chunk)
    assert model.chunk_sizes(tokens) == expected


def test_chunk_sizes_zero_tokens_no_chunks() -> None:
    assert LatencyModel(ttft_s=0.0, itl_s=0.0).chunk_sizes(0) == []


def test_output_length_ignore_eos_exactly_max_tokens() -> None:
    assert {output_length(128, True, d / 10) for d in range(10)} == {128}


def test_output_length_without_ignore_eos_stops_within_1_to_max() -> None:
    rng = random.Random(0)
    lengths = [output_length(20, False, rng.random()) for _ in range(2000)]
    assert min(lengths) == 1
    assert max(lengths) == 20
    assert output_length(20, False, 0.0) == 1
    assert output_length(20, False, 0.999999) == 20


def test_pick_fault_bands_match_rates() -> None:
    rng = random.Random(1)
    draws = [pick_fault(rng.random(), 0.1, 0.2, 0.3) for _ in range(20000)]
    share = {kind: draws.count(kind) / len(draws) for kind in [*Fault, None]}
    assert share[Fault.ERROR_500] + share[Fault.ERROR_503] == pytest.approx(0.1, abs=0.01)
    assert share[Fault.ERROR_500] == pytest.approx(0.05, abs=0.01)
    assert share[Fault.DISCONNECT] == pytest.approx(0.2, abs=0.015)
    assert share[Fault.MALFORMED] == pytest.approx(0.3, abs=0.015)
    assert share[None] == pytest.approx(0.4, abs=0.015)


def test_pick_fault_zero_rates_never_faults() -> None:
    assert pick_fault(0.0, 0.0, 0.0, 0.0) is None


def test_admission_queue_over_capacity_waits_fifo_and_release_admits_next() -> None:
    queue: AdmissionQueue[str] = AdmissionQueue(2)
    assert [queue.offer(x) for x in "abcd"] == [True, True, False, False]
    assert (queue.running, queue.waiting) == (2, 2)
    assert queue.release() == "c"
    assert queue.release() == "d"
    assert (queue.running, queue.waiting) == (2, 0)
    assert queue.release() is None
    assert queue.release() is None
    assert (queue.running, queue.waiting) == (0, 0)


def test_admission_queue_withdraw_drops_only_waiting_items() -> None:
    queue: AdmissionQueue[str] = AdmissionQueue(1)
    queue.offer("a")
    queue.offer("b")
    queue.offer("c")
    assert queue.withdraw("b") is True
    assert queue.withdraw("a") is False  # running, not waiting
    assert queue.release() == "c"


def test_admission_queue_new_arrival_does_not_jump_waiting_line() -> None:
    queue: AdmissionQueue[str] = AdmissionQueue(1)
    queue.offer("a")
    queue.offer("b")
    assert queue.release() == "b"
    assert queue.offer("c") is False


def test_admission_queue_release_without_running_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        AdmissionQueue[str](1).release()


def test_noise_model_off_draws_nothing_and_changes_nothing() -> None:
    rng = random.Random(3)
    noise = NoiseModel()
    assert noise.run_level(rng) == 1.0
    assert noise.request(rng) == RequestNoise(1.0, 1.0, 0.0)
    assert rng.random() == random.Random(3).random()  # the seeded stream is untouched


def test_noise_model_lognormal_spreads_and_stall_share() -> None:
    rng = random.Random(11)
    noise = NoiseModel(ttft_jitter=0.25, itl_jitter=0.05, stall_rate=0.03, stall_ms=500.0)
    draws = [noise.request(rng) for _ in range(20_000)]
    logs = sorted(math.log(d.ttft_factor) for d in draws)
    assert logs[len(logs) // 2] == pytest.approx(0.0, abs=0.01)  # median factor 1
    assert statistics.pstdev(logs) == pytest.approx(0.25, rel=0.03)
    assert statistics.pstdev(math.log(d.itl_factor) for d in draws) == pytest.approx(0.05, rel=0.03)
    stalls = [d.stall_s for d in draws if d.stall_s]
    assert set(stalls) == {0.5} and len(stalls) / len(draws) == pytest.approx(0.03, rel=0.1)
    levels = [NoiseModel(level_drift=0.02).run_level(rng) for _ in range(5_000)]
    assert statistics.pstdev(math.log(v) for v in levels) == pytest.approx(0.02, rel=0.05)
