"""The report step (`python -m steps.report`): SLA and regression verdict, report, S3 upload.

Modules: `sla` and `regression` (pure verdict logic), `samples` (record columns for plots),
`plots` (matplotlib PNGs), `render` (report.md / report.html), `redact` (secret scrubbing),
`bundle` (the result directory), `upload` (S3 key layout, retries, error translation),
`outputs` (Argo output-parameter files), `__main__` (config, run, CLI).
"""
