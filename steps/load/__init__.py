"""The streaming load step (`python -m steps.load`): the benchmark's measuring instrument.

Modules, from pure to I/O: `schedule` (send offsets), `prompts` (exact-length synthetic
prompts), `sse` (byte-level Server-Sent Events splitter), `http1` (HTTP/1.1 request bytes and
incremental response parser), `connection` (keep-alive asyncio Protocol connections, pooled per
worker), `client` (one streamed request -> one record), `writer` (column buffers -> Parquet
part files -> records.parquet), `worker` (one process, one event loop, its share of the
schedule), `progress` (live line and end summary), `run` (processes, stages, drain, signals,
run.json) and `__main__` (CLI).
"""
