"""The report step (`python -m steps.report`): SLA and regression verdict, report, S3 upload.

Reads summary.json through `steps.summary_model` and records through `steps.record_metrics`.
Modules: `config` (the flags' model), `sla` and `regression` (pure verdict logic, on `history`,
`evidence` and `changepoints`), `run_checks` (load exit code and completeness), `verdict` (the
one verdict from all three, verdict.json, output parameters), `samples` (record columns for
plots), `plots` (matplotlib PNGs), `render` (report.md / report.html), `results` (what is
written into --out after judging), `bundle` (the result directory, secrets scrubbed with
`steps.redact`), `storage` (S3 or --history-dir: the client, the history, the upload of --out),
`upload` (S3 key layout, retries, error translation), `__main__` (flags -> config -> run).
"""
