"""`python -m steps.readiness`: wait until the endpoint serves the model, then warm it up and
check the model pods' zones; write the `served_model`, `zones` and `max_model_len` outputs.

Exit 0 ready; 1 not ready by the deadline, warm-up failed, or the Kubernetes check failed;
2 bad flags. The API key comes from the environment variable named by `--api-key-env` and is
only ever reported as "set" / "not set".
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from steps.cli import (
    add_log_level_flag,
    config_from_flags,
    configure_logging,
    make_parser,
    optional_text,
    run_main,
)
from steps.errors import BenchError, UsageError
from steps.http_oneshot import OneShotClient
from steps.names import check_base_url, check_model_name
from steps.outputs import write_outputs
from steps.readiness.probe import wait_ready
from steps.readiness.warmup import run_warmup
from steps.readiness.zones import KubeCredentials, check_zones, find_credentials
from steps.shared import (
    MAX_SECONDS,
    K8sCheck,
    StrictModel,
    ZoneAffinity,
    format_label_selector,
    parse_label_selector,
)

log = logging.getLogger("steps.readiness")

STEP = "readiness"
#: A cold first completion can be slow (lazy graph capture), but not unboundedly so.
_WARMUP_TIMEOUT_S = 120.0


class ReadinessConfig(StrictModel):
    """Typed flags of the readiness step (field = flag with `-` for `_`)."""

    base_url: str = Field(description="server root, e.g. http://qwen3-vllm.default:8000")
    model_name: str = Field(description="model id that /v1/models must list")
    timeout: float = Field(
        default=600, gt=0, le=MAX_SECONDS, description="seconds to wait for readiness"
    )
    interval: float = Field(
        default=5,
        gt=0,
        le=MAX_SECONDS,
        description="longest seconds between polls (backoff starts at 1/8 of it)",
    )
    warmup_requests: int = Field(
        default=0, ge=0, le=1000, description="small unmeasured completions sent once ready"
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="NAME of the environment variable holding the bearer token (never the token)",
    )
    target_labels: dict[str, str] = Field(
        default_factory=dict, description="model pods' labels, k=v,k2=v2 (the load step's affinity)"
    )
    target_namespace: str = Field(
        default="default", min_length=1, description="namespace of the model pods"
    )
    k8s_check: K8sCheck = Field(
        default=K8sCheck.auto,
        description="auto: check pods/zones when credentials exist; required: fail without; off",
    )
    zone_affinity: ZoneAffinity = Field(
        default=ZoneAffinity.required,
        description="the load pod's zone affinity as installed: with required, model pods on "
        "nodes without a zone label fail the check (the load pod could never be scheduled)",
    )
    outputs_dir: Path | None = Field(
        default=None, description="directory for the output-parameter files"
    )

    _base_url_ok = field_validator("base_url")(check_base_url)
    _model_name_ok = field_validator("model_name")(check_model_name)


@dataclass(frozen=True)
class ReadinessResult:
    """The step's outputs; `max_model_len` None when the server does not report it."""

    served_model: str
    zones: tuple[str, ...]
    max_model_len: int | None
    warmup_latencies_ms: tuple[float, ...]

    def outputs(self) -> dict[str, str]:
        """Output-parameter values as Argo strings ("" = unknown)."""
        return {
            "served_model": self.served_model,
            "zones": ",".join(self.zones),
            "max_model_len": "" if self.max_model_len is None else str(self.max_model_len),
        }


def _plan_k8s_check(config: ReadinessConfig, creds: KubeCredentials | None) -> bool:
    """Decide up front (before a long wait) whether the Kubernetes check runs or fails."""
    if config.k8s_check is K8sCheck.off:
        log.info("Kubernetes check: off")
        return False
    if not config.target_labels:
        if config.k8s_check is K8sCheck.required:
            raise UsageError("--k8s-check required needs --target-labels (the model pods' labels)")
        log.info("Kubernetes check: skipped (no --target-labels)")
        return False
    if creds is None:
        if config.k8s_check is K8sCheck.required:
            raise BenchError(
                "--k8s-check required but no Kubernetes credentials: no in-cluster service "
                "account and no kubeconfig (KUBECONFIG or ~/.kube/config)"
            )
        log.info("Kubernetes check: skipped (no in-cluster service account or kubeconfig)")
        return False
    return True


