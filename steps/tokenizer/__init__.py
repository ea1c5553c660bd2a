"""The `tokenizer` DAG step: fetch or build the tokenizer directory the load step sizes
prompts with.

Run as `python -m steps.tokenizer`; see `__main__.py` for the flags.
"""
