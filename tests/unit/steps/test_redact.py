"""Secret scrubbing of config trees: header values under secret-looking names."""

from __future__ import annotations

from steps.redact import REDACTED, redact_tree, redact_url


def test_redact_tree_header_values_under_secret_names() -> None:
    config = {
        "api": {
            "type": "completion",
            "headers": {
                "X-Api-Key": "k-123456789",
                "api-key": "k-223456789",
                "Authorization": "Bearer t-123456789",
                "Proxy-Authorization": "Basic dXNlcjpwYXNz",
                "X-Auth-Token": "t-223456789",
                "Ocp-Apim-Subscription-Key": "k-323456789",
                "Cookie": "session=s-123456789",
                "X-Session-Id": "s-223456789",
                "X-Trace": "bench-run-7",
                "Accept": "text/event-stream",
            },
        },
        "server": {"api_key_env": "OPENAI_API_KEY", "model_name": "m", "x-api-key": "k-4234567"},
        "data": {"max_tokens": 128, "tokenizer": "Qwen/Qwen3-8B"},
    }
    out = redact_tree(config)
    headers = out["api"]["headers"]
    kept = {"X-Trace": "bench-run-7", "Accept": "text/event-stream"}
    assert headers == {name: kept.get(name, REDACTED) for name in config["api"]["headers"]}
    assert out["server"] == {
        "api_key_env": "OPENAI_API_KEY",
        "model_name": "m",
        "x-api-key": REDACTED,
    }
    assert out["data"] == config["data"]


def test_redact_url_keeps_where_drops_userinfo_query_fragment() -> None:
    # A redirect's Location quoted in a record's error: where it points, never a token.
    assert redact_url("https://u:pw@gw.example:8443/v1/completions?key=s3cr3t#t=1") == (
        f"https://gw.example:8443/v1/completions?{REDACTED}"
    )
    assert redact_url("/v1/other") == "/v1/other"
    assert redact_url("https://h/" + "a" * 500) == "https://h/" + "a" * 190
    assert "hf_" not in redact_url("https://h/hf_abcdefghijklmnopqrstuvwxyz")