def run(
    config: ReadinessConfig,
    api_key: SecretStr | None = None,
    kube_credentials: KubeCredentials | None = None,
) -> ReadinessResult:
    """Wait for the endpoint, warm it up, check zones; write the outputs."""
    run_k8s = _plan_k8s_check(config, kube_credentials)
    headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}
    log.info(
        "waiting for %s to serve %r (timeout %g s, API key %s)",
        config.base_url,
        config.model_name,
        config.timeout,
        "set" if api_key else "not set",
    )
    client = OneShotClient(config.base_url.rstrip("/"), headers)
    model = wait_ready(client, config.model_name, config.timeout, config.interval)
    latencies = run_warmup(
        client,
        config.model_name,
        config.warmup_requests,
        request_timeout_s=min(config.timeout, _WARMUP_TIMEOUT_S),
    )
    zones: tuple[str, ...] = ()
    if run_k8s:
        assert kube_credentials is not None  # _plan_k8s_check returned True
        log.info(
            "Kubernetes check: pods %r in namespace %r",
            format_label_selector(config.target_labels),
            config.target_namespace,
        )
        zones = check_zones(
            kube_credentials, config.target_namespace, config.target_labels, config.zone_affinity
        ).zones
    result = ReadinessResult(model.id, zones, model.max_model_len, tuple(latencies))
    if config.outputs_dir is not None:
        write_outputs(config.outputs_dir, result.outputs())
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, read the API key from the environment, run; errors -> one stderr line."""
    parser = make_parser(
        "python -m steps.readiness",
        "Wait until an OpenAI-compatible endpoint serves the model; optional warm-up and "
        "Kubernetes zone check.",
    )
    fields = ReadinessConfig.model_fields
    parser.add_argument("--base-url", required=True, help=fields["base_url"].description)
    parser.add_argument("--model-name", required=True, help=fields["model_name"].description)
    for name in ("timeout", "interval", "warmup_requests", "api_key_env", "target_namespace"):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=optional_text,
            default=None,
            help=fields[name].description,
        )
    parser.add_argument("--target-labels", default="", help=fields["target_labels"].description)
    parser.add_argument(
        "--k8s-check",
        default="auto",
        choices=[m.value for m in K8sCheck],
        help=fields["k8s_check"].description,
    )
    parser.add_argument(
        "--zone-affinity",
        default="required",
        choices=[m.value for m in ZoneAffinity],
        help=fields["zone_affinity"].description,
    )
    parser.add_argument(
        "--outputs-dir", type=optional_text, default=None, help=fields["outputs_dir"].description
    )
    add_log_level_flag(parser)

    def body() -> int:
        args = parser.parse_args(argv)
        configure_logging(STEP, args.log_level)
        args.target_labels = parse_label_selector(args.target_labels)
        config = config_from_flags(ReadinessConfig, args)
        api_key = None
        if config.api_key_env:
            value = os.environ.get(config.api_key_env, "")
            if not value:
                raise UsageError(
                    f"--api-key-env {config.api_key_env}: that environment variable is not set"
                )
            api_key = SecretStr(value)
        creds = find_credentials(os.environ, Path.home())
        result = run(config, api_key, creds)
        outputs = result.outputs()
        print(
            f"ready: model {result.served_model!r}, zones {outputs['zones'] or 'unknown'}, "
            f"max_model_len {outputs['max_model_len'] or 'unknown'}"
        )
        return 0

    return run_main(STEP, body)


if __name__ == "__main__":
    sys.exit(main())
