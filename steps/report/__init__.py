"""The report step (`python -m steps.report`): SLA and regression verdict, report, S3 upload.

Reads summary.json through `steps.summary_model` and records through `steps.record_metrics`.
Modules: `sla` and `regression` (pure verdict logic), `run_checks` (load exit code and
completeness), `samples` (record columns for plots), `plots` (matplotlib PNGs), `render`
(report.md / report.html), `bundle` (the result directory, secrets scrubbed with
`steps.redact`), `upload` (S3 key layout, retries, error translation), `__main__` (config, run,
CLI).
"""
