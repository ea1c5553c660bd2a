"""The aggregate step: per-request records -> per-stage and overall summaries.

Modules: `read` (shards, schema check, merged time line), `metrics` (pure statistics),
`summary` (steps/CONTRACTS.md GROUP and the tidy table), `lifecycle` (inference-perf's JSON layout),
`__main__` (the CLI, `python -m steps.aggregate`).
"""
