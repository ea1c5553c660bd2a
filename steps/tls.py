"""The one TLS client context of every step that talks to the model server.

`ssl.create_default_context()` verifies the server like any TLS client does by default: the
system CA store and the host name. It reads that store through OpenSSL's default verify paths,
so `SSL_CERT_FILE` / `SSL_CERT_DIR` (a private CA's bundle, mounted by `--ca-bundle-configmap`)
are honoured. httpx's own default is different (certifi's bundle; `SSL_CERT_FILE` only with
`trust_env=True`), so every httpx call that reaches the model server is given this context too:
readiness and the load step's model lookup trust exactly what the load client trusts.
There is deliberately no switch to turn verification off.
"""

from __future__ import annotations

import ssl

__all__ = ["client_ssl_context"]


def client_ssl_context() -> ssl.SSLContext:
    """A fresh verifying client context (system CAs or SSL_CERT_FILE / SSL_CERT_DIR)."""
    return ssl.create_default_context()
