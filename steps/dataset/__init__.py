"""The `dataset` DAG step: fetch the conversations file a real-data (shareGPT) run samples its
prompts from, check it, and describe it with a sha256 manifest.

Run as `python -m steps.dataset`; see `__main__.py` for the flags.
"""
