"""Offline stand-ins for what Argo and Kubernetes check on a cluster (schema, pods, PSS, models)."""
