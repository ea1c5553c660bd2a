"""Reading server_metrics rows: counter increases across resets, histogram windows and
quantiles, per-round gauges, and the exposition parser's refusal of malformed text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steps.aggregate.server_metrics import overhead, server_group
from steps.aggregate.summary import Window
from steps.errors import UsageError
from steps.load.scrape import parse_page
from steps.server_metrics import SERVER_METRICS_SCHEMA
from steps.server_series import (
    HistogramWindow,
    ServerSamples,
    counter_increase,
    gauge_series,
    histogram_window,
    read_server_metrics,
)

S = 1_000_000_000


def _rows(samples: list[tuple[int, str, str, dict[str, str], float]]) -> pd.DataFrame:
    """(t in s, pod, metric, labels, value) -> rows as read from the file (answered at t + 1 ms)."""
    return pd.DataFrame(
        {
            "round": [int(t) for t, *_ in samples],
            "t_ns": [int(t * S) for t, *_ in samples],
            "t_end_ns": [int(t * S) + 1_000_000 for t, *_ in samples],
            "pod": [p for _, p, *_ in samples],
            "metric": [m for _, _, m, _, _ in samples],
            "labels": [json.dumps(lab, sort_keys=True) for *_, lab, _ in samples],
            "value": [v for *_, v in samples],
            "type": ["counter"] * len(samples),
        }
    )


def test_counter_increase_counts_across_a_reset_and_sums_pods() -> None:
    values_a = [100.0, 110.0, 5.0, 20.0]  # restarted between t=1 and t=2: +10, +5, +15
    values_b = [0.0, 1.0, 2.0, 3.0]
    rows = _rows(
        [(t, "a", "c_total", {}, v) for t, v in enumerate(values_a)]
        + [(t, "b", "c_total", {}, v) for t, v in enumerate(values_b)]
    )
    assert counter_increase(rows, 0, 3 * S) == 30.0 + 3.0
    # A window inside: from the last sample answered by its start to the first one asked
    # at or after its end.
    assert counter_increase(rows, 1.5 * S, 2 * S) == 5.0 + 1.0
    assert counter_increase(rows.iloc[0:0], 0, S) is None


def test_histogram_window_quantiles_follow_prometheus_interpolation() -> None:
    bounds = {"0.1": (0, 10), "0.2": (0, 30), "0.4": (0, 40), "+Inf": (0, 40)}
    samples = []
    for le, (before, after) in bounds.items():
        samples += [
            (0, "a", "h_bucket", {"le": le}, before),
            (1, "a", "h_bucket", {"le": le}, after),
        ]
    samples += [(0, "a", "h_sum", {}, 0.0), (1, "a", "h_sum", {}, 6.0)]
    samples += [(0, "a", "h_count", {}, 0.0), (1, "a", "h_count", {}, 40.0)]
    hist = histogram_window(_rows(samples), 0, S)
    assert hist is not None
    assert hist.bounds == (0.1, 0.2, 0.4, float("inf"))
    assert hist.cumulative == (10.0, 30.0, 40.0, 40.0)
    assert hist.mean == pytest.approx(0.15)
    # rank 20 lies halfway through the (0.1, 0.2] bucket (10 .. 30).
    assert hist.quantile(0.5) == pytest.approx(0.15)
    assert hist.quantile(0.25) == pytest.approx(0.1)
    assert hist.quantile(1.0) == pytest.approx(0.4)


def test_overhead_flags_a_client_faster_than_the_server() -> None:
    hist = HistogramWindow((0.05, 0.1, float("inf")), (0.0, 10.0, 10.0), sum=0.8, count=10.0)
    slower = np.full(10, 90e6)  # 90 ms each: the server saw 80 ms
    ok = overhead(slower, hist)
    assert ok is not None and ok.consistent is True
    assert ok.overhead_ms == pytest.approx(10.0)
    faster = np.full(10, 40e6)  # 40 ms each: under the server's 50 ms bound, which counted none
    bad = overhead(faster, hist)
    assert bad is not None and bad.consistent is False
    assert bad.client_faster_buckets == [50.0]


def test_gauge_series_sums_or_averages_each_round() -> None:
    rows = _rows(
        [
            (0, "a", "g", {}, 1.0),
            (0, "b", "g", {}, 3.0),
            (1, "a", "g", {}, 2.0),
            (1, "b", "g", {}, 6.0),
        ]
    )
    summed = gauge_series(rows, "sum")
    assert summed["value"].tolist() == [4.0, 8.0]
    mean = gauge_series(rows, "mean")
    assert mean["value"].tolist() == [2.0, 4.0]
    assert mean["max"].tolist() == [3.0, 6.0]


@pytest.mark.parametrize(
    "page",
    [
        '# TYPE x counter\nx_total{a="unterminated} 1\n',
        'x{a="b"} not-a-number\n',
        "\x00\x01garbage {{{\n",
    ],
)
def test_malformed_exposition_text_is_refused_whole(page: str) -> None:
    with pytest.raises(ValueError, match="malformed exposition text"):
        parse_page(page)


def test_parse_page_keeps_family_type_labels_and_histogram_samples() -> None:
    page = (
        "# TYPE vllm:num_preemptions_total counter\n"
        'vllm:num_preemptions_total{model_name="m"} 3\n'
        "# TYPE h histogram\n"
        'h_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1.5\nh_count 2\n'
    )
    rows = parse_page(page)
    assert (
        "vllm:num_preemptions",
        "vllm:num_preemptions_total",
        '{"model_name":"m"}',
        "counter",
        3.0,
    ) in rows
    assert ("h", "h_bucket", '{"le":"+Inf"}', "histogram", 2.0) in rows
    assert ("h", "h_count", "{}", "histogram", 2.0) in rows


def test_a_file_with_a_wrong_column_type_is_one_line(tmp_path: Path) -> None:
    schema = SERVER_METRICS_SCHEMA.set(
        SERVER_METRICS_SCHEMA.get_field_index("value"), pa.field("value", pa.string())
    )
    path = tmp_path / "server_metrics.parquet"
    pq.write_table(schema.empty_table(), path)
    with pytest.raises(UsageError, match="column 'value' has type string"):
        read_server_metrics(path)


def _pages(pages: list[str], pod: str = "p") -> ServerSamples:
    """Rows as the scraper writes them from one exposition page per round (1 s apart)."""
    rows = [
        (i, pod, metric, json.loads(labels), value)
        for i, page in enumerate(pages)
        for _family, metric, labels, _type, value in parse_page(page)
    ]
    return ServerSamples(_rows(rows))


_REQUESTS = pd.DataFrame(
    {"status": ["ok"], "ttft": [50e6], "e2e": [900e6]}  # one request: 50 ms, 900 ms
)
_WINDOW = Window(start_ns=0.5 * S, end_ns=1.5 * S, send_window_s=1.0, requested_rate=1.0,
                 duration_s=1.0)  # fmt: skip


def test_sglang_and_tgi_names_map_onto_the_shared_figures() -> None:
    sglang = (
        '# TYPE sglang:num_running_reqs gauge\nsglang:num_running_reqs{{model_name="m"}} {r}\n'
        '# TYPE sglang:num_queue_reqs gauge\nsglang:num_queue_reqs{{model_name="m"}} {w}\n'
        '# TYPE sglang:token_usage gauge\nsglang:token_usage{{model_name="m"}} {u}\n'
        "# TYPE sglang:generation_tokens_total counter\n"
        'sglang:generation_tokens_total{{model_name="m"}} {g}\n'
    )
    samples = _pages([sglang.format(r=1, w=0, u=0.1, g=0), sglang.format(r=3, w=5, u=0.4, g=200),
                      sglang.format(r=2, w=1, u=0.2, g=300)])  # fmt: skip
    server = server_group(samples, _WINDOW, _REQUESTS)
    assert (server.running.max, server.waiting.max, server.kv_cache_usage.max) == (3, 5, 0.4)
    assert server.generation_tokens_per_s == pytest.approx(300 / 1.0)  # 0 -> 300 over the window
    tgi = "# TYPE tgi_queue_size gauge\ntgi_queue_size {w}\n# TYPE tgi_batch_current_size gauge\n"
    tgi += "tgi_batch_current_size {r}\n"
    server = server_group(_pages([tgi.format(w=4, r=8)] * 3), _WINDOW, _REQUESTS)
    assert (server.running.mean, server.waiting.mean) == (8, 4)
    assert server.kv_cache_usage.mean is None  # TGI exports none


def test_an_unknown_server_has_raw_rows_and_null_figures() -> None:
    page = "# TYPE my_server_thing gauge\nmy_server_thing 3\n"
    server = server_group(_pages([page] * 3), _WINDOW, _REQUESTS)
    assert server.running.mean is None and server.preemptions is None
    assert server.latency_ms == {"ttft": None, "e2e": None, "itl": None}
    assert server.overhead == {"ttft": None, "e2e": None}
