"""Hub access read from the environment, and Hub error translation with huggingface_hub's real
exception classes.

Gated and private repos need the real Hub (and an account) to reproduce, so these build the
exceptions huggingface_hub raises for them, with real httpx2 responses, and check the message.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from huggingface_hub import errors
from pydantic import SecretStr

from steps.hf_hub import HubAccess, hub_access_from_env, translate_hub_error

_REQ = httpx2.Request("GET", "https://huggingface.co/api/models/Org/Name/revision/main")


def _response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=_REQ)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            errors.GatedRepoError("gated", response=_response(403)),
            "is gated and no token is set: accept its terms at https://huggingface.co/Org/Name",
        ),
        (
            errors.RepositoryNotFoundError("nope", response=_response(404)),
            "Hub repo 'Org/Name' not found (no token is set; private repos answer the same)",
        ),
        (
            errors.RevisionNotFoundError("nope", response=_response(404)),
            "revision 'main' not found in Hub repo 'Org/Name'; check --revision",
        ),
        (
            errors.HfHubHTTPError("boom", response=_response(500)),
            "failed with HTTP 500",
        ),
        (
            httpx2.ConnectError("[Errno 111] Connection refused", request=_REQ),
            "cannot reach the Hugging Face Hub for 'Org/Name' (ConnectError",
        ),
        (errors.LocalEntryNotFoundError("not cached"), "the Hub is unreachable"),
    ],
)
def test_translate_hub_error_known_errors_name_the_fix(exc: Exception, expected: str) -> None:
    message = str(translate_hub_error(exc, "Org/Name", "main", HubAccess(), "--tokenizer", "x"))
    assert expected in message
    assert "\n" not in message


def test_translate_hub_error_gated_with_token_says_account_lacks_access() -> None:
    exc = errors.GatedRepoError("gated", response=_response(403))
    access = HubAccess(token=SecretStr("hf_x"))
    message = str(translate_hub_error(exc, "Org/Name", "main", access, "--tokenizer", "x"))
    assert "a token is set" in message
    assert "account that has access" in message


def test_tokenizer_extra_declares_the_hub_generation_hub_py_imports() -> None:
    """hub.py imports httpx2, which only huggingface_hub 2.x brings: the extra must say so."""
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    extra = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["tokenizer"]
    reqs = {(r := Requirement(line)).name.replace("_", "-").lower(): r for line in extra}
    hub = reqs["huggingface-hub"].specifier
    assert not hub.contains("1.33.0"), "huggingface_hub 1.x has no httpx2"
    assert hub.contains("2.0.0") and hub.contains("2.4.0")
    assert "httpx2" in reqs, "hub.py imports httpx2 directly"


def test_hub_access_from_env_reads_what_huggingface_hub_reads() -> None:
    env = {
        "MY_TOKEN": "hf_x",
        "HF_HOME": "/h",
        "HF_HUB_OFFLINE": " Yes ",
        "HF_ENDPOINT": "http://m",
    }
    access = hub_access_from_env(env, "MY_TOKEN")
    assert access.token is not None and access.token.get_secret_value() == "hf_x"
    assert (access.cache_dir, access.offline, access.endpoint) == (Path("/h/hub"), True, "http://m")
    # HF_HUB_CACHE wins over HF_HOME, as in huggingface_hub.
    assert hub_access_from_env(env | {"HF_HUB_CACHE": "/c"}, "MY_TOKEN").cache_dir == Path("/c")


def test_hub_access_from_env_nothing_set_is_anonymous_online_default_cache() -> None:
    assert hub_access_from_env({"HF_TOKEN": "hf_x", "HF_HUB_OFFLINE": "0"}, "OTHER") == HubAccess()
