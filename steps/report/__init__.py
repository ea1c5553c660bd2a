"""The report step (`python -m steps.report`): SLA and regression verdict, report, S3 upload.

Modules: `sla` and `regression` (pure verdict logic), `samples` (record columns for plots),
`plots` (matplotlib PNGs), `render` (report.md / report.html), `bundle` (the result directory,
secrets scrubbed with `steps.redact`), `upload` (S3 key layout, retries, error translation),
`__main__` (config, run, CLI).
"""
