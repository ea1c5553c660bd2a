"""The `readiness` DAG step: wait for the model endpoint, then find the model pods' zones.

Run as `python -m steps.readiness`; see `__main__.py` for the flags.
"""
