"""The aggregate step: per-request records -> per-stage and overall summaries.

Modules: `read` (shards, schema check, merged time line), `metrics` (distributions, ITL
histograms; what each metric is comes from the ground floor's `steps.record_metrics`),
`summary` (the typed GROUP of `steps.summary_model` and the tidy table), `lifecycle`
(inference-perf's JSON layout), `__main__` (the CLI, `python -m steps.aggregate`).
"""
