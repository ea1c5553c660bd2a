"""A vLLM-compatible simulated endpoint: the default target and the load step's ground truth.

Run it as `python -m steps.simulator`. Modules: `config` (flags as a pydantic model), `latency`
(pure latency model and admission queue), `tokens` (token text and prompt counting), `truth`
(server-side record of arrivals and chunk send times), `metrics` (vLLM-named Prometheus text),
`http1` (the small HTTP/1.1 framing the server needs), `engine` (continuous batching: one
timer per decode step for every stream), `sequence` (one request's pre-built chunks, truth and
metrics), `server` (asyncio protocol and routes).
"""
