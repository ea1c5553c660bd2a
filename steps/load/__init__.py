"""The streaming load step (`python -m steps.load`): the benchmark's measuring instrument.

Modules, from pure to I/O: `config` (inference-perf's config.yml as pydantic models), `schedule`
(send offsets), `clock` (waiting for a send deadline on a machine that wakes late), `prompts`
(exact-length synthetic prompts), `sse` (byte-level Server-Sent Events splitter), `http1` (HTTP/1.1
request bytes and incremental response parser), `connection` (keep-alive asyncio Protocol
connections, pooled per worker), `stream_request` (one streamed request -> one outcome), `writer`
(outcomes -> column buffers -> Parquet part files -> records.parquet), `parts` (a worker's part
files: flushed about once a second, held and retried when a write fails), `worker` (one process,
one event loop, its share of the schedule), `model_lookup` (the one `GET /v1/models` before t0),
`plan` (every request's bytes and each worker's share, before t0), `supervisor` (worker processes,
their messages, signals), `early_stop` (whether a finished stage ends the run), `coordinator`
and `pod_link` (the start of a load spread over several pods: barriers, clock offsets),
`run_file` (run.json), `live_progress` (the line shown while running), `end_summary` (the
numbers shown at the end, by `steps.record_metrics`), `run` (plan, start, drive, finish),
`recover` (merge a lost run's parts) and `__main__` (CLI).
"""
